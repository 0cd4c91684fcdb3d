"""Report tables (aggregates only) and their Parquet output."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

# Columns of the released cluster table that may appear in a report.
REPORT_CLUSTER_COLUMNS = [
    "day",
    "cluster_id",
    "level",
    "title",
    "description",
    "conversations",
    "unique_accounts",
    "mean_concern",
    "share_concerning",
    "top_task",
    "x",
    "y",
]


FLAG_COLUMNS = ["track_id", "is_new", "growth_ratio", "flagged", "reasons"]


def report_clusters(released: pl.DataFrame, flags: pl.DataFrame | None = None) -> pl.DataFrame:
    """The released clusters as published (no ids of people, no member text), flagged first."""
    table = released.select(REPORT_CLUSTER_COLUMNS)
    if flags is None or flags.is_empty():
        table = table.with_columns(
            pl.lit(None, pl.Utf8).alias("track_id"),
            pl.lit(None, pl.Boolean).alias("is_new"),
            pl.lit(None, pl.Float64).alias("growth_ratio"),
            pl.lit(False).alias("flagged"),
            pl.lit([], pl.List(pl.Utf8)).alias("reasons"),
        )
    else:
        table = table.join(flags.select("cluster_id", *FLAG_COLUMNS), on="cluster_id", how="left").with_columns(
            pl.col("flagged").fill_null(False), pl.col("reasons").fill_null([])
        )
    return table.sort(["flagged", "conversations"], descending=[True, True])


def category_counts(released: pl.DataFrame, taxonomy_codes: Sequence[str]) -> pl.DataFrame:
    """Long table: ``cluster_id, category, conversations`` for non-zero counts."""
    cols = [f"cat_{c}" for c in taxonomy_codes if f"cat_{c}" in released.columns]
    if released.is_empty() or not cols:
        return pl.DataFrame(schema={"day": pl.Utf8, "cluster_id": pl.Int64, "category": pl.Utf8, "conversations": pl.Int64})
    return (
        released.select("day", "cluster_id", *cols)
        .unpivot(index=["day", "cluster_id"], on=cols, variable_name="category", value_name="conversations")
        .with_columns(pl.col("category").str.strip_prefix("cat_"), pl.col("conversations").cast(pl.Int64))
        .filter(pl.col("conversations") > 0)
        .sort("cluster_id", "category")
    )


def summary_table(day: str, summary: Mapping[str, Any]) -> pl.DataFrame:
    """The run summary as ``day, metric, value`` rows (numbers only)."""
    return pl.DataFrame(
        {
            "day": [day] * len(summary),
            "metric": list(summary),
            "value": [float(v) for v in summary.values()],
        },
        schema={"day": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64},
    )


def write_atomic(data: bytes | str, path: Path) -> None:
    """Write a file via a temp file and rename, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file via a temp file and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    frame.write_parquet(tmp)
    os.replace(tmp, path)
