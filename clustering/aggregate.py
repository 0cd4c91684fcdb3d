"""Per-cluster aggregates from facet rows and cluster labels (Polars)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from clustering.cluster import NOISE
from clustering.naming import NamedCluster

CONCERNING_AT = 4


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
    """One row per base cluster with exact counts, names and category counts.

    Noise is not a cluster and gets no row.
    """
    joined = facets.join(assignments.select("conversation_id", "cluster_id"), on="conversation_id")
    joined = joined.filter(pl.col("cluster_id") != NOISE)
    if joined.is_empty():
        return empty_cluster_table(taxonomy_codes)
    category_cols = [
        pl.col("categories").list.contains(code).sum().cast(pl.Int64).alias(f"cat_{code}")
        for code in taxonomy_codes
    ]
    table = (
        joined.group_by("cluster_id")
        .agg(
            pl.len().cast(pl.Int64).alias("conversations"),
            pl.col("account").n_unique().cast(pl.Int64).alias("unique_accounts"),
            pl.col("concerning").mean().alias("mean_concern"),
            (pl.col("concerning") >= CONCERNING_AT).mean().alias("share_concerning"),
            pl.col("task").mode().first().alias("top_task"),
            *category_cols,
        )
        .sort("cluster_id")
    )
    name_frame = pl.DataFrame(
        {
            "cluster_id": [n.cluster_id for n in names],
            "title": [n.title for n in names],
            "description": [n.description for n in names],
            "name_source": [n.source for n in names],
        },
        schema={"cluster_id": pl.Int64, "title": pl.Utf8, "description": pl.Utf8, "name_source": pl.Utf8},
    )
    table = table.join(name_frame, on="cluster_id", how="left").with_columns(
        pl.lit(day).alias("day"),
        pl.lit(0, dtype=pl.Int64).alias("level"),
    )
    if coordinates is not None and len(coordinates):
        xy = pl.DataFrame(
            {
                "cluster_id": assignments["cluster_id"],
                "x": coordinates[:, 0].astype(float),
                "y": coordinates[:, 1].astype(float) if coordinates.shape[1] > 1 else 0.0,
            }
        ).filter(pl.col("cluster_id") != NOISE)
        table = table.join(
            xy.group_by("cluster_id").agg(pl.col("x").mean(), pl.col("y").mean()), on="cluster_id", how="left"
        )
    else:
        table = table.with_columns(pl.lit(None, pl.Float64).alias("x"), pl.lit(None, pl.Float64).alias("y"))
    return table.select(CLUSTER_COLUMNS + [f"cat_{c}" for c in taxonomy_codes])


CLUSTER_COLUMNS = [
    "day",
    "cluster_id",
    "level",
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
