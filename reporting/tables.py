"""Report tables (aggregates only), their Parquet output, and the loader for earlier days.

Everything the HTML report shows is one of the tables below, written beside it
under ``<out>/reports/<day>/``. Trends read earlier days' *published* tables
only (:func:`load_published`), never private state.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import polars as pl

# The privacy layers that can withhold a cluster, in the order they run.
LAYERS = ("threshold", "pii_rescan", "privacy_auditor", "dp_partition_selection", "no_released_children")

# Columns of the released cluster table that may appear in a report.
REPORT_CLUSTER_COLUMNS = [
    "day",
    "cluster_id",
    "level",
    "parent_id",
    "title",
    "description",
    "name_source",
    "conversations",
    "unique_accounts",
    "mean_concern",
    "share_concerning",
    "top_task",
    "x",
    "y",
]

FLAG_COLUMNS = ["track_id", "is_new", "growth_ratio", "flagged", "reasons"]

CLUSTERS_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Utf8(),
    "cluster_id": pl.Int64(),
    "level": pl.Int64(),
    "parent_id": pl.Int64(),
    "title": pl.Utf8(),
    "description": pl.Utf8(),
    "name_source": pl.Utf8(),
    "conversations": pl.Int64(),
    "unique_accounts": pl.Int64(),
    "mean_concern": pl.Float64(),
    "share_concerning": pl.Float64(),
    "top_task": pl.Utf8(),
    "x": pl.Float64(),
    "y": pl.Float64(),
    "track_id": pl.Utf8(),
    "is_new": pl.Boolean(),
    "growth_ratio": pl.Float64(),
    "flagged": pl.Boolean(),
    "reasons": pl.List(pl.Utf8()),
}
CATEGORIES_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Utf8(),
    "cluster_id": pl.Int64(),
    "level": pl.Int64(),
    "category": pl.Utf8(),
    "conversations": pl.Int64(),
}
SUMMARY_SCHEMA: dict[str, pl.DataType] = {"day": pl.Utf8(), "metric": pl.Utf8(), "value": pl.Float64()}
DEAD_LETTERS_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Utf8(),
    "stage": pl.Utf8(),
    "reason": pl.Utf8(),
    "records": pl.Int64(),
}
ENTITIES_SCHEMA: dict[str, pl.DataType] = {"day": pl.Utf8(), "entity_type": pl.Utf8(), "count": pl.Int64()}
WITHHELD_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Utf8(),
    "layer": pl.Utf8(),
    "level": pl.Int64(),
    "clusters": pl.Int64(),
}

# File name and schema of each published table, by ReportTables field.
TABLE_FILES: dict[str, tuple[str, dict[str, pl.DataType]]] = {
    "clusters": ("clusters.parquet", CLUSTERS_SCHEMA),
    "categories": ("cluster_categories.parquet", CATEGORIES_SCHEMA),
    "summary": ("run_summary.parquet", SUMMARY_SCHEMA),
    "dead_letters": ("dead_letters.parquet", DEAD_LETTERS_SCHEMA),
    "entities": ("redacted_entities.parquet", ENTITIES_SCHEMA),
    "withheld": ("withheld_by_layer.parquet", WITHHELD_SCHEMA),
}

REPORT_SCHEMA_DOC = """\
Report folder `out/reports/<day>/` (aggregates only; no account ids, no conversation text):

- `report.html`: the self-contained analyst page (no network fetches).
- `clusters.parquet`: one row per released cluster at every level, flagged first.
  `day` str, `cluster_id` i64 (unique within the day across levels), `level` i64
  (0 = base, highest = top), `parent_id` i64 (null at the top), `title` str,
  `description` str, `name_source` str (`llm` or the fallback used), `conversations` i64,
  `unique_accounts` i64, `mean_concern` f64 (1-5), `share_concerning` f64 (share with concern score 3+),
  `top_task` str, `x`, `y` f64 (mean 2-D layout position of the members). Counts, concern and
  categories are DP-noised when DP is on (the day's total epsilon and delta are the `dp_epsilon`
  and `dp_delta` metrics); parents' counts are then sums of their released children's.
  On base rows only: `track_id` str (links a cluster across days), `is_new` bool,
  `growth_ratio` f64, `flagged` bool, `reasons` list[str] (empty when not flagged). With DP on,
  `growth_ratio` and the figures in `reasons` come from published DP counts; the flag itself is
  decided on exact private data.
- `cluster_categories.parquet`: `day`, `cluster_id`, `level`, `category` (taxonomy code),
  `conversations` i64; non-zero counts only. A conversation can carry several categories.
  Sum base rows (`level == 0`) for day totals; parents repeat their children's counts.
- `run_summary.parquet`: `day`, `metric` str, `value` f64. Metrics: `records_read`,
  `records_dead_lettered`, `facets_extracted`, `facets_dead_lettered`, `noise_conversations`,
  `clusters_released`, `clusters_withheld`, `clusters_flagged`, `flagged_clusters_withheld`,
  `conversations_in_released_clusters`, and when DP is on `dp_epsilon`, `dp_delta` (the day's
  totals), `dp_selection_epsilon`, `dp_counts_epsilon`, `dp_selection_threshold` (noisy accounts)
  and `dp_demo_budget` (1 when the budget is a demo setting, not a meaningful guarantee).
- `dead_letters.parquet`: `day`, `stage` str, `reason` str (the reason's kind, no record text), `records` i64.
- `redacted_entities.parquet`: `day`, `entity_type` str, `count` i64 (PII entities redacted that day).
- `withheld_by_layer.parquet`: `day`, `layer` str (`threshold`, `pii_rescan`, `privacy_auditor`,
  `dp_partition_selection`, `no_released_children`: a parent whose base clusters were all withheld
  when DP is on), `level` i64, `clusters` i64 (zero rows included for every layer and level).
"""


def _conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` with exactly ``schema``'s columns and types (missing ones null), then any extra columns."""
    cols = [
        (pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype)).alias(name)
        for name, dtype in schema.items()
    ]
    extra = [c for c in frame.columns if c not in schema]
    return frame.select(*cols, *extra)


def _empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def _published_reason(code: str, row: Mapping[str, Any]) -> str:
    """One flag reason restated from the published (DP) figures of its cluster."""
    conversations = max(row.get("conversations") or 0, 1)
    if code == "mean_concern":
        return f"mean concern {row['mean_concern']:.1f}"
    if code == "share_concerning":
        return f"{row['share_concerning']:.0%} of conversations rated concerning"
    if code.startswith("high_severity:"):
        cat = code.split(":", 1)[1]
        share = (row.get(f"cat_{cat}") or 0) / conversations
        return f"{share:.0%} in high-severity category {cat}"
    if code == "growth":
        growth = row.get("growth_ratio")
        return (
            f"share of traffic grew {growth:.1f}x vs trailing window"
            if growth
            else "share of traffic grew vs trailing window"
        )
    return {
        "new": "new: no similar cluster in the trailing window",
        "coordination": "coordination: many accounts sent few distinct requests",
        "burst": "burst: a significant burst of conversations in time",
        "new_accounts": "most of its accounts are new to the trailing window",
    }.get(code, "flagged")


def published_growth(
    released: pl.DataFrame, history: ReportTables | None, day_total: float | None
) -> dict[str, float | None]:
    """Growth of each track's share of traffic from published numbers only (post-processing of DP counts).

    The same ratio as ``clustering.tracking.flag_clusters`` (today's share over
    the trailing window's, add-half smoothed), but from today's published base
    counts and earlier days' published reports (``facets_extracted`` as the
    traffic). ``None`` where there is no earlier published day.
    """
    tracks = (
        released.filter(pl.col("track_id").is_not_null())
        if "track_id" in released.columns
        else released.head(0)
    )
    if history is None or not history.days or not day_total or tracks.is_empty():
        return {}
    past_total = float(history.summary.filter(pl.col("metric") == "facets_extracted")["value"].sum())
    if past_total <= 0:
        return {}
    past = dict(
        history.clusters.filter(pl.col("level").fill_null(0) == 0)
        .group_by("track_id")
        .agg(pl.col("conversations").sum())
        .iter_rows()
    )
    return {
        t: (c / day_total) / ((past.get(t, 0) + 0.5) / (past_total + 1.0))
        for t, c in zip(tracks["track_id"].to_list(), tracks["conversations"].to_list(), strict=True)
    }


def report_clusters(
    released: pl.DataFrame,
    flags: pl.DataFrame | None = None,
    *,
    dp: bool = False,
    history: ReportTables | None = None,
    day_total: float | None = None,
) -> pl.DataFrame:
    """The released clusters as published (no ids of people, no member text), flagged first.

    With ``dp``, nothing published comes from exact counts: the flag reasons
    are restated from their codes with the cluster's DP figures (the exact
    figures of coordination and burst tests are left out), and ``growth_ratio``
    is recomputed from published counts (``published_growth``), or null. The
    flag itself is still decided on exact private data (see
    ``clustering.tracking``).

    Args:
        released: Released clusters at every level (missing optional columns such
            as ``parent_id`` or ``name_source`` become null).
        flags: ``cluster_id`` plus the flag columns for base clusters; when
            ``None`` the flag columns already in ``released`` are kept.
        dp: Whether the counts in ``released`` are DP-noised.
        history: Earlier days' published tables, for the DP growth ratio.
        day_total: Today's conversations with facets (``facets_extracted``).
    """
    table = released
    if flags is not None:
        table = table.drop([c for c in [*FLAG_COLUMNS, "reason_codes"] if c in table.columns])
        if not flags.is_empty():
            extra = ["reason_codes"] if "reason_codes" in flags.columns else []
            table = table.join(flags.select("cluster_id", *FLAG_COLUMNS, *extra), on="cluster_id", how="left")
    if dp and "flagged" in table.columns:
        growth = published_growth(table, history, day_total)
        table = table.with_columns(
            pl.col("track_id")
            .replace_strict(growth, default=None, return_dtype=pl.Float64)
            .alias("growth_ratio")
        )
        codes = table["reason_codes"].to_list() if "reason_codes" in table.columns else [None] * len(table)
        reasons = [
            (
                [_published_reason(c, row) for c in (code_list or [])]
                or ["high concern and new, growing or coordinated"]
            )
            if row.get("flagged")
            else []
            for row, code_list in zip(table.iter_rows(named=True), codes, strict=True)
        ]
        table = table.with_columns(pl.Series("reasons", reasons, dtype=pl.List(pl.Utf8)))
    table = _conform(table, CLUSTERS_SCHEMA).select(list(CLUSTERS_SCHEMA))
    table = table.with_columns(
        pl.col("level").fill_null(0),
        pl.col("flagged").fill_null(False),
        pl.col("reasons").fill_null(pl.lit([], pl.List(pl.Utf8))),
    )
    return table.sort(
        ["flagged", "level", "conversations", "cluster_id"], descending=[True, False, True, False]
    )


def category_counts(released: pl.DataFrame, taxonomy_codes: Sequence[str]) -> pl.DataFrame:
    """Long table: ``day, cluster_id, level, category, conversations`` for non-zero counts."""
    cols = [f"cat_{c}" for c in taxonomy_codes if f"cat_{c}" in released.columns]
    if released.is_empty() or not cols:
        return _empty(CATEGORIES_SCHEMA)
    level = pl.col("level").fill_null(0) if "level" in released.columns else pl.lit(0, pl.Int64)
    return (
        released.select("day", "cluster_id", level.cast(pl.Int64).alias("level"), *cols)
        .unpivot(
            index=["day", "cluster_id", "level"],
            on=cols,
            variable_name="category",
            value_name="conversations",
        )
        .with_columns(pl.col("category").str.strip_prefix("cat_"), pl.col("conversations").cast(pl.Int64))
        .filter(pl.col("conversations") > 0)
        .sort("cluster_id", "category")
        .select(list(CATEGORIES_SCHEMA))
    )


def summary_table(day: str, summary: Mapping[str, Any]) -> pl.DataFrame:
    """The run summary as ``day, metric, value`` rows (numbers only; ``None`` values are left out)."""
    items = [(k, float(v)) for k, v in summary.items() if v is not None]
    return pl.DataFrame(
        {"day": [day] * len(items), "metric": [k for k, _ in items], "value": [v for _, v in items]},
        schema=SUMMARY_SCHEMA,
    )


def dead_letter_table(day: str, dead_reasons: pl.DataFrame) -> pl.DataFrame:
    """Dead-lettered records by ``stage`` and ``reason`` for the day, most first."""
    if dead_reasons.is_empty():
        return _empty(DEAD_LETTERS_SCHEMA)
    return (
        dead_reasons.group_by("stage", "reason")
        .agg(pl.col("records").sum().cast(pl.Int64))
        .with_columns(pl.lit(day).alias("day"))
        .sort(["records", "stage", "reason"], descending=[True, False, False])
        .select(list(DEAD_LETTERS_SCHEMA))
    )


def entity_table(day: str, entities: pl.DataFrame) -> pl.DataFrame:
    """Redacted PII entities by ``entity_type`` for the day, most first."""
    if entities.is_empty():
        return _empty(ENTITIES_SCHEMA)
    return (
        entities.group_by("entity_type")
        .agg(pl.col("count").sum().cast(pl.Int64))
        .with_columns(pl.lit(day).alias("day"))
        .sort(["count", "entity_type"], descending=[True, False])
        .select(list(ENTITIES_SCHEMA))
    )


def withheld_by_layer(day: str, withheld: pl.DataFrame, levels: Iterable[int] = (0,)) -> pl.DataFrame:
    """Withheld clusters counted by privacy layer and level, with zero rows for every layer and level.

    Args:
        day: The partition.
        withheld: One row per withheld cluster with ``layer`` (default
            ``threshold`` when absent) and optionally ``level`` (default 0).
        levels: Levels to list even when nothing was withheld there (e.g. the
            levels present among released clusters).
    """
    layer = pl.col("layer").fill_null("threshold") if "layer" in withheld.columns else pl.lit("threshold")
    level = (
        pl.col("level").fill_null(0).cast(pl.Int64) if "level" in withheld.columns else pl.lit(0, pl.Int64)
    )
    counted = (
        withheld.select(layer.alias("layer"), level.alias("level"))
        .group_by("layer", "level")
        .agg(pl.len().cast(pl.Int64).alias("clusters"))
    )
    all_levels = sorted({int(v) for v in levels} | set(counted["level"].to_list()) or {0})
    all_layers = list(LAYERS) + sorted(set(counted["layer"].to_list()) - set(LAYERS))
    grid = pl.DataFrame(
        {
            "layer": [a for a in all_layers for _ in all_levels],
            "level": [v for _ in all_layers for v in all_levels],
        },
        schema={"layer": pl.Utf8, "level": pl.Int64},
    )
    order = {name: i for i, name in enumerate(all_layers)}
    return (
        grid.join(counted, on=["layer", "level"], how="left")
        .with_columns(pl.col("clusters").fill_null(0), pl.lit(day).alias("day"))
        .with_columns(pl.col("layer").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
        .sort("_order", "level")
        .select(list(WITHHELD_SCHEMA))
    )


@dataclass(frozen=True)
class ReportTables:
    """Published report tables for one day or, concatenated, for several (see ``REPORT_SCHEMA_DOC``).

    Attributes:
        days: The days these tables hold, sorted.
        clusters: ``clusters.parquet``.
        categories: ``cluster_categories.parquet``.
        summary: ``run_summary.parquet``.
        dead_letters: ``dead_letters.parquet``.
        entities: ``redacted_entities.parquet``.
        withheld: ``withheld_by_layer.parquet``.
    """

    days: tuple[str, ...]
    clusters: pl.DataFrame
    categories: pl.DataFrame
    summary: pl.DataFrame
    dead_letters: pl.DataFrame
    entities: pl.DataFrame
    withheld: pl.DataFrame

    @classmethod
    def empty(cls) -> ReportTables:
        """No days at all."""
        return cls((), *(_empty(TABLE_FILES[f.name][1]) for f in fields(cls) if f.name != "days"))

    def write(self, folder: Path) -> list[Path]:
        """Write every table as Parquet under ``folder`` (atomically); returns the paths."""
        paths = []
        for name, (file, _) in TABLE_FILES.items():
            write_parquet_atomic(getattr(self, name), folder / file)
            paths.append(folder / file)
        return paths

    def metrics(self, day: str) -> dict[str, float]:
        """One day's run-summary metrics."""
        rows = self.summary.filter(pl.col("day") == day)
        return dict(zip(rows["metric"].to_list(), rows["value"].to_list(), strict=True))


def build_report_tables(
    day: str,
    released: pl.DataFrame,
    flags: pl.DataFrame | None,
    taxonomy_codes: Sequence[str],
    summary: Mapping[str, Any],
    dead_reasons: pl.DataFrame,
    entities: pl.DataFrame,
    withheld: pl.DataFrame,
    history: ReportTables | None = None,
) -> ReportTables:
    """All of one day's published tables from the released aggregates.

    When ``summary`` has ``dp_epsilon`` (DP on), ``released`` must carry the DP
    counts; flag reasons and growth are then restated from published numbers
    (``report_clusters``).

    Args:
        day: The partition.
        released: Released clusters at every level, with ``cat_<code>`` columns.
        flags: Flag columns for base clusters (or ``None`` when already in ``released``).
        taxonomy_codes: Category codes, in taxonomy order.
        summary: Run-summary numbers (``None`` values are left out, e.g. ``dp_epsilon`` when DP is off).
        dead_reasons: ``stage``, ``reason``, ``records`` (already grouped; no record text).
        entities: ``entity_type``, ``count``.
        withheld: One row per withheld cluster with ``layer`` and optionally ``level``.
        history: Earlier days' published tables (for the DP growth ratio).
    """
    dp = summary.get("dp_epsilon") is not None
    clusters = report_clusters(
        released, flags, dp=dp, history=history, day_total=summary.get("facets_extracted")
    )
    return ReportTables(
        days=(day,),
        clusters=clusters,
        categories=category_counts(released, taxonomy_codes),
        summary=summary_table(day, summary),
        dead_letters=dead_letter_table(day, dead_reasons),
        entities=entity_table(day, entities),
        withheld=withheld_by_layer(day, withheld, clusters["level"].unique().to_list()),
    )


def trailing_days(day: str, window: int) -> list[str]:
    """The ``window`` days before ``day`` (oldest first, ``day`` itself excluded)."""
    last = dt.date.fromisoformat(day)
    return [(last - dt.timedelta(days=back)).isoformat() for back in range(window, 0, -1)]


def day_range(start: str, end: str) -> list[str]:
    """Every day from ``start`` to ``end`` inclusive."""
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if last < first:
        raise ValueError(f"range ends ({end}) before it starts ({start})")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def load_published(reports_dir: Path | str, days: Iterable[str]) -> ReportTables:
    """Earlier days' published tables under ``reports_dir/<day>/``, concatenated.

    Days without a ``clusters.parquet`` are skipped (not yet run, or failed);
    tables an older run did not write are empty for that day, and columns an
    older schema lacks are null. Only published aggregates are read.

    Args:
        reports_dir: The folder holding one sub-folder per day (``<out>/reports``).
        days: ISO dates to read.
    """
    root = Path(reports_dir)
    found: list[str] = []
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in TABLE_FILES}
    for day in sorted({dt.date.fromisoformat(d).isoformat() for d in days}):
        folder = root / day
        if not (folder / TABLE_FILES["clusters"][0]).is_file():
            continue
        found.append(day)
        for name, (file, schema) in TABLE_FILES.items():
            if (folder / file).is_file():
                frame = _conform(pl.read_parquet(folder / file), schema).select(list(schema))
                if name == "categories" and frame["level"].null_count():
                    frame = _levels_from_clusters(frame, parts["clusters"][-1])
                parts[name].append(frame.with_columns(pl.lit(day).alias("day")))
    if not found:
        return ReportTables.empty()
    frames = {name: pl.concat(p) if p else _empty(TABLE_FILES[name][1]) for name, p in parts.items()}
    return ReportTables(days=tuple(found), **frames)


def _levels_from_clusters(categories: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """Fill a category table's missing ``level`` from the same day's clusters (older runs lacked it)."""
    levels = clusters.select("cluster_id", pl.col("level").fill_null(0).alias("_level"))
    return (
        categories.join(levels, on="cluster_id", how="left")
        .with_columns(pl.col("level").fill_null(pl.col("_level")).fill_null(0))
        .drop("_level")
    )


def concat_tables(parts: Sequence[ReportTables]) -> ReportTables:
    """Several days' tables as one (e.g. earlier days plus today)."""
    parts = [p for p in parts if p.days]
    if not parts:
        return ReportTables.empty()
    frames = {
        name: pl.concat([getattr(p, name) for p in parts], how="vertical_relaxed") for name in TABLE_FILES
    }
    return ReportTables(days=tuple(sorted({d for p in parts for d in p.days})), **frames)


def write_atomic(data: bytes | str, path: Path) -> None:
    """Write a file via a temp file and rename, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file via a temp file and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    frame.write_parquet(tmp)
    os.replace(tmp, path)
