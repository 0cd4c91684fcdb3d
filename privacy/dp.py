"""Differentially private published counts (OpenDP), with per-account contribution bounding.

Exact counts stay in the private state; reports carry only the noisy ones.
Each account's influence is bounded first: at most ``max_clusters_per_account``
clusters a day (L0) and ``max_conversations_per_account`` conversations per
cluster (L-inf), chosen by a keyed, order-independent hash so reruns agree.
The day's ``epsilon`` is split evenly over the published measures, each released
with OpenDP's discrete Laplace mechanism scaled to its L1 sensitivity.

When DP is on, ``select_partitions`` decides which clusters are released at
all: OpenDP's Laplace threshold mechanism on bounded unique-account counts of
the base clusters (each account in at most ``max_partitions`` of them), with
its own ``(epsilon, delta)``; parents follow from their released children. It
replaces the exact account threshold, so the fact that a cluster was released
is private too. The day's total budget is the selection's ``(epsilon, delta)``
plus the counts' epsilon (sequential composition; see ``privacy.release``).
Guarantees are conditional on the clustering: cluster and tree membership are
treated as given, as in Clio.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import polars as pl

from clustering.aggregate import CONCERN, CONCERNING_AT
from clustering.cluster import NOISE

CONCERN_STEPS = 10  # concern_sum counts tenths of a point: discrete Laplace needs integers
MAX_CATEGORIES = 4  # facets carry at most this many category codes


@dataclass(frozen=True)
class DPConfig:
    """Privacy budget and contribution bounds for one day's published counts."""

    epsilon: float = 1.0
    max_clusters_per_account: int = 4
    max_conversations_per_account: int = 5

    def __post_init__(self) -> None:
        if self.epsilon <= 0:
            raise ValueError("epsilon must be positive")
        if self.max_clusters_per_account < 1 or self.max_conversations_per_account < 1:
            raise ValueError("contribution bounds must be at least 1")


def _rank_key(conversation_id: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{conversation_id}".encode()).digest()[:8], "big")


def bound_contributions(members: pl.DataFrame, config: DPConfig, salt: str) -> pl.DataFrame:
    """Keep at most L-inf conversations per (account, cluster) and L0 clusters per account.

    ``members`` has ``conversation_id``, ``account``, ``cluster_id`` and any value
    columns; noise rows (cluster -1) are dropped.
    """
    ranked = members.filter(pl.col("cluster_id") != NOISE).with_columns(
        pl.col("conversation_id")
        .map_elements(lambda c: _rank_key(c, salt), return_dtype=pl.UInt64)
        .alias("_rank")
    )
    per_cluster = ranked.filter(
        pl.col("_rank").rank("ordinal").over("account", "cluster_id") <= config.max_conversations_per_account
    )
    cluster_rank = (
        per_cluster.group_by("account", "cluster_id")
        .agg(pl.col("_rank").min().alias("_cluster_rank"))
        .with_columns(pl.col("_cluster_rank").rank("ordinal").over("account").alias("_order"))
        .filter(pl.col("_order") <= config.max_clusters_per_account)
        .select("account", "cluster_id")
    )
    return per_cluster.join(cluster_rank, on=["account", "cluster_id"]).drop("_rank")


def _discrete_laplace(values: Sequence[int], sensitivity: int, epsilon: float) -> tuple[list[int], float]:
    """Noisy integer counts and the epsilon OpenDP certifies for them."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    scale = sensitivity / epsilon
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int), scale=scale
    )
    return list(measurement([int(v) for v in values])), float(measurement.map(sensitivity))


BASE_MEASURES = ("conversations", "unique_accounts", "concerning_count", "concern_sum", "categories")


def _sensitivities(config: DPConfig) -> dict[str, int]:
    """L1 sensitivity of each measure after contribution bounding."""
    l0, linf = config.max_clusters_per_account, config.max_conversations_per_account
    return {
        "conversations": l0 * linf,
        "unique_accounts": l0,
        "concerning_count": l0 * linf,
        "concern_sum": l0 * linf * 5 * CONCERN_STEPS,
        "categories": l0 * linf * MAX_CATEGORIES,
    }


def dp_raw_counts(
    members: pl.DataFrame,
    cluster_ids: Sequence[int],
    codes: Sequence[str],
    config: DPConfig,
    epsilon: float,
    salt: str,
) -> tuple[pl.DataFrame, float]:
    """Noisy integer sums per cluster, each of the 5 measures released with ``epsilon``.

    Returns:
        ``cluster_id``, ``conversations``, ``unique_accounts``, ``concerning_count``,
        ``concern_sum`` and ``cat_<code>`` (noisy, unclipped, so sums of them stay
        unbiased), and the epsilon OpenDP certifies for the lot.
    """
    bounded = bound_contributions(members.filter(pl.col("cluster_id").is_in(list(cluster_ids))), config, salt)
    exact = (
        pl.DataFrame({"cluster_id": list(cluster_ids)}, schema={"cluster_id": pl.Int64})
        .join(
            bounded.group_by("cluster_id").agg(
                pl.len().alias("conversations"),
                pl.col("account").n_unique().alias("unique_accounts"),
                (pl.col(CONCERN) >= CONCERNING_AT).sum().alias("concerning_count"),
                (pl.col(CONCERN).clip(1.0, 5.0) * CONCERN_STEPS)
                .round()
                .cast(pl.Int64)
                .sum()
                .alias("concern_sum"),
                *[pl.col("categories").list.contains(c).sum().alias(f"cat_{c}") for c in codes],
            ),
            on="cluster_id",
            how="left",
        )
        .fill_null(0)
    )
    sensitivity = _sensitivities(config)
    noisy: dict[str, list[int]] = {"cluster_id": exact["cluster_id"].to_list()}
    spent = 0.0
    for name in ("conversations", "unique_accounts", "concerning_count", "concern_sum"):
        noisy[name], eps = _discrete_laplace(exact[name].to_list(), sensitivity[name], epsilon)
        spent += eps
    if codes:
        flat = [v for c in codes for v in exact[f"cat_{c}"].to_list()]
        noisy_flat, eps = _discrete_laplace(flat, sensitivity["categories"], epsilon)
        spent += eps
        n = len(exact)
        for i, c in enumerate(codes):
            noisy[f"cat_{c}"] = noisy_flat[i * n : (i + 1) * n]
    else:
        spent += epsilon  # the category measure's share is spent whether or not a taxonomy has codes
    return pl.DataFrame(noisy, schema={k: pl.Int64 for k in noisy}), spent


def dp_unique_accounts(
    members: pl.DataFrame, cluster_ids: Sequence[int], config: DPConfig, epsilon: float, salt: str
) -> tuple[pl.DataFrame, float]:
    """Noisy unique-account counts (``cluster_id``, ``unique_accounts``, unclipped) and the epsilon spent."""
    bounded = bound_contributions(members.filter(pl.col("cluster_id").is_in(list(cluster_ids))), config, salt)
    exact = (
        pl.DataFrame({"cluster_id": list(cluster_ids)}, schema={"cluster_id": pl.Int64})
        .join(
            bounded.group_by("cluster_id").agg(pl.col("account").n_unique().alias("unique_accounts")),
            on="cluster_id",
            how="left",
        )
        .fill_null(0)
    )
    values, eps = _discrete_laplace(
        exact["unique_accounts"].to_list(), _sensitivities(config)["unique_accounts"], epsilon
    )
    return pl.DataFrame(
        {"cluster_id": exact["cluster_id"], "unique_accounts": values},
        schema={"cluster_id": pl.Int64, "unique_accounts": pl.Int64},
    ), eps


def finish_counts(raw: pl.DataFrame, codes: Sequence[str]) -> pl.DataFrame:
    """Published columns from noisy sums: counts clipped at 0, mean concern and share derived (post-processing)."""
    conversations = [max(v, 0) for v in raw["conversations"].to_list()]
    return pl.DataFrame(
        {
            "cluster_id": raw["cluster_id"],
            "conversations": conversations,
            "unique_accounts": [max(v, 0) for v in raw["unique_accounts"].to_list()],
            "mean_concern": [
                min(5.0, max(1.0, s / CONCERN_STEPS / max(c, 1)))
                for s, c in zip(raw["concern_sum"].to_list(), conversations, strict=True)
            ],
            "share_concerning": [
                min(1.0, max(0.0, k / max(c, 1)))
                for k, c in zip(raw["concerning_count"].to_list(), conversations, strict=True)
            ],
            **{f"cat_{c}": [max(v, 0) for v in raw[f"cat_{c}"].to_list()] for c in codes},
        },
        schema_overrides={
            "conversations": pl.Int64,
            "unique_accounts": pl.Int64,
            **{f"cat_{c}": pl.Int64 for c in codes},
        },
    )


def dp_cluster_counts(
    members: pl.DataFrame, cluster_ids: Sequence[int], codes: Sequence[str], config: DPConfig, salt: str
) -> tuple[pl.DataFrame, float]:
    """Noisy per-cluster counts for the released ``cluster_ids`` (one level), the budget split over 5 measures.

    Args:
        members: ``conversation_id``, ``account``, ``cluster_id``, ``concern_score``,
            ``categories`` for the day (exact, private).
        cluster_ids: The clusters to publish.
        codes: Taxonomy codes whose per-cluster counts are published.
        config: Budget and bounds.
        salt: Keys the contribution-bounding choice (e.g. the day).

    Returns:
        ``cluster_id``, ``conversations``, ``unique_accounts``, ``mean_concern``,
        ``share_concerning`` and ``cat_<code>`` (noisy, non-negative), and the
        total epsilon spent.
    """
    raw, spent = dp_raw_counts(members, cluster_ids, codes, config, config.epsilon / len(BASE_MEASURES), salt)
    return finish_counts(raw, codes), spent


# --- private partition selection -------------------------------------------------


@dataclass(frozen=True)
class SelectionConfig:
    """Budget of DP partition selection: which clusters are released at all.

    Selection runs once, on the base level, with the whole ``(epsilon, delta)``;
    parents are derived from the selected base clusters (post-processing), so
    the budget is not split over the hierarchy's levels. After bounding, each
    account counts towards at most ``max_partitions`` base clusters.
    ``min_threshold`` is a policy floor: the noisy-account threshold is the
    larger of it and the smallest threshold OpenDP certifies for the budget (a
    higher threshold only lowers the delta actually spent).
    """

    epsilon: float = 1.0
    delta: float = 1e-6
    max_partitions: int = 1  # most accounts touch few clusters a day; a higher bound raises the threshold
    min_threshold: int = 1

    def __post_init__(self) -> None:
        if self.epsilon <= 0:
            raise ValueError("selection epsilon must be positive")
        if not 0 < self.delta < 1:
            raise ValueError("selection delta must be in (0, 1)")
        if self.max_partitions < 1:
            raise ValueError("max_partitions must be at least 1")
        if self.min_threshold < 1:
            raise ValueError("min_threshold must be at least 1")


@dataclass(frozen=True)
class Selection:
    """The outcome of partition selection.

    Attributes:
        kept: Released cluster ids of every level, in ascending order: the
            selected base clusters and every ancestor of one.
        base_kept: The base clusters the mechanism selected.
        thresholds: Noisy-account threshold used, by level (the base level only).
        epsilon: Epsilon spent (OpenDP's privacy map of the one mechanism).
        delta: Delta spent.
    """

    kept: list[int]
    thresholds: dict[int, int]
    epsilon: float
    delta: float
    base_kept: list[int] = dataclasses.field(default_factory=list)


def bound_partitions(members: pl.DataFrame, max_partitions: int, salt: str) -> pl.DataFrame:
    """Distinct ``(account, cluster_id, level)`` rows, at most ``max_partitions`` clusters per account and level.

    The kept clusters are chosen by a keyed hash of account and cluster, so the
    choice does not depend on row order.
    """
    pairs = members.select("account", "cluster_id", "level").unique()
    keyed = pairs.with_columns(
        pl.struct("account", "cluster_id")
        .map_elements(lambda r: _rank_key(f"{r['account']}:{r['cluster_id']}", salt), return_dtype=pl.UInt64)
        .alias("_rank")
    )
    return keyed.filter(pl.col("_rank").rank("ordinal").over("account", "level") <= max_partitions).drop(
        "_rank"
    )


def _threshold_measurement(scale: float, threshold: int):
    import opendp.prelude as dp

    dp.enable_features("contrib")
    domain = dp.map_domain(dp.atom_domain(T=int), dp.atom_domain(T=int))
    return dp.m.make_laplace_threshold(
        domain, dp.l01inf_distance(dp.absolute_distance(T=int)), scale=scale, threshold=threshold
    )


def selection_parameters(
    epsilon: float, delta: float, max_partitions: int, floor: int = 1
) -> tuple[float, int]:
    """Noise scale and the smallest integer threshold that meet ``(epsilon, delta)``, raised to ``floor``.

    One account changes at most ``max_partitions`` unique-account counts, each by
    one (L0 = L1 = ``max_partitions``, L-inf = 1). The threshold is found by
    bisection on OpenDP's own privacy map, so it is the tightest the mechanism
    certifies.
    """
    d_in = (max_partitions, max_partitions, 1)
    scale = max_partitions / epsilon
    lo, hi = 1, 2
    while _threshold_measurement(scale, hi).map(d_in)[1] > delta:
        lo, hi = hi, hi * 2
    while lo < hi:  # smallest threshold whose delta is within budget
        mid = (lo + hi) // 2
        if _threshold_measurement(scale, mid).map(d_in)[1] <= delta:
            hi = mid
        else:
            lo = mid + 1
    return scale, max(hi, floor)


def ancestors(members: pl.DataFrame, base_ids: Sequence[int]) -> list[int]:
    """Every node above the given base clusters (from the membership rows of their conversations)."""
    if not len(base_ids) or "level" not in members.columns:
        return []
    base_level = members["level"].min()
    convs = members.filter((pl.col("level") == base_level) & pl.col("cluster_id").is_in(list(base_ids)))[
        "conversation_id"
    ]
    above = members.filter((pl.col("level") > base_level) & pl.col("conversation_id").is_in(convs.implode()))
    return sorted({int(c) for c in above["cluster_id"].to_list()} - {NOISE})


def select_partitions(members: pl.DataFrame, config: SelectionConfig, salt: str) -> Selection:
    """Private partition selection on unique accounts at the base level (OpenDP's Laplace threshold).

    Only base clusters go through the mechanism, with the whole budget. A
    parent is released iff at least one of its base descendants is: a function
    of the mechanism's output and of the tree (which, like the clusters
    themselves, is taken as given), so it costs no budget. Splitting the budget
    over three levels instead would need about three times the noise and a
    threshold near 44 accounts at epsilon 1, delta 1e-6, against about 15 here.

    Args:
        members: ``conversation_id``, ``account``, ``cluster_id`` and ``level``
            per conversation and node (``clustering.hierarchy.membership``);
            noise rows are ignored. Without ``level`` every row is a base row.
        config: Budget, contribution bound and threshold floor.
        salt: Keys the bounding choice (e.g. the day).

    Returns:
        The kept clusters and the budget spent. A cluster with no members is never kept.
    """
    if "level" not in members.columns:
        members = members.with_columns(pl.lit(0, pl.Int64).alias("level"))
    members = members.filter(pl.col("cluster_id") != NOISE)
    if members.is_empty():
        return Selection([], {}, 0.0, 0.0, [])
    base_level = cast(int, members["level"].min())  # an Int64 column, not empty here
    base = members.filter(pl.col("level") == base_level)
    bounded = bound_partitions(base, config.max_partitions, salt)
    scale, threshold = selection_parameters(
        config.epsilon, config.delta, config.max_partitions, config.min_threshold
    )
    measurement = _threshold_measurement(scale, threshold)
    eps_spent, delta_spent = measurement.map((config.max_partitions, config.max_partitions, 1))
    counts = bounded.group_by("cluster_id").agg(pl.len().alias("accounts"))
    base_kept = sorted(int(c) for c in measurement({int(c): int(n) for c, n in counts.iter_rows()}))
    kept = sorted(set(base_kept) | set(ancestors(members, base_kept)))
    return Selection(
        kept=kept,
        thresholds={base_level: threshold},
        epsilon=float(eps_spent),
        delta=float(delta_spent),
        base_kept=base_kept,
    )


def selection_withheld(cluster_ids: Sequence[int], selection: Selection) -> pl.DataFrame:
    """``cluster_id`` and ``reason`` for the clusters partition selection did not keep (for the audit trail)."""
    kept = set(selection.kept)
    dropped = [int(c) for c in cluster_ids if int(c) not in kept]
    return pl.DataFrame(
        {"cluster_id": dropped, "reason": ["not selected by DP partition selection"] * len(dropped)},
        schema={"cluster_id": pl.Int64, "reason": pl.Utf8},
    )
