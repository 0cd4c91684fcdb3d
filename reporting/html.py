"""The self-contained analyst HTML report (aggregates only, no external fetches)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from jinja2 import Environment, select_autoescape

from summarize.taxonomy import Taxonomy

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lookout report {{ day }}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#b8c0d0}
main{padding:20px 28px;max-width:1200px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:16px 20px;margin-bottom:18px}
h2{font-size:16px;margin:0 0 12px}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #e1e4ea;border-radius:6px;padding:8px 12px;min-width:130px}
.kpi b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#5a6478}
.bar{background:#dfe7fb;height:8px;border-radius:4px} .bar i{display:block;height:8px;border-radius:4px;background:#3b6fe0}
.c1{color:#2e7d32}.c2{color:#558b2f}.c3{color:#b58900}.c4{color:#d84315}.c5{color:#b71c1c;font-weight:600}
.cat{display:inline-block;background:#f1f3f7;border-radius:10px;padding:1px 8px;margin:1px;font-size:12px}
.muted{color:#6b7487} .note{font-size:12px;color:#6b7487}
</style></head>
<body>
<header><h1>Lookout usage report: {{ day }}</h1>
<p>Aggregates only. Clusters below the privacy thresholds (at least {{ min_accounts }} accounts and {{ min_conversations }} conversations) are withheld.
{% if dp_epsilon is not none %}Cluster counts, concern and categories are differentially private (&epsilon; = {{ '%.2f'|format(dp_epsilon) }} for this day).{% else %}Cluster counts are exact.{% endif %}</p></header>
<main>
<section id="summary"><h2>Run summary</h2><div class="kpis">
{% for label, value in kpis %}<div class="kpi"><span class="muted">{{ label }}</span><b>{{ value }}</b></div>{% endfor %}
</div>
{% if dead_reasons %}<h2 style="margin-top:16px">Dead-lettered records by reason</h2>
<table><tr><th>Stage</th><th>Reason</th><th>Records</th></tr>
{% for r in dead_reasons %}<tr><td>{{ r.stage }}</td><td>{{ r.reason }}</td><td>{{ r.records }}</td></tr>{% endfor %}</table>{% endif %}
{% if entities %}<h2 style="margin-top:16px">Redacted entities by type</h2><div>
{% for e in entities %}<span class="cat">{{ e.entity_type }}: {{ e.count }}</span>{% endfor %}</div>{% endif %}
</section>
<section id="flags"><h2>Flagged: emerging high-concern clusters ({{ flagged|length }})</h2>
{% if flagged %}<table><tr><th>Cluster</th><th>Conversations</th><th>Accounts</th><th>Why flagged</th></tr>
{% for c in flagged %}<tr class="flagged" data-cluster-id="{{ c.cluster_id }}"><td><b>{{ c.title }}</b><br><span class="muted">{{ c.description }}</span></td>
<td>{{ c.conversations }}</td><td>{{ c.unique_accounts }}</td><td><ul>{% for r in c.reasons %}<li>{{ r }}</li>{% endfor %}</ul></td></tr>{% endfor %}</table>
{% else %}<p class="muted">No released cluster was flagged today.</p>{% endif %}
{% if flagged_withheld %}<p class="note">{{ flagged_withheld }} flagged cluster(s) were below the privacy thresholds and are not shown.</p>{% endif %}
</section>
<section id="clusters"><h2>Released clusters ({{ clusters|length }})</h2>
{% if clusters %}<table><tr><th>Cluster</th><th>Conversations</th><th>Accounts</th><th>Mean concern</th><th>Safety categories</th></tr>
{% for c in clusters %}<tr class="cluster" data-cluster-id="{{ c.cluster_id }}">
<td><b>{{ c.title }}</b>{% if c.flagged %} <span class="cat c5">flagged</span>{% endif %}{% if c.is_new %} <span class="cat">new</span>{% endif %}<br><span class="muted">{{ c.description }}</span><br><span class="note">task: {{ c.top_task }}</span></td>
<td>{{ c.conversations }}<div class="bar"><i style="width:{{ (100 * c.conversations / max_size)|round(1) }}%"></i></div></td>
<td>{{ c.unique_accounts }}</td>
<td class="c{{ c.mean_concern|round|int }}">{{ '%.2f'|format(c.mean_concern) }}<br><span class="note">{{ (100 * c.share_concerning)|round|int }}% at 4+</span></td>
<td>{% for cat in c.categories %}<span class="cat" title="{{ cat.name }}">{{ cat.code }} {{ cat.count }}</span>{% else %}<span class="muted">none</span>{% endfor %}</td>
</tr>{% endfor %}</table>
{% else %}<p class="muted">No cluster met the privacy thresholds today.</p>{% endif %}
</section>
<section id="taxonomy"><h2>Safety taxonomy: {{ taxonomy.title }}</h2><table><tr><th>Code</th><th>Category</th><th>Severity</th><th>Conversations in released clusters</th></tr>
{% for cat in taxonomy.categories %}<tr><td>{{ cat.code }}</td><td>{{ cat.name }}</td><td>{{ cat.severity }}</td><td>{{ category_totals.get(cat.code, 0) }}</td></tr>{% endfor %}</table></section>
<p class="note">Generated by Lookout. Noise and withheld clusters are not shown.</p>
</main></body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _env.from_string(TEMPLATE)


def render_report(
    day: str,
    clusters: pl.DataFrame,
    categories: pl.DataFrame,
    taxonomy: Taxonomy,
    summary: Mapping[str, Any],
    dead_reasons: pl.DataFrame,
    entities: pl.DataFrame,
    *,
    min_accounts: int,
    min_conversations: int,
    flagged_withheld: int = 0,
    dp_epsilon: float | None = None,
) -> str:
    """Render the day's report from released aggregates only."""
    names = {c.code: c.name for c in taxonomy.categories}
    by_cluster: dict[int, list[dict[str, Any]]] = {}
    for row in categories.iter_rows(named=True):
        by_cluster.setdefault(row["cluster_id"], []).append(
            {"code": row["category"], "name": names.get(row["category"], ""), "count": row["conversations"]}
        )
    rows = []
    for row in clusters.iter_rows(named=True):
        rows.append({**row, "categories": by_cluster.get(row["cluster_id"], [])})
    totals = (
        {r["category"]: r["conversations"] for r in categories.group_by("category").agg(pl.col("conversations").sum()).iter_rows(named=True)}
        if not categories.is_empty()
        else {}
    )
    kpis = [(k.replace("_", " ").capitalize(), _fmt(v)) for k, v in summary.items()]
    return _template.render(
        day=day,
        clusters=rows,
        flagged=[r for r in rows if r.get("flagged")],
        flagged_withheld=flagged_withheld,
        dp_epsilon=dp_epsilon,
        max_size=max([r["conversations"] for r in rows] + [1]),
        taxonomy=taxonomy,
        category_totals=totals,
        kpis=kpis,
        dead_reasons=list(dead_reasons.iter_rows(named=True)),
        entities=list(entities.iter_rows(named=True)),
        min_accounts=min_accounts,
        min_conversations=min_conversations,
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f}"
    return f"{int(value):,}"
