"""The analyst report: published tables, the loader for earlier days, and the rendered pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest

from reporting.html import (
    _without_overlaps,
    build_tree,
    concern_colour,
    line_chart,
    render_range_report,
    render_report,
    write_range_report,
)
from reporting.tables import (
    LAYERS,
    REPORT_SCHEMA_DOC,
    TABLE_FILES,
    ReportTables,
    build_report_tables,
    category_counts,
    load_published,
    trailing_days,
    withheld_by_layer,
)
from summarize.taxonomy import load_taxonomy

TAX = load_taxonomy("ailuminate_v1")
CODES = TAX.codes
DAY = "2026-11-10"
EVIL = "</script><script>alert(1)</script>"


def synthetic_released(
    day: str,
    n_base: int,
    *,
    n_top: int = 3,
    n_mid: int = 6,
    seed: int = 0,
    titles: dict[int, str] | None = None,
) -> pl.DataFrame:
    """A released hierarchy: ``n_top`` top nodes over ``n_mid`` mid nodes over ``n_base`` base clusters.

    Base ids are 0..n_base-1, mid ids 10_000+, top ids 20_000+. Base clusters
    carry track ids ``t<id>`` so they link across days; parents sum their children.
    """
    rng = np.random.default_rng(seed)
    titles = titles or {}
    conv = rng.integers(5, 400, n_base)
    accounts = np.minimum(conv, rng.integers(5, 120, n_base))
    concern = rng.uniform(1, 5, n_base)
    mid_of = np.arange(n_base) % n_mid
    top_of_mid = np.arange(n_mid) % n_top
    centres = rng.normal(0, 6, (n_top, 2))
    xy = centres[top_of_mid[mid_of]] + rng.normal(0, 1.2, (n_base, 2))
    cats = {c: (rng.random(n_base) < 0.25) * rng.integers(0, 30, n_base) for c in CODES}
    rows = []
    for i in range(n_base):
        rows.append(
            {
                "day": day,
                "cluster_id": i,
                "level": 0,
                "parent_id": 10_000 + int(mid_of[i]),
                "title": titles.get(i, f"Base topic {i}"),
                "description": f"Requests about topic {i}",
                "name_source": "llm",
                "conversations": int(conv[i]),
                "unique_accounts": int(accounts[i]),
                "mean_concern": float(concern[i]),
                "share_concerning": float(max(0.0, (concern[i] - 3) / 2)),
                "top_task": "coding",
                "x": float(xy[i, 0]),
                "y": float(xy[i, 1]),
                **{f"cat_{c}": int(cats[c][i]) for c in CODES},
            }
        )
    base = pl.DataFrame(rows)

    def parents(
        children: pl.DataFrame, level: int, name: str, parent_of: dict[int, int] | None
    ) -> pl.DataFrame:
        """Parent rows summed from their children."""
        grouped = children.group_by("parent_id").agg(
            pl.col("conversations").sum(),
            pl.col("unique_accounts").sum(),
            ((pl.col("mean_concern") * pl.col("conversations")).sum() / pl.col("conversations").sum()).alias(
                "mean_concern"
            ),
            pl.col("share_concerning").mean(),
            pl.col("x").mean(),
            pl.col("y").mean(),
            *[pl.col(f"cat_{c}").sum() for c in CODES],
        )
        parent = (
            pl.col("cluster_id").replace_strict(parent_of, return_dtype=pl.Int64)
            if parent_of
            else pl.lit(None, pl.Int64)
        )
        return (
            grouped.rename({"parent_id": "cluster_id"})
            .sort("cluster_id")
            .with_columns(
                pl.lit(day).alias("day"),
                pl.lit(level).alias("level"),
                parent.alias("parent_id"),
                (pl.lit(f"{name} ") + pl.col("cluster_id").cast(pl.Utf8)).alias("title"),
                pl.lit(f"A {name.lower()}").alias("description"),
                pl.lit("llm").alias("name_source"),
                pl.lit("coding").alias("top_task"),
            )
            .select(base.columns)
        )

    mids = parents(base, 1, "Mid group", {10_000 + m: 20_000 + int(top_of_mid[m]) for m in range(n_mid)})
    tops = parents(mids, 2, "Top group", None)
    return pl.concat([base, mids, tops], how="vertical_relaxed")


def synthetic_flags(
    n_base: int, flagged: dict[int, list[str]], codes: dict[int, list[str]] | None = None
) -> pl.DataFrame:
    codes = codes or {}
    return pl.DataFrame(
        {
            "cluster_id": list(range(n_base)),
            "track_id": [f"t{i}" for i in range(n_base)],
            "is_new": [i in flagged for i in range(n_base)],
            "growth_ratio": [3.0 if i in flagged else 1.0 for i in range(n_base)],
            "flagged": [i in flagged for i in range(n_base)],
            "reasons": [flagged.get(i, []) for i in range(n_base)],
            "reason_codes": [codes.get(i, []) for i in range(n_base)],
        },
        schema={
            "cluster_id": pl.Int64,
            "track_id": pl.Utf8,
            "is_new": pl.Boolean,
            "growth_ratio": pl.Float64,
            "flagged": pl.Boolean,
            "reasons": pl.List(pl.Utf8),
            "reason_codes": pl.List(pl.Utf8),
        },
    )


def synthetic_day(
    day: str = DAY,
    n_base: int = 12,
    *,
    n_top: int = 3,
    n_mid: int = 6,
    flagged: dict[int, list[str]] | None = None,
    seed: int = 0,
    titles: dict[int, str] | None = None,
    epsilon: float | None = None,
    codes: dict[int, list[str]] | None = None,
) -> ReportTables:
    """One day's published tables from a synthetic released hierarchy."""
    flagged = {3: ["new cluster", "concern 4.6 at or above 4"]} if flagged is None else flagged
    released = synthetic_released(day, n_base, n_top=n_top, n_mid=n_mid, seed=seed, titles=titles)
    base = released.filter(pl.col("level") == 0)
    summary = {
        "records_read": 1000,
        "records_dead_lettered": 7,
        "facets_extracted": 990,
        "facets_dead_lettered": 3,
        "noise_conversations": 40,
        "clusters_released": len(released),
        "clusters_withheld": 2,
        "clusters_flagged": len(flagged),
        "flagged_clusters_withheld": 0,
        "conversations_in_released_clusters": int(base["conversations"].sum()),
        "dp_epsilon": epsilon,
    }
    dead = pl.DataFrame(
        {
            "stage": ["ingest", "ingest", "facets"],
            "reason": ["invalid_json", "missing_account", "schema"],
            "records": [5, 2, 3],
        }
    )
    entities = pl.DataFrame(
        {"entity_type": ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"], "count": [120, 40, 9]}
    )
    withheld = pl.DataFrame(
        {
            "cluster_id": [900, 901],
            "reason": ["few accounts", "pii"],
            "layer": ["threshold", "pii_rescan"],
            "level": [0, 0],
        }
    )
    return build_report_tables(
        day, released, synthetic_flags(n_base, flagged, codes), CODES, summary, dead, entities, withheld
    )


def render(tables: ReportTables, history: ReportTables | None = None, **kw) -> str:
    return render_report(tables, TAX, history, min_accounts=5, min_conversations=5, **kw)


class Outline(HTMLParser):
    """Collects ids, classes, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, dict[str, str | None]] = {}
        self.attrs: list[tuple[str, str, str | None]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.stack: list[str] = []
        self.tree_items: list[tuple[str, int]] = []  # (id, nesting depth among li.n)
        self._li_depth = 0
        self._li_stack: list[bool] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k, v in attrs:
            self.attrs.append((tag, k, v))
        if "id" in a:
            self.ids[a["id"] or ""] = a
        if tag == "script":
            self._in_script = True
        if tag == "li":
            is_node = "n" in (a.get("class") or "").split()
            self._li_stack.append(is_node)
            if is_node:
                self.tree_items.append((a.get("id") or "", self._li_depth))
                self._li_depth += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "li" and self._li_stack and self._li_stack.pop():
            self._li_depth -= 1

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


# --- tables -----------------------------------------------------------------------------------


def test_published_tables_have_the_documented_schemas():
    tables = synthetic_day()
    for name, (file, schema) in TABLE_FILES.items():
        frame = getattr(tables, name)
        assert dict(frame.schema) == schema, name
        assert f"`{file}`" in REPORT_SCHEMA_DOC
    assert tables.clusters["flagged"][0] and tables.clusters["cluster_id"][0] == 3  # flagged first
    assert not {"account", "conversation_id", "summary", "request"} & set(tables.clusters.columns)


def test_category_counts_carry_levels_and_skip_zeros():
    released = pl.DataFrame(
        {
            "day": ["d"] * 3,
            "cluster_id": [0, 1, 9],
            "level": [0, 0, 1],
            "cat_a": [2, 0, 2],
            "cat_b": [0, 0, 1],
        }
    )
    out = category_counts(released, ["a", "b"])
    assert out.rows() == [("d", 0, 0, "a", 2), ("d", 9, 1, "a", 2), ("d", 9, 1, "b", 1)]


@pytest.mark.parametrize(
    ("withheld", "levels", "expected"),
    [
        (
            pl.DataFrame({"cluster_id": [1, 2], "layer": ["threshold", "threshold"]}),
            [0],
            {("threshold", 0): 2},
        ),
        (
            pl.DataFrame(
                {
                    "cluster_id": [1, 2, 3],
                    "layer": ["pii_rescan", "privacy_auditor", None],
                    "level": [0, 1, 1],
                }
            ),
            [0, 1, 2],
            {("pii_rescan", 0): 1, ("privacy_auditor", 1): 1, ("threshold", 1): 1},
        ),
        (pl.DataFrame({"cluster_id": [1]}), [0], {("threshold", 0): 1}),
    ],
)
def test_withheld_by_layer_lists_every_layer(withheld, levels, expected):
    out = withheld_by_layer(DAY, withheld, levels)
    assert out["layer"].unique(maintain_order=True).to_list() == list(LAYERS)
    assert set(out["level"]) == set(levels)
    counts = {(r["layer"], r["level"]): r["clusters"] for r in out.iter_rows(named=True) if r["clusters"]}
    assert counts == expected


def test_loader_reads_only_published_days_and_tolerates_gaps_and_old_schemas(tmp_path):
    reports = tmp_path / "reports"
    synthetic_day("2026-11-07", seed=1).write(reports / "2026-11-07")
    old = synthetic_day("2026-11-09", seed=2)
    # An older run: no parent_id or level on categories, no withheld table.
    (reports / "2026-11-09").mkdir(parents=True)
    old.clusters.drop("parent_id", "name_source").write_parquet(reports / "2026-11-09" / "clusters.parquet")
    old.categories.drop("level").write_parquet(reports / "2026-11-09" / "cluster_categories.parquet")
    old.summary.write_parquet(reports / "2026-11-09" / "run_summary.parquet")
    (reports / "2026-11-08").mkdir()  # a day that failed before publishing
    loaded = load_published(reports, trailing_days(DAY, 4))
    assert trailing_days(DAY, 4) == ["2026-11-06", "2026-11-07", "2026-11-08", "2026-11-09"]
    assert loaded.days == ("2026-11-07", "2026-11-09")
    assert loaded.clusters.filter(pl.col("day") == "2026-11-09")["parent_id"].null_count() == len(
        old.clusters
    )
    # Category levels of the old day are recovered from its clusters.
    old_cats = loaded.categories.filter(pl.col("day") == "2026-11-09")
    assert old_cats["level"].to_list() == old.categories["level"].to_list()
    assert set(loaded.withheld["day"]) == {"2026-11-07"}
    assert load_published(reports, ["2026-10-01"]).days == ()


# --- the day page ---------------------------------------------------------------------------------


def test_tree_nests_levels_and_puts_flagged_first():
    tables = synthetic_day(n_base=12, flagged={7: ["new cluster"]})
    roots, nodes = build_tree(tables.clusters, tables.categories, TAX)
    assert [n.level for n in roots] == [2, 2, 2]
    assert sorted(n.id for n in nodes if n.level == 0) == list(range(12))
    parent = next(n for n in nodes if n.level == 1 and any(c.id == 7 for c in n.children))
    assert parent.children[0].id == 7 and parent.n_flagged == 1
    assert all(
        a.conversations >= b.conversations
        for a, b in zip(parent.children[1:], parent.children[2:], strict=False)
    )
    for node in nodes:  # category counts as published, per node
        published = tables.categories.filter(pl.col("cluster_id") == node.id)
        assert {code: count for _, code, _, count, _ in node.categories} == dict(
            published.select("category", "conversations").iter_rows()
        )


def test_orphans_of_a_withheld_parent_are_kept():
    tables = synthetic_day(n_base=12)
    clusters = tables.clusters.filter(pl.col("cluster_id") != 10_001)  # one mid node withheld
    roots, nodes = build_tree(clusters, tables.categories, TAX)
    group = roots[-1]
    assert group.synthetic and sorted(n.id for n in group.children) == [1, 7]
    assert sorted(n.id for n in nodes if n.level == 0) == list(range(12))


def test_flat_day_renders_base_clusters_at_the_root():
    tables = synthetic_day(n_base=5)
    flat = ReportTables(
        tables.days,
        tables.clusters.filter(pl.col("level") == 0).with_columns(pl.lit(None, pl.Int64).alias("parent_id")),
        *(getattr(tables, n) for n in ("categories", "summary", "dead_letters", "entities", "withheld")),
    )
    page = outline(render(flat))
    assert [d for _, d in page.tree_items] == [0] * 5


def test_day_page_structure():
    tables = synthetic_day(
        n_base=12,
        flagged={3: ["new cluster", "concern 4.6"], 8: ["grew x3.0"]},
        codes={3: ["new", "mean_concern"], 8: ["growth"]},
        epsilon=1.25,
    )
    html = render(tables)
    page = outline(html)
    # Tree: three top nodes, their mid nodes, then base clusters, nested by level.
    depth = {i: d for i, d in page.tree_items}
    assert {depth[f"n-{i}"] for i in (20_000, 20_001, 20_002)} == {0}
    assert {depth[f"n-{i}"] for i in range(10_000, 10_006)} == {1}
    assert {depth[f"n-{i}"] for i in range(12)} == {2}
    # Flagged section comes first and lists both flagged clusters with their reasons.
    assert (
        html.index('id="flags"')
        < html.index('id="hierarchy"')
        < html.index('id="map"')
        < html.index('id="trends"')
    )
    flagged_block = html[html.index('id="flags"') : html.index('id="hierarchy"')]
    assert flagged_block.count('class="card flagged-item"') == 2
    # DP on: reasons are restated from the published figures, not the exact ones.
    assert "new: no similar cluster" in flagged_block and "mean concern" in flagged_block
    assert "share of traffic grew" in flagged_block and "grew x3.0" not in flagged_block
    # Map: one circle per released base cluster, with a hover title.
    map_block = html[html.index('id="map"') : html.index('id="trends"')]
    assert map_block.count("data-reveal=") == 12 and map_block.count("<title>Base topic") == 12
    # Run summary: dead letters, entities, every privacy layer, epsilon.
    summary = html[html.index('id="summary"') :]
    for text in ("invalid_json", "EMAIL_ADDRESS", "1.25", *(f'data-layer="{layer}"' for layer in LAYERS)):
        assert text in summary
    assert "Differentially private" in html
    # One trend chart per taxonomy category.
    assert html.count('class="tc cat-trend"') == len(CODES)


def test_title_markup_is_escaped_everywhere():
    tables = synthetic_day(n_base=6, titles={3: EVIL, 4: 'Q" onmouseover="alert(2)'}, flagged={3: [EVIL]})
    html = render(tables)
    assert EVIL not in html and "<script>alert" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'onmouseover="alert' not in html
    page = outline(html)
    assert len(page.scripts) == 1 and "alert" not in page.scripts[0]  # only the page's own script
    assert not [(t, k) for t, k, _ in page.attrs if k.startswith("on")]


@pytest.mark.parametrize("kind", ["day", "range"])
def test_no_external_urls(kind, tmp_path):
    if kind == "day":
        html = render(synthetic_day())
    else:
        synthetic_day("2026-11-09").write(tmp_path / "2026-11-09")
        html = render_range_report(
            load_published(tmp_path, ["2026-11-09"]), TAX, ["2026-11-08", "2026-11-09"]
        )
    page = outline(html)
    links = [
        (t, k, v)
        for t, k, v in page.attrs
        if k in {"src", "href", "action", "xlink:href", "srcset", "poster", "data"}
    ]
    assert all(v is None or v.startswith("#") for _, _, v in links), links
    assert not re.search(r"(?i)(https?:|ftp:)?//[a-z0-9.-]+\.[a-z]{2,}", html.replace("http-equiv", ""))
    assert not re.search(r"(?i)@import|url\(|fetch\(|XMLHttpRequest|WebSocket|import\(", html)
    assert "default-src 'none'" in html  # the page's own policy forbids fetches too


def test_member_text_and_account_ids_never_reach_the_page():
    """Only published columns are rendered, even if the input frame carries private ones."""
    tables = synthetic_day(n_base=6)
    leaky = tables.clusters.with_columns(
        pl.lit("MEMBER-TEXT: my card is 4111 1111 1111 1111").alias("summary"),
        pl.lit("acct-raw-98765").alias("account"),
        pl.lit(["conv-raw-1"]).alias("conversation_ids"),
    )
    leaky_tables = ReportTables(
        tables.days,
        leaky,
        *(getattr(tables, n) for n in ("categories", "summary", "dead_letters", "entities", "withheld")),
    )
    html = render(leaky_tables)
    for planted in ("MEMBER-TEXT", "4111 1111", "acct-raw-98765", "conv-raw-1"):
        assert planted not in html
    # And the published table builder drops them before anything is written.
    released = synthetic_released(DAY, 6).with_columns(
        pl.lit("MEMBER-TEXT").alias("summary"), pl.lit("acct-raw-98765").alias("account")
    )
    built = build_report_tables(
        DAY,
        released,
        None,
        CODES,
        {},
        pl.DataFrame({"stage": [], "reason": [], "records": []}),
        pl.DataFrame({"entity_type": [], "count": []}),
        pl.DataFrame({"cluster_id": []}),
    )
    assert "summary" not in built.clusters.columns and "account" not in built.clusters.columns


def test_trends_come_from_earlier_published_days(tmp_path):
    reports = tmp_path / "reports"
    for back, seed in ((3, 1), (1, 2)):
        day = trailing_days(DAY, back)[0]
        synthetic_day(day, seed=seed).write(reports / day)
    history = load_published(reports, trailing_days(DAY, 13))
    today = synthetic_day(DAY, seed=3)
    html = render(today, history, trend_days=5)
    # The flagged cluster's sparkline lists the earlier days' published counts (track t3) and gaps.
    earlier = history.clusters.filter(pl.col("track_id") == "t3")
    card = html[html.index('class="card flagged-item"') : html.index('id="hierarchy"')]
    for day, conv in earlier.select("day", "conversations").iter_rows():
        assert f"{day}: {conv:,}" in card
    assert f"{trailing_days(DAY, 2)[0]}: no report" in card
    # Category trend totals are base-level sums.
    code = today.categories["category"][0]
    total = today.categories.filter((pl.col("level") == 0) & (pl.col("category") == code))[
        "conversations"
    ].sum()
    chart = html[html.index(f'data-category="{code}"') :]
    assert f"{DAY}: {total:,}" in chart[: chart.index("</svg>")]
    assert "From the published reports of 2 earlier day(s)" in html


def test_a_day_with_nothing_released_renders():
    tables = synthetic_day(n_base=4)
    empty = ReportTables(
        tables.days,
        tables.clusters.clear(),
        tables.categories.clear(),
        *(getattr(tables, n) for n in ("summary", "dead_letters", "entities", "withheld")),
    )
    html = render(empty)
    assert "No cluster met the privacy thresholds today." in html and 'id="tree"' not in html
    assert "No released cluster was flagged today." in html


def test_render_report_takes_one_day():
    with pytest.raises(ValueError, match="one day"):
        render(ReportTables.empty())


# --- the range page -------------------------------------------------------------------------------


def test_range_report(tmp_path):
    reports = tmp_path / "reports"
    days = ["2026-11-06", "2026-11-07", "2026-11-08", "2026-11-09"]
    for i, day in enumerate(days):
        if day != "2026-11-08":
            synthetic_day(day, seed=i, flagged={i: [f"reason on {day}"]}).write(reports / day)
    path = write_range_report(reports, days[0], days[-1], TAX)
    html = path.read_text()
    assert path.name == "range_2026-11-06_2026-11-09.html"
    assert html.count('class="day-row') == 4 and html.count('class="day-row missing"') == 1
    assert "3 of 4 day(s)" in html
    assert all(f"reason on {d}" in html for d in days if d != "2026-11-08")
    assert html.count('class="tc cat-trend"') == len(CODES)
    records = load_published(reports, days).summary.filter(pl.col("metric") == "records_read")
    assert len(records) == 3
    nothing = render_range_report(ReportTables.empty(), TAX, days)
    assert nothing.count('class="day-row missing"') == 4 and "0 of 4 day(s)" in nothing


# --- chart helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "segments", "delta"),
    [
        ([1.0, 2.0, 3.0], 1, 1.0),
        ([1.0, None, 3.0, 4.0], 1, 1.0),
        ([None, None, 5.0], 0, None),
        ([2.0, 2.0], 1, 0.0),
    ],
)
def test_line_chart_gaps_and_delta(values, segments, delta):
    days = [f"d{i}" for i in range(len(values))]
    chart = line_chart(days, values)
    assert len(chart.lines) == segments and chart.delta == delta
    assert all(0 <= float(v) <= chart.width for path in chart.lines for v in re.findall(r"[\d.]+", path))


@pytest.mark.parametrize(
    ("value", "colour"), [(1.0, "#2f8f5b"), (5.0, "#c62f2c"), (9.0, "#c62f2c"), (None, "#9aa3b2")]
)
def test_concern_colour(value, colour):
    assert concern_colour(value) == colour


@pytest.mark.parametrize(
    ("candidates", "kept"),
    [
        ([(100, 100, "Alpha group"), (104, 102, "Beta group")], ["Alpha group"]),
        ([(100, 100, "Alpha group"), (400, 100, "Beta group")], ["Alpha group", "Beta group"]),
        ([(100, 100, "Alpha"), (100, 130, "Beta"), (100, 110, "Gamma")], ["Alpha", "Beta"]),
    ],
)
def test_map_labels_do_not_overlap(candidates, kept):
    assert [t for _, _, t in _without_overlaps(candidates)] == kept
