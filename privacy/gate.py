"""The privacy gate's aggregation thresholds (k-anonymity over accounts)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from clustering.cluster import NOISE


@dataclass(frozen=True)
class Thresholds:
    """Minimum unique accounts and conversations for a cluster to be released."""

    min_accounts: int = 5
    min_conversations: int = 5

    def __post_init__(self) -> None:
        if self.min_accounts < 1 or self.min_conversations < 1:
            raise ValueError("privacy thresholds must be at least 1")


def recount(assignments: pl.DataFrame) -> pl.DataFrame:
    """Exact conversations and unique accounts per cluster, from the assignments."""
    return (
        assignments.filter(pl.col("cluster_id") != NOISE)
        .group_by("cluster_id")
        .agg(
            pl.len().cast(pl.Int64).alias("conversations"),
            pl.col("account").n_unique().cast(pl.Int64).alias("unique_accounts"),
        )
    )


def apply_thresholds(
    clusters: pl.DataFrame, assignments: pl.DataFrame, thresholds: Thresholds
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split clusters into released and withheld, counting from the assignments.

    Counts are recomputed from the assignments rather than trusted from the
    cluster table. Returns ``(released, withheld)``; ``withheld`` has
    ``cluster_id`` and ``reason`` only (no text).
    """
    counts = recount(assignments).rename({"conversations": "_conversations", "unique_accounts": "_accounts"})
    checked = clusters.join(counts, on="cluster_id", how="left").with_columns(
        pl.col("_conversations").fill_null(0), pl.col("_accounts").fill_null(0)
    )
    reason = (
        pl.when(pl.col("_accounts") < thresholds.min_accounts)
        .then(pl.lit(f"fewer than {thresholds.min_accounts} unique accounts"))
        .when(pl.col("_conversations") < thresholds.min_conversations)
        .then(pl.lit(f"fewer than {thresholds.min_conversations} conversations"))
        .otherwise(pl.lit(None, pl.Utf8))
        .alias("reason")
    )
    checked = checked.with_columns(reason)
    released = checked.filter(pl.col("reason").is_null()).drop("_conversations", "_accounts", "reason")
    withheld = checked.filter(pl.col("reason").is_not_null()).select("cluster_id", "reason")
    return released, withheld


def threshold_violations(
    released: pl.DataFrame, assignments: pl.DataFrame, thresholds: Thresholds
) -> pl.DataFrame:
    """Released clusters that break a threshold (for the blocking asset check)."""
    counts = recount(assignments)
    joined = released.select("cluster_id").join(counts, on="cluster_id", how="left").fill_null(0)
    return joined.filter(
        (pl.col("unique_accounts") < thresholds.min_accounts)
        | (pl.col("conversations") < thresholds.min_conversations)
    )


TRAIL_SCHEMA = {
    "day": pl.Utf8,
    "cluster_id": pl.Int64,
    "level": pl.Int64,
    "layer": pl.Utf8,
    "reason": pl.Utf8,
    "conversations": pl.Int64,
    "unique_accounts": pl.Int64,
}


def removal_trail(
    day: str,
    withheld_by_layer: dict[str, pl.DataFrame],
    clusters: pl.DataFrame,
    members: pl.DataFrame,
) -> pl.DataFrame:
    """The audit trail of what the gate removed, one row per withheld cluster, with no text.

    Args:
        day: The partition.
        withheld_by_layer: For each layer (``threshold``, ``dp_selection``,
            ``pii_rescan``, ``auditor`` ...), in the order they ran, a frame with
            ``cluster_id`` and ``reason``. A cluster is attributed to the first
            layer that removed it.
        clusters: The day's cluster table (``cluster_id``, optional ``level``).
        members: One row per conversation and node it belongs to (``conversation_id``,
            ``account``, ``cluster_id``; ``clustering.hierarchy.membership``, or the
            base assignments without a hierarchy). Exact counts come from them.

    Returns:
        ``TRAIL_SCHEMA`` columns, sorted by level and cluster id.
    """
    rows = [
        frame.select(pl.col("cluster_id").cast(pl.Int64), pl.col("reason").cast(pl.Utf8)).with_columns(
            pl.lit(layer).alias("layer")
        )
        for layer, frame in withheld_by_layer.items()
    ]
    if not rows:
        return pl.DataFrame(schema=TRAIL_SCHEMA)
    removed = pl.concat(rows).unique("cluster_id", keep="first", maintain_order=True)
    counts = recount(members)
    levels = clusters.select(
        pl.col("cluster_id").cast(pl.Int64),
        pl.col("level").cast(pl.Int64) if "level" in clusters.columns else pl.lit(0, pl.Int64).alias("level"),
    )
    trail = (
        removed.join(levels, on="cluster_id", how="left")
        .join(counts, on="cluster_id", how="left")
        .with_columns(
            pl.lit(day).alias("day"),
            pl.col("level").fill_null(0),
            pl.col("conversations").fill_null(0),
            pl.col("unique_accounts").fill_null(0),
        )
    )
    return trail.select(list(TRAIL_SCHEMA)).cast(TRAIL_SCHEMA).sort("level", "cluster_id")  # type: ignore[arg-type]
