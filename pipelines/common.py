"""Shared Beam wiring: options, Parquet schemas, and writing single-file outputs."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

DEFAULT_RUNNER = "FnApiRunner"
# Arrow bytes a Parquet shard writer buffers before it writes a row group (Beam: 64 MiB);
# small so that a worker's memory does not grow with its share of the day.
ROW_GROUP_BYTES = 4 * 1024 * 1024

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("source", pa.string()),
        ("location", pa.string()),
        ("conversation_id", pa.string()),
        ("field", pa.string()),
        ("reason", pa.string()),
    ]
)

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])

REDACTED_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("account", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("entities", pa.list_(pa.struct([("entity_type", pa.string()), ("count", pa.int64())]))),
        ("dropped_parts", pa.int64()),
        ("truncated_messages", pa.int64()),
    ]
)

FACETS_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("account", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("summary", pa.string()),
        ("request", pa.string()),
        ("task", pa.string()),
        ("topic", pa.string()),
        ("concerning", pa.int64()),
        ("concern_score", pa.float64()),
        ("concern_score_source", pa.string()),
        ("category_match", pa.float64()),
        ("categories", pa.list_(pa.string())),
        ("language", pa.string()),
        ("turns", pa.int64()),
        ("model_id", pa.string()),
        ("prompt_version", pa.string()),
        ("cache_key", pa.string()),
    ]
)


def split_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, PipelineOptions]:
    """App flags from ``parser``; everything else goes to Beam (FnApiRunner by default)."""
    known, rest = parser.parse_known_args(argv)
    if not any(a.startswith("--runner") for a in rest):
        rest = [f"--runner={DEFAULT_RUNNER}", *rest]
    return known, PipelineOptions(rest)


def write_parquet(pcoll: beam.PCollection, path: str, schema: pa.Schema, label: str) -> None:
    """Write a PCollection of dicts to exactly ``path`` (one file, even when empty).

    Workers write their bundles as shards in parallel (the rows are never shuffled
    into one place); one step then streams the shards, row group by row group,
    into ``path`` through a temporary name and deletes them. So memory does not
    grow with the output, and a reader never sees half a file.
    """
    if not path.endswith(".parquet"):
        raise ValueError(f"parquet output path must end in .parquet: {path}")
    shards = pcoll | label >> beam.io.WriteToParquet(
        FileSystems.join(f"{path}.shards", "part"),
        schema,
        row_group_buffer_size=ROW_GROUP_BYTES,
        file_name_suffix=".parquet",
    )
    _ = (
        shards
        | f"{label}Files" >> beam.combiners.ToList()
        | f"{label}Merge" >> beam.Map(merge_parquet, path, schema)
    )


def merge_parquet(shards: Sequence[str], path: str, schema: pa.Schema) -> str:
    """Stream Parquet ``shards`` into one file at ``path`` (replaced atomically), then delete them."""
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    with FileSystems.create(temporary) as out, pq.ParquetWriter(out, schema) as writer:
        for shard in sorted(shards):
            with FileSystems.open(shard, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                source = pq.ParquetFile(f)
                for group in range(source.num_row_groups):
                    writer.write_table(source.read_row_group(group).cast(schema))
    FileSystems.rename([temporary], [path])  # replaces an earlier output (local: one atomic rename)
    if shards:
        FileSystems.delete(list(shards))  # object stores have no folder to delete with them
    folder = f"{path}.shards"
    if FileSystems.exists(folder):
        FileSystems.delete([folder])
    return path
