"""Releasing a cluster hierarchy: tree repair after withholding, DP counts per level, and the day's DP accounting.

With DP on, the day spends ``(epsilon_s, delta)`` on private partition
selection of base clusters (``privacy.dp.select_partitions``; parents follow
their children) and ``epsilon_c`` on the published counts
(``dp_level_counts``), measured at the base level and summed up the tree.
``DPAccounting`` records the total, which the gate writes to ``gate.json`` and
the report states.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import polars as pl

from privacy.dp import BASE_MEASURES, DPConfig, dp_raw_counts, dp_unique_accounts, finish_counts


def reattach_to_released(released: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """Point each released node's ``parent_id`` at its nearest released ancestor.

    A parent can be withheld by a text layer (PII re-scan, auditor) while its
    children pass; they then hang from the next released ancestor, or become
    roots (null parent) when none is released.

    Args:
        released: Released nodes with ``cluster_id`` and ``parent_id``.
        nodes: All nodes of the day (``cluster_id``, ``parent_id``), released or not.
    """
    parent = dict(zip(nodes["cluster_id"].to_list(), nodes["parent_id"].to_list(), strict=True))
    kept = set(released["cluster_id"].to_list())
    repaired = []
    for node in released["cluster_id"].to_list():
        up = parent.get(node)
        while up is not None and up not in kept:
            up = parent.get(up)
        repaired.append(up)
    return released.with_columns(pl.Series("parent_id", repaired, dtype=pl.Int64))


def parents_without_released_base(released: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """``cluster_id`` and ``reason`` of released parents with no released base cluster below them.

    With DP on, a parent is released because a base cluster under it was selected,
    and its published counts are sums over its released base clusters; when later
    layers withhold all of those, the parent would be published empty.

    Args:
        released: Released nodes with ``cluster_id`` and ``level``.
        nodes: All nodes of the day (``cluster_id``, ``parent_id``), released or not.
    """
    parent = dict(zip(nodes["cluster_id"].to_list(), nodes["parent_id"].to_list(), strict=True))
    covered: set[int] = set()
    for node in released.filter(pl.col("level") == 0)["cluster_id"].to_list():
        up = parent.get(node)
        while up is not None and up not in covered:
            covered.add(up)
            up = parent.get(up)
    empty = released.filter((pl.col("level") > 0) & ~pl.col("cluster_id").is_in(list(covered)))
    return pl.DataFrame(
        {
            "cluster_id": empty["cluster_id"].to_list(),
            "reason": ["no released base cluster below it"] * len(empty),
        },
        schema={"cluster_id": pl.Int64, "reason": pl.Utf8},
    )


def base_ancestry(members: pl.DataFrame) -> pl.DataFrame:
    """``base_id``, ``cluster_id`` (a node above it) and ``level`` for every base cluster and ancestor."""
    if "level" not in members.columns:
        return pl.DataFrame(schema={"base_id": pl.Int64, "cluster_id": pl.Int64, "level": pl.Int64})
    base_level = members["level"].min()
    base = members.filter(pl.col("level") == base_level).select(
        "conversation_id", pl.col("cluster_id").alias("base_id")
    )
    above = members.filter(pl.col("level") > base_level).select("conversation_id", "cluster_id", "level")
    return (
        base.join(above, on="conversation_id")
        .select("base_id", "cluster_id", "level")
        .unique()
        .sort("base_id", "level")
    )


def dp_level_counts(
    members: pl.DataFrame, released: pl.DataFrame, codes: Sequence[str], config: DPConfig, salt: str
) -> tuple[pl.DataFrame, float]:
    """Noisy counts for released nodes of every level, measured once at the base level.

    The released base clusters get every measure (conversations, unique
    accounts, concerning count, concern sum, categories) from
    ``dp_cluster_counts``. A parent's additive counts are the sums of its
    released base descendants' noisy counts (post-processing: no budget, and
    the published tree adds up); unique accounts do not add up, so each parent
    level gets one noisy unique-account count of the accounts in its released
    base descendants. The budget is split evenly over these ``5 + parent
    levels`` measures (7 with three levels), not over 5 measures at each of 3
    levels (15): the base counts carry about half the noise they did.

    A released parent with no released base descendant (its children were
    withheld by a text layer) gets zero counts.

    Args:
        members: One row per conversation and node (``conversation_id``, ``account``,
            ``cluster_id``, ``level``, ``concern_score``, ``categories``).
        released: Released nodes (``cluster_id``, ``level``).
        codes: Taxonomy codes counted per node.
        config: The day's counts budget and contribution bounds.
        salt: Keys contribution bounding (e.g. the day).

    Returns:
        The noisy columns per released ``cluster_id`` and the epsilon spent
        (OpenDP's privacy maps, summed: sequential composition).
    """
    if released.is_empty():
        return pl.DataFrame(schema={"cluster_id": pl.Int64}), 0.0
    if "level" not in members.columns:
        members = members.with_columns(pl.lit(0, pl.Int64).alias("level"))
    base_level = cast(int, members["level"].min()) if len(members) else 0  # an Int64 column
    parent_levels = sorted({int(v) for v in released["level"].to_list()} - {base_level})
    n_measures = len(BASE_MEASURES) + len(parent_levels)
    share = config.epsilon / n_measures
    base_ids = released.filter(pl.col("level") == base_level)["cluster_id"].to_list()
    base = members.filter(pl.col("level") == base_level)
    raw, spent = dp_raw_counts(base, base_ids, codes, config, share, salt=f"{salt}:{base_level}")
    additive = [c for c in raw.columns if c not in ("cluster_id", "unique_accounts")]
    frames = [raw]
    ancestry = base_ancestry(members).filter(pl.col("base_id").is_in(base_ids))
    for level in parent_levels:
        ids = released.filter(pl.col("level") == level)["cluster_id"].to_list()
        sums = (
            pl.DataFrame({"cluster_id": ids}, schema={"cluster_id": pl.Int64})
            .join(
                ancestry.filter(pl.col("level") == level)
                .join(raw.rename({"cluster_id": "base_id"}), on="base_id")
                .group_by("cluster_id")
                .agg(pl.col(additive).sum()),
                on="cluster_id",
                how="left",
            )
            .fill_null(0)
        )
        # Unique accounts of the parent, over the conversations of its released base descendants.
        under = ancestry.filter(pl.col("level") == level)
        convs = base.filter(pl.col("cluster_id").is_in(under["base_id"].implode())).select(
            "conversation_id", pl.col("cluster_id").alias("base_id")
        )
        level_members = (
            convs.join(under.select("base_id", "cluster_id"), on="base_id")
            .drop("base_id")
            .join(
                members.filter(pl.col("level") == base_level).drop("cluster_id", "level"),
                on="conversation_id",
            )
        )
        accounts, eps = dp_unique_accounts(level_members, ids, config, share, salt=f"{salt}:{level}")
        spent += eps
        frames.append(sums.join(accounts, on="cluster_id").select(raw.columns))
    return finish_counts(pl.concat(frames), codes), spent


@dataclass(frozen=True)
class DPAccounting:
    """The day's privacy budget, as spent: partition selection plus published counts.

    The two mechanisms compose sequentially (the counts are measured on the
    clusters selection released), so the day's guarantee is
    ``(selection_epsilon + counts_epsilon, selection_delta)``-DP per account,
    given the clustering and the contribution bounds. ``demo_budget`` marks a
    budget chosen so a sample-sized day releases anything at all; the report
    says such a budget is not a meaningful guarantee.
    """

    selection_epsilon: float
    selection_delta: float
    selection_threshold: int
    counts_epsilon: float
    demo_budget: bool = False

    @property
    def epsilon(self) -> float:
        """Total epsilon of the day."""
        return self.selection_epsilon + self.counts_epsilon

    @property
    def delta(self) -> float:
        """Total delta of the day (the counts' discrete Laplace is pure DP)."""
        return self.selection_delta

    def to_json(self) -> dict[str, float | int | bool]:
        """The record written to the gate's ``gate.json`` (totals included)."""
        return {**dataclasses.asdict(self), "epsilon": self.epsilon, "delta": self.delta}

    @classmethod
    def from_json(cls, data: dict) -> DPAccounting | None:
        """Read ``to_json``'s record; ``None`` for an empty one (DP off) or an older gate file."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not all(n in data for n in names if n != "demo_budget"):
            return None
        return cls(**{n: data[n] for n in names if n in data})

    def metrics(self) -> dict[str, float]:
        """Run-summary metrics: ``dp_epsilon`` and ``dp_delta`` (totals) and their parts."""
        return {
            "dp_epsilon": self.epsilon,
            "dp_delta": self.delta,
            "dp_selection_epsilon": self.selection_epsilon,
            "dp_counts_epsilon": self.counts_epsilon,
            "dp_selection_threshold": float(self.selection_threshold),
            "dp_demo_budget": 1.0 if self.demo_budget else 0.0,
        }


def with_dp_counts(released: pl.DataFrame, noisy: pl.DataFrame) -> pl.DataFrame:
    """``released`` with every count column replaced by its DP value from ``dp_level_counts`` (exact ones dropped)."""
    return released.drop([c for c in noisy.columns if c != "cluster_id"], strict=False).join(
        noisy, on="cluster_id", how="left"
    )
