"""Shared Beam wiring: options, Parquet schemas, and writing single-file outputs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions

DEFAULT_RUNNER = "FnApiRunner"

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
    """Write a PCollection of dicts to exactly ``path`` (one file, even when empty)."""
    if not path.endswith(".parquet"):
        raise ValueError(f"parquet output path must end in .parquet: {path}")
    _ = pcoll | label >> beam.io.WriteToParquet(
        path[: -len(".parquet")],
        schema,
        file_name_suffix=".parquet",
        num_shards=1,
        shard_name_template="",
    )
