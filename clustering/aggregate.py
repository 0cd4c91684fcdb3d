"""Per-cluster aggregates from facet rows and cluster labels (Polars)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from clustering.cluster import NOISE
from clustering.naming import NamedCluster

# A conversation's concern in every aggregate: the facet stage's ``concern_score`` (the
# model's expected concern blended with the category match, 1-5). It ranks better than the
# integer answer: moderation AUPRC 0.72 vs 0.48 on the facet benchmark (1.5B).
CONCERN = "concern_score"
# Counted as concerning at this score: the best F1 on 120 moderation prompts disjoint from the
# facet benchmark's sample (0.75; the integer answer at 4: 0.68).
CONCERNING_AT = 3.0


def assignments_frame(facets: pl.DataFrame, labels: np.ndarray, day: str) -> pl.DataFrame:
    """Conversation to base-cluster assignments (private state; -1 is noise)."""
    return pl.DataFrame(
        {
            "day": [day] * len(facets),
            "conversation_id": facets["conversation_id"],
            "account": facets["account"],
            "cluster_id": pl.Series(labels.astype(np.int64)),
        }
    )


def cluster_table(
    facets: pl.DataFrame,
    assignments: pl.DataFrame,
    names: Sequence[NamedCluster],
    taxonomy_codes: Sequence[str],
    day: str,
    coordinates: np.ndarray | None = None,
) -> pl.DataFrame:
    """One row per base cluster (level 0, no parent) with exact counts, names and category counts.

    Noise is not a cluster and gets no row.
    """
    nodes = pl.DataFrame(
        {
            "cluster_id": [n.cluster_id for n in names],
            "level": [0] * len(names),
            "parent_id": [None] * len(names),
            "title": [n.title for n in names],
            "description": [n.description for n in names],
            "name_source": [n.source for n in names],
        },
        schema=NODE_SCHEMA,
    )
    members = with_coordinates(assignments, coordinates).filter(pl.col("cluster_id") != NOISE)
    return node_table(facets, members, nodes, taxonomy_codes, day)


NODE_SCHEMA: dict[str, type[pl.DataType]] = {
    "cluster_id": pl.Int64,
    "level": pl.Int64,
    "parent_id": pl.Int64,
    "title": pl.Utf8,
    "description": pl.Utf8,
    "name_source": pl.Utf8,
}


def with_coordinates(assignments: pl.DataFrame, coordinates: np.ndarray | None) -> pl.DataFrame:
    """Assignments with each conversation's 2-D layout position (``x``, ``y``; null when unknown)."""
    if coordinates is None or not len(coordinates):
        return assignments.with_columns(
            pl.lit(None, pl.Float64).alias("x"), pl.lit(None, pl.Float64).alias("y")
        )
    y = coordinates[:, 1] if coordinates.shape[1] > 1 else np.zeros(len(coordinates))
    return assignments.with_columns(
        pl.Series("x", coordinates[:, 0].astype(float)), pl.Series("y", np.asarray(y, dtype=float))
    )


def node_table(
    facets: pl.DataFrame,
    members: pl.DataFrame,
    nodes: pl.DataFrame,
    taxonomy_codes: Sequence[str],
    day: str,
) -> pl.DataFrame:
    """One row per hierarchy node with exact counts aggregated from its member conversations.

    Args:
        facets: The day's facets (``conversation_id``, ``account``, ``concern_score``,
            ``task``, ``categories``).
        members: One row per conversation and node it belongs to (``conversation_id``,
            ``cluster_id``, and ``x``/``y`` layout positions); see
            ``clustering.hierarchy.membership``.
        nodes: ``cluster_id, level, parent_id, title, description, name_source``.
        taxonomy_codes: Codes counted into ``cat_<code>`` columns.
        day: The partition.
    """
    joined = facets.drop("cluster_id", strict=False).join(
        members.select("conversation_id", "cluster_id", "x", "y"), on="conversation_id"
    )
    if joined.is_empty() or nodes.is_empty():
        return empty_cluster_table(taxonomy_codes)
    category_cols = [
        pl.col("categories").list.contains(code).sum().cast(pl.Int64).alias(f"cat_{code}")
        for code in taxonomy_codes
    ]
    table = joined.group_by("cluster_id").agg(
        pl.len().cast(pl.Int64).alias("conversations"),
        pl.col("account").n_unique().cast(pl.Int64).alias("unique_accounts"),
        pl.col(CONCERN).mean().alias("mean_concern"),
        (pl.col(CONCERN) >= CONCERNING_AT).mean().alias("share_concerning"),
        pl.col("task").mode().sort().first().alias("top_task"),
        pl.col("x").mean(),
        pl.col("y").mean(),
        *category_cols,
    )
    table = (
        nodes.select(list(NODE_SCHEMA))
        .join(table, on="cluster_id", how="inner")
        .with_columns(pl.lit(day).alias("day"))
        .sort("level", "cluster_id")
    )
    return table.select(CLUSTER_COLUMNS + [f"cat_{c}" for c in taxonomy_codes])


CLUSTER_COLUMNS = [
    "day",
    "cluster_id",
    "level",
    "parent_id",
    "title",
    "description",
    "name_source",
    "conversations",
    "unique_accounts",
    "mean_concern",
    "share_concerning",
    "top_task",
    "x",
    "y",
]


def empty_cluster_table(taxonomy_codes: Sequence[str]) -> pl.DataFrame:
    """A cluster table with no rows and the full schema."""
    schema: dict[str, type[pl.DataType] | pl.DataType] = {
        "day": pl.Utf8,
        "cluster_id": pl.Int64,
        "level": pl.Int64,
        "parent_id": pl.Int64,
        "title": pl.Utf8,
        "description": pl.Utf8,
        "name_source": pl.Utf8,
        "conversations": pl.Int64,
        "unique_accounts": pl.Int64,
        "mean_concern": pl.Float64,
        "share_concerning": pl.Float64,
        "top_task": pl.Utf8,
        "x": pl.Float64,
        "y": pl.Float64,
    }
    schema.update({f"cat_{c}": pl.Int64 for c in taxonomy_codes})
    return pl.DataFrame(schema=schema)
