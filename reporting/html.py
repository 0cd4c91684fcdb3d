"""The self-contained analyst HTML report (aggregates only, no external fetches).

Pure functions over the published :class:`~reporting.tables.ReportTables`:
:func:`render_report` for one day (trends from earlier days' published tables)
and :func:`render_range_report` for a date range. All markup is rendered
server-side by Jinja2 with autoescaping; the inline script only expands,
filters and highlights what is already on the page.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reporting.tables import LAYERS, ReportTables, concat_tables, day_range, load_published, write_atomic
from summarize.taxonomy import Taxonomy

_HERE = Path(__file__).parent
_env = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_CSS = (_HERE / "static" / "report.css").read_text(encoding="utf-8")
_JS = (_HERE / "static" / "report.js").read_text(encoding="utf-8")
# Inlined verbatim, so they must not be able to close their own element.
if "</" in _JS or "</" in _CSS:
    raise ValueError("reporting/static files must not contain '</' (they are inlined into <script>/<style>)")

# Categorical colours for taxonomy categories (cycled when a taxonomy has more).
CATEGORY_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#79706e",
    "#1f77b4",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#bcbd22",
    "#9edae5",
    "#17becf",
)
# Concern 1 (benign) to 5 (most concerning).
CONCERN_STOPS = ("#2f8f5b", "#8db146", "#e2b33c", "#e8772e", "#c62f2c")

METRIC_LABELS = {
    "records_read": "Records read",
    "records_dead_lettered": "Dead-lettered at ingest",
    "facets_extracted": "Conversations summarised",
    "facets_dead_lettered": "Facet failures",
    "noise_conversations": "Unclustered (noise)",
    "conversations_in_released_clusters": "In released clusters",
    "clusters_released": "Clusters released",
    "clusters_withheld": "Clusters withheld",
    "clusters_flagged": "Clusters flagged",
    "flagged_clusters_withheld": "Flagged but withheld",
    "dp_epsilon": "DP \u03b5 spent",
    "dp_delta": "DP \u03b4 spent",
    "dp_selection_epsilon": "DP \u03b5, partition selection",
    "dp_counts_epsilon": "DP \u03b5, published counts",
    "dp_selection_threshold": "DP selection threshold (accounts)",
    "dp_demo_budget": "DP demo budget (1 = yes)",
}
LAYER_LABELS = {
    "threshold": "k-anonymity thresholds",
    "pii_rescan": "PII re-scan of names",
    "privacy_auditor": "LLM privacy auditor",
    "dp_partition_selection": "DP partition selection",
    "no_released_children": "parent with no released cluster below",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


_env.filters["n"] = _fmt


def concern_colour(value: float | None) -> str:
    """A colour for a mean concern on the 1-5 scale (grey when unknown)."""
    if value is None or math.isnan(value):
        return "#9aa3b2"
    t = min(4.0, max(0.0, value - 1.0))
    i = min(3, int(t))
    a, b = CONCERN_STOPS[i], CONCERN_STOPS[i + 1]
    f = t - i
    rgb = [round(int(a[k : k + 2], 16) * (1 - f) + int(b[k : k + 2], 16) * f) for k in (1, 3, 5)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _concern_class(value: float | None) -> int:
    return 0 if value is None or math.isnan(value) else min(5, max(1, round(value)))


# --- small inline SVG charts ---------------------------------------------------------------


@dataclass
class Chart:
    """A small line chart over days, as SVG path data (missing days leave gaps)."""

    width: int
    height: int
    lines: list[str]
    areas: list[str]
    days: tuple[str, str]
    dots: list[tuple[float, float, str]]
    last: tuple[float, float] | None
    ymax: float
    tooltip: str
    value: float | None
    delta: float | None


def line_chart(
    days: Sequence[str], values: Sequence[float | None], width: int = 260, height: int = 56
) -> Chart:
    """Lay out a line chart of ``values`` (one per day, ``None`` = no published data that day)."""
    pad = 4.0
    known = [v for v in values if v is not None]
    ymax = max(known + [1.0])
    n = len(values)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)
        y = height - pad - (height - 2 * pad) * (v / ymax)
        return round(x, 1), round(y, 1)

    lines: list[list[tuple[float, float]]] = []
    run: list[tuple[float, float]] = []
    dots: list[tuple[float, float, str]] = []
    for i, v in enumerate(values):
        if v is None:
            if run:
                lines.append(run)
            run = []
            continue
        run.append(xy(i, v))
        dots.append((*xy(i, v), f"{days[i]}: {_fmt(v)}"))
    if run:
        lines.append(run)
    paths = ["M" + " L".join(f"{x},{y}" for x, y in seg) for seg in lines if len(seg) > 1]
    singles = [seg[0] for seg in lines if len(seg) == 1]
    floor = height - pad
    areas = [
        f"M{seg[0][0]},{floor} L" + " L".join(f"{x},{y}" for x, y in seg) + f" L{seg[-1][0]},{floor} Z"
        for seg in lines
        if len(seg) > 1
    ]
    last = xy(n - 1, values[-1]) if n and values[-1] is not None else None
    previous = next((v for v in reversed(values[:-1]) if v is not None), None)
    value = values[-1] if n else None
    delta = value - previous if value is not None and previous is not None else None
    tooltip = "\n".join(
        f"{d}: {_fmt(v) if v is not None else 'no report'}" for d, v in zip(days, values, strict=True)
    )
    # Every point gets a dot (with its own hover title) on short windows; isolated points always do.
    shown = dots if n <= 31 else [d for d in dots if (d[0], d[1]) in singles]
    return Chart(
        width,
        height,
        paths,
        areas,
        (days[0], days[-1]) if n else ("", ""),
        shown,
        last,
        ymax,
        tooltip,
        value,
        delta,
    )


# --- the tree of released clusters ---------------------------------------------------------


@dataclass
class Node:
    """One node of the released hierarchy, as the page shows it."""

    id: int
    level: int
    title: str
    description: str
    conversations: int
    accounts: int | None
    concern: float | None
    share_concerning: float | None
    top_task: str
    name_source: str
    flagged: bool = False
    is_new: bool = False
    growth: float | None = None
    reasons: list[str] = field(default_factory=list)
    track_id: str | None = None
    x: float | None = None
    y: float | None = None
    categories: list[tuple[int, str, str, int, float]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    n_flagged: int = 0
    bar: float = 0.0
    synthetic: bool = False

    @property
    def concern_class(self) -> int:
        """Mean concern rounded to 1-5 (0 when unknown), for colouring."""
        return _concern_class(self.concern)

    @property
    def colour(self) -> str:
        """The map colour of the mean concern."""
        return concern_colour(self.concern)

    def path(self) -> list[str]:
        """Titles of the ancestors, top first."""
        out, p = [], self.parent
        while p is not None:
            out.append(p.title)
            p = p.parent
        return out[::-1]

    def descendants(self) -> list[Node]:
        """Every node below this one."""
        out, stack = [], list(self.children)
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(n.children)
        return out


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def build_tree(
    clusters: pl.DataFrame, categories: pl.DataFrame, taxonomy: Taxonomy
) -> tuple[list[Node], list[Node]]:
    """The released hierarchy as nodes: ``(roots, all_nodes)``.

    Nodes whose parent was not released hang under one synthetic group, so
    nothing released is lost. Children are sorted flagged first, then by size.
    """
    names = {c.code: c.name for c in taxonomy.categories}
    colour = {c.code: i % len(CATEGORY_COLOURS) for i, c in enumerate(taxonomy.categories)}
    cats: dict[int, list[tuple[str, int]]] = {}
    for cid, code, count in categories.select("cluster_id", "category", "conversations").iter_rows():
        cats.setdefault(cid, []).append((code, int(count)))
    nodes: dict[int, Node] = {}
    parents: dict[int, int | None] = {}
    for r in clusters.iter_rows(named=True):
        node = Node(
            id=int(r["cluster_id"]),
            level=int(r["level"] or 0),
            title=r["title"] or f"Cluster {r['cluster_id']}",
            description=r["description"] or "",
            conversations=int(r["conversations"] or 0),
            accounts=None if r["unique_accounts"] is None else int(r["unique_accounts"]),
            concern=_num(r["mean_concern"]),
            share_concerning=_num(r["share_concerning"]),
            top_task=r["top_task"] or "",
            name_source=r["name_source"] or "",
            flagged=bool(r["flagged"]),
            is_new=bool(r["is_new"]),
            growth=_num(r["growth_ratio"]),
            reasons=list(r["reasons"] or []),
            track_id=r["track_id"],
            x=_num(r["x"]),
            y=_num(r["y"]),
        )
        nodes[node.id] = node
        parents[node.id] = r["parent_id"]
    top = max((n.level for n in nodes.values()), default=0)
    roots, orphans = [], []
    for node in nodes.values():
        parent_id = parents[node.id]
        parent = nodes.get(parent_id) if parent_id is not None else None
        if node.level == top:
            roots.append(node)
        elif parent is not None and parent.level > node.level:
            node.parent = parent
            parent.children.append(node)
        else:
            orphans.append(node)
    if orphans:
        group = Node(
            id=-1,
            level=top,
            title="Released clusters whose parent group was withheld",
            description="",
            conversations=sum(n.conversations for n in orphans if n.level == min(o.level for o in orphans)),
            accounts=None,
            concern=None,
            share_concerning=None,
            top_task="",
            name_source="",
            synthetic=True,
        )
        for node in orphans:
            node.parent = group
        group.children = orphans
        roots.append(group)

    def finish(node: Node) -> tuple[int, dict[str, int]]:
        flagged, counts = int(node.flagged), dict(cats.get(node.id, []))
        child_counts: dict[str, int] = {}
        for child in node.children:
            f, c = finish(child)
            flagged += f
            for k, v in c.items():
                child_counts[k] = child_counts.get(k, 0) + v
        if not counts and node.children:
            counts = child_counts  # a parent without its own category rows: its children's
        node.n_flagged = flagged
        node.children.sort(key=lambda n: (-n.n_flagged if n.level == 0 else 0, -n.conversations, n.id))
        denominator = max(node.conversations, sum(counts.values()), 1)
        node.categories = [
            (colour.get(code, 0), code, names.get(code, code), count, round(100 * count / denominator, 1))
            for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        return flagged, counts

    for root in roots:
        finish(root)
    roots.sort(key=lambda n: (n.synthetic, -n.conversations, n.id))
    all_nodes = [n for root in roots for n in (root, *root.descendants())]
    biggest: dict[int, int] = {}
    for n in all_nodes:
        biggest[n.level] = max(biggest.get(n.level, 1), n.conversations)
    for n in all_nodes:
        n.bar = round(100 * n.conversations / biggest[n.level], 1)
    return roots, all_nodes


def level_names(levels: Sequence[int]) -> dict[int, str]:
    """Display names for the levels present: base, mid (or mid 1, mid 2, ...), top."""
    levels = sorted(set(levels)) or [0]
    top = levels[-1]
    mids = [v for v in levels if 0 < v < top]
    names = {0: "base", top: "top" if top else "base"}
    for i, v in enumerate(mids, 1):
        names[v] = "mid" if len(mids) == 1 else f"mid {i}"
    return names


# --- the 2-D map ------------------------------------------------------------------------------


@dataclass
class MapView:
    """Circles and labels of the base-cluster map, in SVG user units."""

    width: int
    height: int
    circles: list[tuple[float, float, float, Node]]
    labels: list[tuple[float, float, str]]


def map_view(nodes: Sequence[Node], width: int = 1000, height: int = 520) -> MapView:
    """Base clusters placed by their layout ``x``/``y``, sized by conversations.

    Largest are drawn first so small ones stay visible; flagged ones are drawn last, on top.
    """
    # (node, x, y) with the coordinates known
    base = [
        (n, n.x, n.y)
        for n in nodes
        if n.level == 0 and not n.synthetic and n.x is not None and n.y is not None
    ]
    if not base:
        return MapView(width, height, [], [])
    xs, ys = [x for _, x, _ in base], [y for _, _, y in base]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 30.0
    scale = min((width - 2 * pad) / ((x1 - x0) or 1.0), (height - 2 * pad) / ((y1 - y0) or 1.0))
    ox = (width - scale * (x1 - x0)) / 2
    oy = (height - scale * (y1 - y0)) / 2

    def place(x: float, y: float) -> tuple[float, float]:
        return round(ox + scale * (x - x0), 1), round(height - (oy + scale * (y - y0)), 1)

    biggest = max(n.conversations for n, _, _ in base) or 1
    rmax = max(7.0, min(26.0, 180.0 / math.sqrt(len(base))))
    circles = []
    for n, x, y in sorted(base, key=lambda p: (p[0].flagged, -p[0].conversations, p[0].id)):
        cx, cy = place(x, y)
        circles.append(
            (cx, cy, round(2.0 + (rmax - 2.0) * math.sqrt(max(n.conversations, 0) / biggest), 1), n)
        )
    # Label the top-level groups at their members' weighted centre, or the largest clusters when flat.
    groups: dict[int, tuple[Node, list[tuple[Node, float, float]]]] = {}
    for n, x, y in base:
        root = _root(n)
        if root is not n and not root.synthetic:
            groups.setdefault(root.id, (root, []))[1].append((n, x, y))
    candidates = []
    for root, members in sorted(groups.values(), key=lambda g: (-g[0].conversations, g[0].id))[:14]:
        weight = sum(max(m.conversations, 1) for m, _, _ in members)
        gx = sum(x * max(m.conversations, 1) for m, x, _ in members) / weight
        gy = sum(y * max(m.conversations, 1) for m, _, y in members) / weight
        candidates.append((*place(gx, gy), root.title))
    if not groups:
        largest = sorted(circles, key=lambda c: -c[3].conversations)[:8]
        candidates = [(cx, round(cy - r - 4, 1), n.title) for cx, cy, r, n in largest]
    return MapView(width, height, circles, _without_overlaps(candidates))


def _without_overlaps(
    candidates: Sequence[tuple[float, float, str]], max_chars: int = 36
) -> list[tuple[float, float, str]]:
    """Labels in order of importance, dropping any whose (estimated) box overlaps one already kept."""
    kept: list[tuple[float, float, str]] = []
    boxes: list[tuple[float, float, float, float]] = []
    for x, y, text in candidates:
        half = 3.8 * min(len(text), max_chars + 1) + 4  # about 7.6 px per character at 13 px, centred
        box = (x - half, y - 14, x + half, y + 4)
        if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in boxes):
            kept.append((x, y, text))
            boxes.append(box)
    return kept


def _root(node: Node) -> Node:
    while node.parent is not None:
        node = node.parent
    return node


# --- trends from published tables ---------------------------------------------------------------


def _series(
    frame: pl.DataFrame, key: str, days: Sequence[str], published: set[str]
) -> dict[Any, list[float | None]]:
    """``day, <key>, value`` rows as one value list per key over ``days`` (None where unpublished, 0 where absent)."""
    out: dict[Any, list[float | None]] = {}
    index = {d: i for i, d in enumerate(days)}
    for day, k, v in frame.select("day", key, "value").iter_rows():
        if day in index:
            out.setdefault(k, [0.0 if d in published else None for d in days])[index[day]] = float(v)
    return out


def _base(clusters: pl.DataFrame) -> pl.DataFrame:
    return clusters.filter(pl.col("level").fill_null(0) == 0)


def track_series(
    tables: ReportTables, days: Sequence[str], tracks: Mapping[str, Any]
) -> dict[Any, list[float | None]]:
    """Conversations per day of the base clusters on ``tracks`` (track id -> group key), summed per group."""
    if not tracks:
        return {}
    mapping = pl.DataFrame(
        {"track_id": list(tracks), "group": list(tracks.values())},
        schema={"track_id": pl.Utf8, "group": pl.Int64},
    )
    frame = (
        _base(tables.clusters)
        .join(mapping, on="track_id")
        .group_by("day", "group")
        .agg(pl.col("conversations").sum().alias("value"))
    )
    series = _series(frame, "group", days, set(tables.days))
    published = set(tables.days)
    for group in set(tracks.values()):
        series.setdefault(group, [0.0 if d in published else None for d in days])
    return series


def category_series(tables: ReportTables, days: Sequence[str]) -> dict[str, list[float | None]]:
    """Conversations per day in released base clusters, per taxonomy category."""
    frame = (
        tables.categories.filter(pl.col("level").fill_null(0) == 0)
        .group_by("day", "category")
        .agg(pl.col("conversations").sum().alias("value"))
    )
    return _series(frame, "category", days, set(tables.days))


def metric_series(tables: ReportTables, days: Sequence[str]) -> dict[str, list[float | None]]:
    """Run-summary metrics per day."""
    return _series(tables.summary, "metric", days, set(tables.days))


# --- pages ---------------------------------------------------------------------------------------


def _kpis(metrics: Mapping[str, float]) -> list[tuple[str, str, str]]:
    keys = [k for k in METRIC_LABELS if k in metrics] + sorted(k for k in metrics if k not in METRIC_LABELS)
    return [
        (
            k,
            METRIC_LABELS.get(k, k.replace("_", " ").capitalize()),
            f"{metrics[k]:.1e}"
            if k == "dp_delta"
            else f"{metrics[k]:.2f}"
            if k in ("dp_epsilon", "dp_selection_epsilon", "dp_counts_epsilon")
            else _fmt(metrics[k]),
        )
        for k in keys
    ]


def _withheld_rows(
    withheld: pl.DataFrame, names: Mapping[int, str]
) -> tuple[list[int], list[dict[str, Any]]]:
    levels = sorted(set(withheld["level"].to_list()) | set(names)) or [0]
    rows = []
    layers = list(LAYERS) + sorted(set(withheld["layer"].to_list()) - set(LAYERS))
    for layer in layers:
        part = withheld.filter(pl.col("layer") == layer)
        counts = {int(lv): int(c) for lv, c in part.select("level", "clusters").iter_rows()}
        rows.append(
            {
                "layer": layer,
                "label": LAYER_LABELS.get(layer, layer),
                "counts": [counts.get(lv, 0) for lv in levels],
                "total": sum(counts.values()),
            }
        )
    return levels, rows


def _taxonomy_rows(taxonomy: Taxonomy) -> list[dict[str, Any]]:
    return [
        {"code": c.code, "name": c.name, "severity": c.severity, "colour": i % len(CATEGORY_COLOURS)}
        for i, c in enumerate(taxonomy.categories)
    ]


def render_report(
    today: ReportTables,
    taxonomy: Taxonomy,
    history: ReportTables | None = None,
    *,
    min_accounts: int,
    min_conversations: int,
    trend_days: int = 14,
) -> str:
    """Render one day's report from its published tables and earlier days' published tables.

    Args:
        today: The day's tables (``build_report_tables``); exactly one day.
        taxonomy: The safety taxonomy the categories come from.
        history: Earlier days' published tables (``load_published``); only
            days before ``today`` within ``trend_days`` are used.
        min_accounts: The privacy gate's account threshold (stated on the page).
        min_conversations: The privacy gate's conversation threshold.
        trend_days: Days of trend shown, today included.

    Returns:
        One self-contained HTML page (inline CSS and JS, no external URLs).
    """
    if len(today.days) != 1:
        raise ValueError(f"render_report takes one day's tables, got {today.days}")
    day = today.days[0]
    days = day_range((dt.date.fromisoformat(day) - dt.timedelta(days=trend_days - 1)).isoformat(), day)
    earlier = history if history is not None else ReportTables.empty()
    keep = tuple(d for d in earlier.days if d in days[:-1])
    earlier = ReportTables(keep, *(getattr(earlier, n).filter(pl.col("day").is_in(keep)) for n in _FRAMES))
    tables = concat_tables([earlier, today])
    metrics = today.metrics(day)

    roots, nodes = build_tree(today.clusters, today.categories, taxonomy)
    names = level_names([n.level for n in nodes if not n.synthetic])
    by_level = {lv: sum(1 for n in nodes if n.level == lv and not n.synthetic) for lv in names}

    flagged = sorted(
        (n for n in nodes if n.flagged), key=lambda n: (-(n.concern or 0), -n.conversations, n.id)
    )
    flag_tracks = {n.track_id: n.id for n in flagged if n.track_id}
    flag_series = track_series(tables, days, flag_tracks)
    flag_cards = [
        (
            n,
            line_chart(
                days, flag_series.get(n.id, [None] * (len(days) - 1) + [float(n.conversations)]), 260, 48
            ),
        )
        for n in flagged
    ]

    top_tracks = {
        n.track_id: _root(n).id
        for n in nodes
        if n.level == 0 and n.track_id and _root(n) is not n and not _root(n).synthetic
    }
    top_series = track_series(tables, days, top_tracks)
    top_charts = [(n, line_chart(days, top_series[n.id])) for n in roots if n.id in top_series]
    cat_series = category_series(tables, days)
    cat_charts = [
        (c, line_chart(days, cat_series.get(c["code"], [0.0 if d in tables.days else None for d in days])))
        for c in _taxonomy_rows(taxonomy)
    ]
    totals = metric_series(tables, days)
    total_charts = [
        (METRIC_LABELS[k], line_chart(days, totals[k]))
        for k in ("records_read", "conversations_in_released_clusters", "clusters_flagged")
        if k in totals
    ]
    levels, withheld_rows = _withheld_rows(today.withheld, names)
    return _env.get_template("report.html.j2").render(
        css=_CSS,
        js=_JS,
        day=day,
        days=days,
        history_days=len(keep),
        min_accounts=min_accounts,
        min_conversations=min_conversations,
        dp_epsilon=metrics.get("dp_epsilon"),
        kpis=_kpis(metrics),
        metrics=metrics,
        roots=roots,
        level_names=names,
        released_by_level=by_level,
        flag_cards=flag_cards,
        flagged_withheld=int(metrics.get("flagged_clusters_withheld", 0)),
        map=map_view(nodes),
        top_charts=top_charts,
        cat_charts=cat_charts,
        total_charts=total_charts,
        taxonomy=taxonomy,
        categories=_taxonomy_rows(taxonomy),
        colours=CATEGORY_COLOURS,
        concern_stops=CONCERN_STOPS,
        dead_letters=today.dead_letters.to_dicts(),
        entities=today.entities.to_dicts(),
        entity_max=max(today.entities["count"].to_list() + [1]),
        withheld_levels=levels,
        withheld_rows=withheld_rows,
    )


_FRAMES = ("clusters", "categories", "summary", "dead_letters", "entities", "withheld")


def render_range_report(
    tables: ReportTables,
    taxonomy: Taxonomy,
    days: Sequence[str],
    *,
    top_flagged: int = 50,
) -> str:
    """Render one page for a date range from the days' published tables.

    Args:
        tables: Published tables of the range (``load_published``); days without
            a report show as gaps.
        taxonomy: The safety taxonomy the categories come from.
        days: Every day of the range, oldest first.
        top_flagged: Most flagged clusters listed.

    Returns:
        One self-contained HTML page with per-day totals and trends.
    """
    days = list(days)
    if not days:
        raise ValueError("a range report needs at least one day")
    published = set(tables.days)
    totals = metric_series(tables, days)
    # Per-day totals straight from each day's summary: a metric a day did not publish shows as missing.
    rows = [{"day": d, "published": d in published, **tables.metrics(d)} for d in days]
    total_charts = [
        (METRIC_LABELS[k], line_chart(days, totals[k], 300, 70))
        for k in (
            "records_read",
            "conversations_in_released_clusters",
            "clusters_released",
            "clusters_withheld",
            "clusters_flagged",
        )
        if k in totals
    ]
    cat_series = category_series(tables, days)
    cat_charts = [
        (
            c,
            line_chart(
                days, cat_series.get(c["code"], [0.0 if d in published else None for d in days]), 300, 70
            ),
        )
        for c in _taxonomy_rows(taxonomy)
    ]
    # Top-level groups of the last published day, followed back through their clusters' tracks.
    top_charts: list[tuple[Node, Chart]] = []
    last_day = tables.days[-1] if tables.days else None
    if last_day is not None:
        last = tables.clusters.filter(pl.col("day") == last_day)
        roots, nodes = build_tree(last, tables.categories.filter(pl.col("day") == last_day), taxonomy)
        top_tracks = {
            n.track_id: _root(n).id
            for n in nodes
            if n.level == 0 and n.track_id and _root(n) is not n and not _root(n).synthetic
        }
        series = track_series(tables, days, top_tracks)
        top_charts = [(n, line_chart(days, series[n.id], 300, 70)) for n in roots if n.id in series]
    flagged = (
        _base(tables.clusters)
        .filter(pl.col("flagged").fill_null(False))
        .sort(["day", "mean_concern", "conversations"], descending=[True, True, True])
        .head(top_flagged)
        .to_dicts()
    )
    entities = (
        tables.entities.group_by("entity_type")
        .agg(pl.col("count").sum())
        .sort(["count", "entity_type"], descending=[True, False])
        .to_dicts()
    )
    dead = (
        tables.dead_letters.group_by("stage", "reason")
        .agg(pl.col("records").sum())
        .sort(["records", "stage"], descending=[True, False])
        .to_dicts()
    )
    return _env.get_template("range.html.j2").render(
        css=_CSS,
        js=_JS,
        start=days[0],
        end=days[-1],
        days=days,
        n_published=len(published & set(days)),
        rows=rows,
        total_charts=total_charts,
        cat_charts=cat_charts,
        top_charts=top_charts,
        flagged=flagged,
        flagged_total=int(_base(tables.clusters)["flagged"].fill_null(False).sum()),
        entities=entities,
        entity_max=max([e["count"] for e in entities] + [1]),
        dead_letters=dead,
        colours=CATEGORY_COLOURS,
        concern_stops=CONCERN_STOPS,
    )


def write_range_report(reports_dir: Path | str, start: str, end: str, taxonomy: Taxonomy) -> Path:
    """Load the range's published tables and write ``<reports_dir>/range_<start>_<end>.html``."""
    days = day_range(start, end)
    html = render_range_report(load_published(reports_dir, days), taxonomy, days)
    path = Path(reports_dir) / f"range_{start}_{end}.html"
    write_atomic(html, path)
    return path
