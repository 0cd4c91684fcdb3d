"""Differentially private published counts (OpenDP), with per-account contribution bounding.

Exact counts stay in the private state; reports carry only the noisy ones.
Each account's influence is bounded first: at most ``max_clusters_per_account``
clusters a day (L0) and ``max_conversations_per_account`` conversations per
cluster (L-inf), chosen by a keyed, order-independent hash so reruns agree.
The day's ``epsilon`` is split evenly over the published measures, each released
with OpenDP's discrete Laplace mechanism scaled to its L1 sensitivity.

Limits: the release decision itself uses the exact k-anonymity thresholds
(not DP partition selection), so the guarantee covers the counts of released
clusters, not the fact that a cluster was released.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from clustering.cluster import NOISE

CONCERNING_AT = 4
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
        pl.col("conversation_id").map_elements(lambda c: _rank_key(c, salt), return_dtype=pl.UInt64).alias("_rank")
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
    measurement = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int), scale=scale)
    return list(measurement([int(v) for v in values])), float(measurement.map(sensitivity))


def dp_cluster_counts(
    members: pl.DataFrame, cluster_ids: Sequence[int], codes: Sequence[str], config: DPConfig, salt: str
) -> tuple[pl.DataFrame, float]:
    """Noisy per-cluster counts for the released ``cluster_ids``.

    Args:
        members: ``conversation_id``, ``account``, ``cluster_id``, ``concerning``,
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
    bounded = bound_contributions(members.filter(pl.col("cluster_id").is_in(list(cluster_ids))), config, salt)
    exact = (
        pl.DataFrame({"cluster_id": list(cluster_ids)}, schema={"cluster_id": pl.Int64})
        .join(
            bounded.group_by("cluster_id").agg(
                pl.len().alias("conversations"),
                pl.col("account").n_unique().alias("unique_accounts"),
                (pl.col("concerning") >= CONCERNING_AT).sum().alias("concerning_count"),
                pl.col("concerning").sum().alias("concern_sum"),
                *[pl.col("categories").list.contains(c).sum().alias(f"cat_{c}") for c in codes],
            ),
            on="cluster_id",
            how="left",
        )
        .fill_null(0)
    )
    l0, linf = config.max_clusters_per_account, config.max_conversations_per_account
    measures = {
        "conversations": l0 * linf,
        "unique_accounts": l0,
        "concerning_count": l0 * linf,
        "concern_sum": l0 * linf * 5,
        "categories": l0 * linf * MAX_CATEGORIES,
    }
    part = config.epsilon / len(measures)
    noisy: dict[str, list[int]] = {}
    spent = 0.0
    for name in ("conversations", "unique_accounts", "concerning_count", "concern_sum"):
        noisy[name], eps = _discrete_laplace(exact[name].to_list(), measures[name], part)
        spent += eps
    if codes:
        flat = [v for c in codes for v in exact[f"cat_{c}"].to_list()]
        noisy_flat, eps = _discrete_laplace(flat, measures["categories"], part)
        spent += eps
        n = len(exact)
        for i, c in enumerate(codes):
            noisy[f"cat_{c}"] = noisy_flat[i * n : (i + 1) * n]
    else:
        spent += part
    conversations = [max(v, 0) for v in noisy["conversations"]]
    out = pl.DataFrame(
        {
            "cluster_id": exact["cluster_id"],
            "conversations": conversations,
            "unique_accounts": [max(v, 0) for v in noisy["unique_accounts"]],
            "mean_concern": [min(5.0, max(1.0, s / max(c, 1))) for s, c in zip(noisy["concern_sum"], conversations, strict=True)],
            "share_concerning": [min(1.0, max(0.0, k / max(c, 1))) for k, c in zip(noisy["concerning_count"], conversations, strict=True)],
            **{f"cat_{c}": [max(v, 0) for v in noisy[f"cat_{c}"]] for c in codes},
        },
        schema_overrides={"conversations": pl.Int64, "unique_accounts": pl.Int64, **{f"cat_{c}": pl.Int64 for c in codes}},
    )
    return out, spent
