"""Cross-day cluster tracking and emerging-abuse flags.

Each day's base clusters are matched to the clusters of earlier days by centroid
cosine similarity with an optimal one-to-one assignment (SciPy's
``linear_sum_assignment``), so a cluster keeps a stable ``track_id`` over time
and a cluster with no match is recognised as new. Flags combine concern with
novelty or with statistically significant growth of the cluster's share of the
day's traffic (one-sided binomial test against the trailing window,
Benjamini-Hochberg corrected across the day's clusters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from scipy.stats import binomtest, false_discovery_control


@dataclass(frozen=True)
class TrackingParams:
    """How clusters are linked across days."""

    min_similarity: float = 0.6
    window_days: int = 7


@dataclass(frozen=True)
class FlagRules:
    """When a cluster is flagged. Configurable per deployment."""

    min_mean_concern: float = 3.0
    min_share_concerning: float = 0.5
    min_high_severity_share: float = 0.5
    growth_alpha: float = 0.05
    min_growth_ratio: float = 2.0
    min_conversations: int = 3


def centroids(vectors: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Unit-norm mean vector per non-noise cluster, with the cluster ids."""
    ids = sorted(int(c) for c in set(labels.tolist()) - {-1})
    if not ids:
        return [], np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0))
    means = np.stack([vectors[labels == c].mean(axis=0) for c in ids])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return ids, means / np.where(norms == 0, 1, norms)


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
    similarity = [None] * len(cluster_ids)
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

    Returns:
        One row per cluster: ``cluster_id``, ``track_id``, ``is_new``,
        ``growth_ratio``, ``growth_q``, ``high_concern``, ``flagged``, ``reasons``.
    """
    joined = clusters.join(tracks, on="cluster_id", how="left")
    trailing_total = sum(history_totals.values())
    past = (
        history.group_by("track_id").agg(pl.col("conversations").sum().alias("past_conversations"))
        if not history.is_empty()
        else pl.DataFrame(schema={"track_id": pl.Utf8, "past_conversations": pl.Int64})
    )
    joined = joined.join(past, on="track_id", how="left").with_columns(pl.col("past_conversations").fill_null(0))
    severe = [f"cat_{code}" for code, sev in severity_by_code.items() if sev in ("high", "critical") and f"cat_{code}" in clusters.columns]

    p_values, ratios = [], []
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
        severe_share = max((row[c] / row["conversations"] for c in severe), default=0.0)
        concern_reasons = []
        if row["mean_concern"] >= rules.min_mean_concern:
            concern_reasons.append(f"mean concern {row['mean_concern']:.1f} >= {rules.min_mean_concern}")
        if row["share_concerning"] >= rules.min_share_concerning:
            concern_reasons.append(f"{row['share_concerning']:.0%} of conversations rated concerning")
        if severe_share >= rules.min_high_severity_share:
            concern_reasons.append(f"{severe_share:.0%} in high-severity safety categories")
        growing = ratio is not None and q < rules.growth_alpha and ratio >= rules.min_growth_ratio
        trend_reasons = []
        if row["is_new"] and trailing_total > 0:
            trend_reasons.append("new: no similar cluster in the trailing window")
        if growing:
            trend_reasons.append(f"share of traffic grew {ratio:.1f}x vs trailing window (BH q={q:.3g})")
        flagged = bool(concern_reasons) and bool(trend_reasons) and row["conversations"] >= rules.min_conversations
        out.append(
            {
                "cluster_id": row["cluster_id"],
                "track_id": row["track_id"],
                "is_new": row["is_new"],
                "growth_ratio": ratio,
                "growth_q": float(q),
                "high_concern": bool(concern_reasons),
                "flagged": flagged,
                "reasons": concern_reasons + trend_reasons if flagged else [],
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
            "flagged": pl.Boolean,
            "reasons": pl.List(pl.Utf8),
        },
    )
