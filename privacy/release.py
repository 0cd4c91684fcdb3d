"""Releasing a cluster hierarchy: tree repair after withholding, and DP counts per level."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import polars as pl

from privacy.dp import DPConfig, dp_cluster_counts


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


def dp_level_counts(
    members: pl.DataFrame, released: pl.DataFrame, codes: Sequence[str], config: DPConfig, salt: str
) -> tuple[pl.DataFrame, float]:
    """Noisy counts for released nodes of every level, the day's budget split evenly over levels.

    Each conversation belongs to one node per level, so the levels compose
    sequentially and the total epsilon is the sum of the levels' shares.

    Args:
        members: One row per conversation and node (``conversation_id``, ``account``,
            ``cluster_id``, ``level``, ``concerning``, ``categories``).
        released: Released nodes (``cluster_id``, ``level``).
        codes: Taxonomy codes counted per node.
        config: The day's budget and contribution bounds.
        salt: Keys contribution bounding (e.g. the day).

    Returns:
        The noisy columns per released ``cluster_id`` and the epsilon spent.
    """
    levels = sorted(set(released["level"].to_list()))
    if not levels:
        return pl.DataFrame(schema={"cluster_id": pl.Int64}), 0.0
    share = dataclasses.replace(config, epsilon=config.epsilon / len(levels))
    frames, spent = [], 0.0
    for level in levels:
        ids = released.filter(pl.col("level") == level)["cluster_id"].to_list()
        noisy, eps = dp_cluster_counts(members.filter(pl.col("level") == level), ids, codes, share, salt=f"{salt}:{level}")
        frames.append(noisy)
        spent += eps
    return pl.concat(frames), spent
