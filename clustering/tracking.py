"""Cross-day cluster tracking and emerging-abuse flags.

Each day's base clusters are matched to the clusters of earlier days by centroid
cosine similarity with an optimal one-to-one assignment (SciPy's
``linear_sum_assignment``), so a cluster keeps a stable ``track_id`` over time
and a cluster with no match is recognised as new. Flags combine concern with
novelty or with statistically significant growth of the cluster's share of the
day's traffic (one-sided binomial test against the trailing window,
Benjamini-Hochberg corrected across the day's clusters) or with coordination:
many accounts sending few distinct requests, or a burst in time, measured per
cluster by ``coordination_signals``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import binom, binomtest, false_discovery_control


@dataclass(frozen=True)
class TrackingParams:
    """How clusters are linked across days."""

    min_similarity: float = 0.6
    window_days: int = 7


@dataclass(frozen=True)
class FlagRules:
    """When a cluster is flagged. Configurable per deployment.

    A cluster is flagged when its concern is high (any of the three concern
    thresholds) and it is new, grew significantly, or looks coordinated, and it
    has at least ``min_conversations``.

    Attributes:
        min_mean_concern: Mean ``concern_score`` (1-5) counted as high concern.
        min_share_concerning: Share of conversations rated concerning
            (``concern_score >= clustering.aggregate.CONCERNING_AT``).
        min_high_severity_share: Share in one high- or critical-severity category.
        growth_alpha: Benjamini-Hochberg level of the growth test.
        min_growth_ratio: Least growth of the traffic share that counts.
        min_conversations: Smallest cluster that can be flagged.
        coordination_min_accounts: Least unique accounts for coordination.
        coordination_max_distinct_ratio: Most distinct requests per conversation
            (near-duplicates grouped) for "few distinct requests".
        coordination_min_new_account_share: Least share of accounts unseen in
            the trailing window (0 turns this condition off).
        request_similarity: Cosine similarity at which two requests count as one.
        burst_window_minutes: Width of the sliding window of the burst test.
        burst_alpha: Level of the burst test (Bonferroni over the day's windows).
    """

    min_mean_concern: float = 3.0
    min_share_concerning: float = 0.5
    min_high_severity_share: float = 0.5
    growth_alpha: float = 0.05
    min_growth_ratio: float = 2.0
    min_conversations: int = 3
    coordination_min_accounts: int = 5
    coordination_max_distinct_ratio: float = 0.5
    coordination_min_new_account_share: float = 0.0
    request_similarity: float = 0.9
    burst_window_minutes: int = 60
    burst_alpha: float = 0.01


def centroids(vectors: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Unit-norm mean vector per non-noise cluster, with the cluster ids."""
    ids = sorted(int(c) for c in set(labels.tolist()) - {-1})
    if not ids:
        return [], np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0))
    means = np.stack([vectors[labels == c].mean(axis=0) for c in ids])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return ids, means / np.where(norms == 0, 1, norms)


_NON_WORD = re.compile(r"[^a-z0-9]+")
COORDINATION_SCHEMA = {
    "cluster_id": pl.Int64,
    "unique_accounts": pl.Int64,
    "distinct_requests": pl.Int64,
    "distinct_request_ratio": pl.Float64,
    "new_account_share": pl.Float64,
    "burst_conversations": pl.Int64,
    "burst_expected": pl.Float64,
    "burst_p": pl.Float64,
}


def normalize_request(text: str | None) -> str:
    """Lower-cased words and digits only, so trivially edited copies compare equal."""
    return " ".join(_NON_WORD.sub(" ", (text or "").lower()).split())


def request_groups(
    requests: Sequence[str | None], vectors: np.ndarray | None, min_similarity: float
) -> np.ndarray:
    """Group near-duplicate requests; returns a group label per request.

    Two requests are linked when their normalised text is equal or, with
    ``vectors`` (unit-norm, aligned), their cosine similarity is at least
    ``min_similarity``; groups are the connected components of those links.
    """
    n = len(requests)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = [normalize_request(r) for r in requests]
    first: dict[str, int] = {}
    rows, cols = [], []
    for i, key in enumerate(keys):
        rows.append(i)
        cols.append(first.setdefault(key, i))
    if vectors is not None and n > 1:
        sims = vectors @ vectors.T
        r, c = np.nonzero(np.triu(sims >= min_similarity, k=1))
        rows.extend(r.tolist())
        cols.extend(c.tolist())
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _burst(
    times: np.ndarray, day_times: np.ndarray, window: float, day_span: float
) -> tuple[int, float, float]:
    """Densest window of a cluster's timestamps against the day's traffic in it.

    Each window starts at one of the cluster's conversations. Its count is
    tested against a binomial with the day's share of traffic in the same
    window (so daily cycles are not bursts); the smallest p-value is
    Bonferroni-corrected by the number of disjoint windows in the day.

    Returns:
        Conversations in the densest window, their expected number, and the
        corrected p-value.
    """
    n = len(times)
    times = np.sort(times)
    inside = np.searchsorted(times, times + window, side="left") - np.arange(n)
    day_inside = np.searchsorted(day_times, times + window, side="left") - np.searchsorted(
        day_times, times, side="left"
    )
    share = np.clip(day_inside / len(day_times), 1e-12, 1.0)
    p = binom.sf(inside - 1, n, share)
    best = int(np.argmin(p))
    windows = max(1, math.ceil(day_span / window))
    return int(inside[best]), float(n * share[best]), float(min(1.0, p[best] * windows))


def coordination_signals(
    facets: pl.DataFrame,
    assignments: pl.DataFrame,
    rules: FlagRules,
    *,
    request_vectors: np.ndarray | None = None,
    seen_accounts: Collection[str] | None = None,
) -> pl.DataFrame:
    """Per base cluster: how many accounts, how few distinct requests, how new, how bursty.

    Args:
        facets: The day's facets with ``conversation_id``, ``account``,
            ``request`` and, if present, ``timestamp`` (Datetime).
        assignments: ``conversation_id`` and ``cluster_id`` (-1 is noise and is skipped).
        rules: ``request_similarity`` and ``burst_window_minutes`` are used.
        request_vectors: Unit-norm embeddings of ``facets["request"]``, row
            aligned; without them only normalised text groups near-duplicates.
        seen_accounts: Accounts active in the trailing window; ``None`` when
            unknown (``new_account_share`` is then null).

    Returns:
        One row per cluster (``COORDINATION_SCHEMA``): ``unique_accounts``,
        ``distinct_requests`` and ``distinct_request_ratio`` (distinct request
        groups per conversation), ``new_account_share`` (accounts not in
        ``seen_accounts``), and the burst test's ``burst_conversations``,
        ``burst_expected`` and ``burst_p`` (null without timestamps).
    """
    facets = facets.with_row_index("_row")
    joined = facets.join(assignments.select("conversation_id", "cluster_id"), on="conversation_id").filter(
        pl.col("cluster_id") != -1
    )
    has_time = "timestamp" in facets.columns and facets["timestamp"].null_count() < len(facets)
    if has_time:
        minutes = pl.col("timestamp").dt.epoch("ms") / 60_000.0
        day_times = np.sort(facets.select(minutes.alias("m"))["m"].drop_nulls().to_numpy())
        day_span = max(24 * 60.0, float(day_times[-1] - day_times[0]))
        joined = joined.with_columns(minutes.alias("_minute"))
    seen = set(seen_accounts) if seen_accounts is not None else None
    out = []
    for (cluster_id,), members in joined.sort("_row").group_by(["cluster_id"], maintain_order=True):
        rows = members["_row"].to_numpy()
        vectors = request_vectors[rows] if request_vectors is not None else None
        distinct = int(
            len(set(request_groups(members["request"].to_list(), vectors, rules.request_similarity).tolist()))
        )
        accounts = set(members["account"].to_list())
        row = {
            "cluster_id": int(cluster_id),
            "unique_accounts": len(accounts),
            "distinct_requests": distinct,
            "distinct_request_ratio": distinct / len(members),
            "new_account_share": len(accounts - seen) / len(accounts) if seen is not None else None,
            "burst_conversations": None,
            "burst_expected": None,
            "burst_p": None,
        }
        times = members["_minute"].drop_nulls().to_numpy() if has_time else np.zeros(0)
        if len(times) >= 2:
            k, expected, p = _burst(times, day_times, float(rules.burst_window_minutes), day_span)
            row.update(burst_conversations=k, burst_expected=expected, burst_p=p)
        out.append(row)
    return pl.DataFrame(out, schema=COORDINATION_SCHEMA).sort("cluster_id")


def coordination_reasons(signal: Mapping[str, Any] | None, rules: FlagRules) -> list[str]:
    """Reasons (with figures) a cluster's accounts look coordinated; empty when they do not.

    Coordination needs at least ``coordination_min_accounts`` accounts, enough
    accounts new to the trailing window when that is configured and known, and
    either few distinct requests or a significant burst in time.
    """
    return [text for _, text in _coordination(signal, rules)]


def _coordination(signal: Mapping[str, Any] | None, rules: FlagRules) -> list[tuple[str, str]]:
    """``(code, reason)`` pairs behind ``coordination_reasons``."""
    if not signal or signal.get("unique_accounts") is None:
        return []
    accounts = int(signal["unique_accounts"])
    if accounts < rules.coordination_min_accounts:
        return []
    new_share = signal.get("new_account_share")
    if rules.coordination_min_new_account_share > 0 and (
        new_share is None or new_share < rules.coordination_min_new_account_share
    ):
        return []
    out = []
    ratio = float(signal["distinct_request_ratio"])
    if ratio <= rules.coordination_max_distinct_ratio:
        out.append(
            (
                "coordination",
                f"coordination: {accounts} accounts sent {signal['distinct_requests']} distinct requests "
                f"(ratio {ratio:.2f} <= {rules.coordination_max_distinct_ratio})",
            )
        )
    burst_p = signal.get("burst_p")
    if burst_p is not None and burst_p < rules.burst_alpha:
        out.append(
            (
                "burst",
                f"burst: {signal['burst_conversations']} conversations within {rules.burst_window_minutes} min "
                f"(expected {signal['burst_expected']:.1f} from the day's traffic, p={burst_p:.3g})",
            )
        )
    if out and new_share is not None:
        out.append(
            ("new_accounts", f"{new_share:.0%} of its {accounts} accounts not seen in the trailing window")
        )
    return out


# Reason codes (``flag_clusters``'s ``reason_codes``): what a published report can restate from its own counts.
REASON_CODES = (
    "mean_concern",
    "share_concerning",
    "high_severity:<code>",
    "new",
    "growth",
    "coordination",
    "burst",
    "new_accounts",
)


def link_tracks(
    day: str,
    cluster_ids: Sequence[int],
    today: np.ndarray,
    history: pl.DataFrame,
    params: TrackingParams,
) -> pl.DataFrame:
    """Give each of today's clusters a track id, reusing an earlier day's where it matches.

    Args:
        day: Today's partition key.
        cluster_ids: Today's base cluster ids, aligned with ``today``.
        today: Unit-norm centroids of today's clusters.
        history: Earlier days' tracks with ``day``, ``track_id`` and ``centroid``
            (list of floats); the latest centroid of each track is matched.
        params: Similarity threshold and window.

    Returns:
        ``cluster_id``, ``track_id``, ``is_new``, ``similarity`` (to the matched track).
    """
    track_ids = [f"{day}/{c}" for c in cluster_ids]
    is_new = [True] * len(cluster_ids)
    similarity: list[float | None] = [None] * len(cluster_ids)
    if len(cluster_ids) and not history.is_empty():
        latest = history.sort("day").group_by("track_id", maintain_order=True).last()
        previous = np.asarray(latest["centroid"].to_list(), dtype=float)
        sims = today @ previous.T
        rows, cols = linear_sum_assignment(-sims)
        for r, c in zip(rows, cols, strict=True):
            if sims[r, c] >= params.min_similarity:
                track_ids[r] = latest["track_id"][int(c)]
                is_new[r] = False
                similarity[r] = float(sims[r, c])
    return pl.DataFrame(
        {"cluster_id": list(cluster_ids), "track_id": track_ids, "is_new": is_new, "similarity": similarity},
        schema={"cluster_id": pl.Int64, "track_id": pl.Utf8, "is_new": pl.Boolean, "similarity": pl.Float64},
    )


def flag_clusters(
    clusters: pl.DataFrame,
    tracks: pl.DataFrame,
    history: pl.DataFrame,
    day_total: int,
    history_totals: Mapping[str, int],
    severity_by_code: Mapping[str, str],
    rules: FlagRules,
    coordination: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Flags with reasons for today's clusters.

    Args:
        clusters: Today's cluster table (``cluster_id``, ``conversations``,
            ``mean_concern``, ``share_concerning``, ``cat_<code>`` columns).
        tracks: Output of ``link_tracks`` for today.
        history: Earlier days' ``day``, ``track_id``, ``conversations``.
        day_total: Conversations with facets today (the traffic denominator).
        history_totals: Conversations with facets per earlier day in the window.
        severity_by_code: Taxonomy code to severity (``critical``/``high``/...).
        rules: Flag thresholds.
        coordination: Output of ``coordination_signals`` for today; without it
            the coordination rule cannot fire.

    Returns:
        One row per cluster: ``cluster_id``, ``track_id``, ``is_new``,
        ``growth_ratio``, ``growth_q``, ``high_concern``, ``coordinated``, the
        coordination figures (``distinct_request_ratio``, ``new_account_share``,
        ``burst_p``), ``flagged``, ``reasons`` (each with its exact figures;
        private, empty unless flagged) and ``reason_codes`` (the same reasons
        as ``REASON_CODES``, so a DP report can restate them from its noisy
        counts: ``reporting.tables.published_flags``).
    """
    joined = clusters.join(tracks, on="cluster_id", how="left")
    signals = {} if coordination is None else {r["cluster_id"]: r for r in coordination.iter_rows(named=True)}
    trailing_total = sum(history_totals.values())
    past = (
        history.group_by("track_id").agg(pl.col("conversations").sum().alias("past_conversations"))
        if not history.is_empty()
        else pl.DataFrame(schema={"track_id": pl.Utf8, "past_conversations": pl.Int64})
    )
    joined = joined.join(past, on="track_id", how="left").with_columns(
        pl.col("past_conversations").fill_null(0)
    )
    severe = [
        f"cat_{code}"
        for code, sev in severity_by_code.items()
        if sev in ("high", "critical") and f"cat_{code}" in clusters.columns
    ]

    p_values: list[float] = []
    ratios: list[float | None] = []
    for row in joined.iter_rows(named=True):
        if trailing_total == 0 or day_total == 0:
            p_values.append(1.0)
            ratios.append(None)
            continue
        # Add-half smoothing: a track unseen in the window still has a small baseline share.
        baseline = (row["past_conversations"] + 0.5) / (trailing_total + 1.0)
        ratios.append((row["conversations"] / day_total) / baseline)
        p_values.append(binomtest(row["conversations"], day_total, baseline, alternative="greater").pvalue)
    q_values = false_discovery_control(p_values, method="bh") if p_values else np.array([])

    out = []
    for row, ratio, q in zip(joined.iter_rows(named=True), ratios, q_values, strict=True):
        shares = {c: row[c] / row["conversations"] for c in severe} if row["conversations"] else {}
        worst = max(shares, key=lambda c: shares[c], default=None)
        severe_share = shares[worst] if worst else 0.0
        concern: list[tuple[str, str]] = []
        if row["mean_concern"] >= rules.min_mean_concern:
            concern.append(
                ("mean_concern", f"mean concern {row['mean_concern']:.1f} >= {rules.min_mean_concern}")
            )
        if row["share_concerning"] >= rules.min_share_concerning:
            concern.append(
                ("share_concerning", f"{row['share_concerning']:.0%} of conversations rated concerning")
            )
        if worst and severe_share >= rules.min_high_severity_share:
            concern.append(
                (
                    f"high_severity:{worst.removeprefix('cat_')}",
                    f"{severe_share:.0%} in high-severity safety categories",
                )
            )
        growing = ratio is not None and q < rules.growth_alpha and ratio >= rules.min_growth_ratio
        trend: list[tuple[str, str]] = []
        if row["is_new"] and trailing_total > 0:
            trend.append(("new", "new: no similar cluster in the trailing window"))
        if growing:
            trend.append(("growth", f"share of traffic grew {ratio:.1f}x vs trailing window (BH q={q:.3g})"))
        signal = signals.get(row["cluster_id"])
        coordinated = _coordination(signal, rules)
        trend += coordinated
        flagged = bool(concern) and bool(trend) and row["conversations"] >= rules.min_conversations
        out.append(
            {
                "cluster_id": row["cluster_id"],
                "track_id": row["track_id"],
                "is_new": row["is_new"],
                "growth_ratio": ratio,
                "growth_q": float(q),
                "high_concern": bool(concern),
                "coordinated": bool(coordinated),
                "distinct_request_ratio": signal["distinct_request_ratio"] if signal else None,
                "new_account_share": signal["new_account_share"] if signal else None,
                "burst_p": signal["burst_p"] if signal else None,
                "flagged": flagged,
                "reasons": [text for _, text in concern + trend] if flagged else [],
                "reason_codes": [code for code, _ in concern + trend] if flagged else [],
            }
        )
    return pl.DataFrame(
        out,
        schema={
            "cluster_id": pl.Int64,
            "track_id": pl.Utf8,
            "is_new": pl.Boolean,
            "growth_ratio": pl.Float64,
            "growth_q": pl.Float64,
            "high_concern": pl.Boolean,
            "coordinated": pl.Boolean,
            "distinct_request_ratio": pl.Float64,
            "new_account_share": pl.Float64,
            "burst_p": pl.Float64,
            "flagged": pl.Boolean,
            "reasons": pl.List(pl.Utf8),
            "reason_codes": pl.List(pl.Utf8),
        },
    )


def track_day(
    day: str,
    clusters: pl.DataFrame,
    centres: pl.DataFrame,
    day_total: int,
    history: pl.DataFrame,
    history_totals: Mapping[str, int],
    severity_by_code: Mapping[str, str],
    params: TrackingParams,
    rules: FlagRules,
    coordination: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One day's linking and flagging, as the ``cluster_tracks`` asset runs it.

    Args:
        day: Today's partition key.
        clusters: Today's cluster table; only base rows (``level`` 0) are used.
        centres: ``cluster_id`` and unit-norm ``centroid`` of today's base clusters.
        day_total: Conversations with facets today.
        history: Stored tracks of the earlier days in the window (this function's
            first output on those days, concatenated).
        history_totals: Conversations with facets per earlier day in the window.
        severity_by_code: Taxonomy code to severity.
        params: Linking parameters.
        rules: Flag rules.
        coordination: ``coordination_signals`` for today, if computed.

    Returns:
        The tracks to store for later days (``cluster_id``, ``track_id``,
        ``is_new``, ``similarity``, ``conversations``, ``centroid``, ``day``) and
        the flags (``flag_clusters``).
    """
    if "level" in clusters.columns:
        clusters = clusters.filter(pl.col("level") == 0)
    today = np.asarray(centres["centroid"].to_list(), dtype=float) if len(centres) else np.zeros((0, 0))
    tracks = link_tracks(day, centres["cluster_id"].to_list(), today, history, params)
    flags = flag_clusters(
        clusters, tracks, history, day_total, history_totals, severity_by_code, rules, coordination
    )
    stored = (
        tracks.join(clusters.select("cluster_id", "conversations"), on="cluster_id")
        .join(centres, on="cluster_id")
        .with_columns(pl.lit(day).alias("day"))
    )
    return stored, flags
