"""Ingest: record validation and the Beam ingest/redact job's dead-letter path."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from summarize.records import RecordError, parse_record

DAY = "2026-11-04"
GOOD = {
    "conversation_id": "c-good",
    "account_id": "acct_0001",
    "timestamp": "2026-11-04T10:00:00Z",
    "messages": [
        {"role": "user", "content": "How do I sort a list in Python?"},
        {"role": "assistant", "content": "Use sorted()."},
    ],
}


def variant(**changes):
    record = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


MALFORMED = [
    ("not json", '{"conversation_id": "c1", "messages": [', "<record>", "invalid JSON"),
    ("not an object", "[1, 2, 3]", "<record>", "expected a JSON object"),
    ("missing messages", variant(messages=None), "messages", "missing"),
    ("empty messages", variant(messages=[]), "messages", "too_short"),
    (
        "bad role",
        variant(messages=[{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]),
        "messages[1].role",
        "literal_error",
    ),
    ("non-string content", variant(messages=[{"role": "user", "content": 42}]), "messages[0].content", ""),
    (
        "no user turn",
        variant(messages=[{"role": "assistant", "content": "hello"}]),
        "messages",
        "no user turn",
    ),
    ("missing account", variant(account_id=None), "account_id", "missing"),
    ("empty account", variant(account_id=""), "account_id", "too_short"),
    ("bad timestamp", variant(timestamp="yesterday"), "timestamp", "datetime"),
    ("wrong day", variant(timestamp="2026-11-02T10:00:00Z"), "timestamp", "outside partition"),
]


@pytest.mark.parametrize(("case", "raw", "field", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_record_names_field_and_reason(case, raw, field, reason):
    raw = raw if isinstance(raw, str) else json.dumps(raw)
    with pytest.raises(RecordError) as info:
        parse_record(raw, source="logs.jsonl", location="line 7", day=dt.date.fromisoformat(DAY))
    letter = info.value.dead_letter
    assert letter.field == field
    assert reason in letter.reason
    assert (letter.source, letter.location) == ("logs.jsonl", "line 7")
    assert "logs.jsonl:line 7" in str(info.value)


@pytest.mark.parametrize(
    ("content", "text", "dropped"),
    [
        ("plain", "plain", 0),
        (
            [
                {"type": "text", "text": "a"},
                {"type": "image_url", "image_url": {"url": "x"}},
                {"type": "text", "text": "b"},
            ],
            "a\nb",
            1,
        ),
    ],
)
def test_content_parts(content, text, dropped):
    record = parse_record(
        variant(messages=[{"role": "user", "content": content}]), source="s", location="row 1"
    )
    assert record.messages[0].text() == (text, dropped)


def test_timestamps_are_utc():
    record = parse_record(variant(timestamp="2026-11-04T12:00:00+02:00"), source="s", location="row 1")
    assert record.timestamp == dt.datetime(2026, 11, 4, 10, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """One Beam run over JSONL, JSONL.gz and Parquet files with good and malformed records."""
    from pipelines import ingest_redact

    root = tmp_path_factory.mktemp("ingest")
    src = root / DAY
    src.mkdir()
    lines = []
    for i in range(5):
        lines.append(json.dumps(variant(conversation_id=f"good-{i}", account_id=f"acct_{i}")))
    for case, raw, _, _ in MALFORMED:
        lines.append(raw if isinstance(raw, str) else json.dumps({**raw, "conversation_id": f"bad-{case}"}))
    (src / "a.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    with gzip.open(src / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(variant(conversation_id="good-gz")) + "\n")
        f.write("\u00ff\u00fe not json\n")
    (src / "c.jsonl").write_bytes(b'{"conversation_id": "bad-utf8", "x": "\xff"}\n')
    table = pa.Table.from_pylist(
        [variant(conversation_id="good-pq"), variant(conversation_id="bad-pq", messages=None)]
    )
    pq.write_table(table, src / "d.parquet")
    (src / "e.parquet").write_bytes(b"not a parquet file")
    # A gzip file cut short: the records before the cut are kept, the rest is one dead letter.
    noise = json.dumps({"padding": random.Random(0).randbytes(30_000).hex()})
    cut = gzip.compress((json.dumps(variant(conversation_id="good-cut")) + "\n" + noise + "\n").encode())
    (src / "f.jsonl.gz").write_bytes(cut[: len(cut) // 2])
    huge = [{"role": "user", "content": "Please review this log. " + "x" * 120_000}]
    (src / "g.jsonl").write_text(json.dumps(variant(conversation_id="good-huge", messages=huge)) + "\n")
    out, dead = root / "redacted.parquet", root / "dead.parquet"
    ingest_redact.run(
        [
            f"--input={src}",
            f"--day={DAY}",
            f"--output={out}",
            f"--dead_letter={dead}",
            "--runner=FnApiRunner",
        ],
        pseudonym_key=b"k" * 32,
    )
    return pl.read_parquet(out), pl.read_parquet(dead)


def test_every_record_is_counted(ingested):
    redacted, dead = ingested
    expected = [f"good-{i}" for i in range(5)] + ["good-gz", "good-pq", "good-cut", "good-huge"]
    assert sorted(redacted["conversation_id"]) == sorted(expected)
    # malformed lines, 1 garbage gz line, 1 invalid UTF-8 line, 1 bad parquet row, 1 unreadable file, 1 cut gzip
    assert len(dead) == len(MALFORMED) + 5


def test_cut_file_keeps_records_before_the_cut(ingested):
    _, dead = ingested
    row = dead.filter(pl.col("source") == "f.jsonl.gz").row(0, named=True)
    assert row["location"] == "after line 1" and row["reason"].startswith("unreadable file")


def test_huge_message_is_truncated_and_counted(ingested):
    redacted, _ = ingested
    row = redacted.filter(pl.col("conversation_id") == "good-huge").row(0, named=True)
    assert row["truncated_messages"] == 1
    assert len(row["messages"][0]["content"]) < 101_000
    assert row["messages"][0]["content"].endswith("[truncated]")
    assert redacted.filter(pl.col("conversation_id") != "good-huge")["truncated_messages"].sum() == 0


@pytest.mark.parametrize(("case", "raw", "field", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_dead_letter_row_per_malformed_record(ingested, case, raw, field, reason):
    _, dead = ingested
    rows = dead.filter(
        (pl.col("source") == "a.jsonl")
        & (pl.col("field") == field)
        & pl.col("reason").str.contains(reason, literal=True)
    )
    assert len(rows) >= 1
    assert rows["location"].str.starts_with("line ").all()


def test_other_formats_dead_letter(ingested):
    _, dead = ingested
    by_source = {
        r["source"]: r for r in dead.iter_rows(named=True) if r["source"] not in ("a.jsonl", "f.jsonl.gz")
    }
    assert by_source["c.jsonl"]["reason"].startswith("invalid UTF-8")
    assert by_source["d.parquet"]["location"] == "row 2" and by_source["d.parquet"]["field"] == "messages"
    assert by_source["e.parquet"]["field"] == "<file>"
    assert by_source["b.jsonl.gz"]["location"] == "line 2"


def test_no_raw_account_ids_after_redaction(ingested):
    redacted, _ = ingested
    assert redacted["account"].str.starts_with("acct_").sum() == 0
    assert redacted["account"].n_unique() == 5 + 1  # good-gz and good-pq share acct_0001


def _metadata(path):
    from apache_beam.io.filesystem import FileMetadata

    return FileMetadata(str(path), path.stat().st_size)


@pytest.mark.parametrize("split_bytes", [1, 7, 40, 41, 64, 10_000])
def test_byte_ranges_read_every_line_once(tmp_path, split_bytes):
    from pipelines.ingest_redact import read_file, read_range, split_file

    lines = ['{"a": 1}', "", '{"b": "' + "x" * 50 + '"}', '{"c": 3}\r', "  ", '{"d": "\u00e9"}', '{"e": 5}']
    path = tmp_path / "day.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    ranges = list(split_file(_metadata(path), split_bytes))
    got = [rec for item in ranges for rec in read_range(item)]
    whole = list(read_file(str(path)))
    assert [raw for _, _, raw in got] == [raw for _, _, raw in whole]  # same records, same order, none twice
    if len(ranges) > 1:
        data = path.read_bytes()
        for _, location, raw in got:  # a byte location points at the record's first byte
            offset = int(location.removeprefix("byte "))
            assert data[offset:].decode("utf-8").startswith(raw)


def test_only_plain_jsonl_is_split(tmp_path):
    from pipelines.ingest_redact import split_file

    for name in ("day.jsonl.gz", "day.parquet"):
        (tmp_path / name).write_bytes(b"x" * 1000)
        assert list(split_file(_metadata(tmp_path / name), 10)) == [(str(tmp_path / name), 0, -1)]


def test_split_job_writes_the_same_rows(tmp_path):
    """The same input read in 300-byte ranges gives every row once, and leaves no shard behind."""
    from pipelines import ingest_redact

    src = tmp_path / DAY
    src.mkdir()
    lines = [json.dumps(variant(conversation_id=f"c{i}", account_id=f"acct_{i}")) for i in range(12)]
    (src / "day.jsonl").write_text("\n".join(lines) + "\nnot json\n", encoding="utf-8")
    out, dead = tmp_path / "redacted.parquet", tmp_path / "dead.parquet"
    ingest_redact.run(
        [
            f"--input={src}",
            f"--day={DAY}",
            f"--output={out}",
            f"--dead_letter={dead}",
            "--split_mb=0.0003",
            "--runner=FnApiRunner",
        ],
        pseudonym_key=b"k" * 32,
    )
    assert sorted(pl.read_parquet(out)["conversation_id"]) == sorted(f"c{i}" for i in range(12))
    assert (
        pl.read_parquet(dead)["location"].str.starts_with("byte ").all() and len(pl.read_parquet(dead)) == 1
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        DAY,
        "dead.parquet",
        "redacted.parquet",
    ]  # no shards left


@pytest.mark.parametrize("rows_per_shard", [[], [0], [3, 0, 2]])
def test_shards_merge_into_one_file(tmp_path, rows_per_shard):
    from pipelines.common import DEAD_LETTER_SCHEMA, merge_parquet

    shards = []
    for k, n in enumerate(rows_per_shard):
        rows = [
            {
                "stage": "ingest",
                "source": f"s{k}",
                "location": f"line {i}",
                "conversation_id": None,
                "field": "x",
                "reason": "r",
            }
            for i in range(n)
        ]
        shard = tmp_path / "out.parquet.shards" / f"part-{k}.parquet"
        shard.parent.mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=DEAD_LETTER_SCHEMA), shard)
        shards.append(str(shard))
    (tmp_path / "out.parquet").write_bytes(b"an earlier run's output")
    merge_parquet(shards, str(tmp_path / "out.parquet"), DEAD_LETTER_SCHEMA)
    merged = pq.read_table(tmp_path / "out.parquet")
    assert merged.schema.equals(DEAD_LETTER_SCHEMA) and merged.num_rows == sum(rows_per_shard)
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_parquet_writer_flushes_row_groups_as_it_goes(tmp_path):
    """A worker buffers at most ROW_GROUP_BYTES of rows: a larger output is written in several row groups."""
    import apache_beam as beam

    from pipelines.common import DEAD_LETTER_SCHEMA, ROW_GROUP_BYTES, write_parquet

    reason = "x" * 2000
    n = 3 * ROW_GROUP_BYTES // len(reason)
    out = tmp_path / "dead.parquet"
    with beam.Pipeline(runner="FnApiRunner") as p:
        rows = (
            p
            | beam.Create(range(n))
            | beam.Map(
                lambda i: {
                    "stage": "ingest",
                    "source": "s",
                    "location": f"line {i}",
                    "conversation_id": None,
                    "field": "x",
                    "reason": reason,
                }
            )
        )
        write_parquet(rows, str(out), DEAD_LETTER_SCHEMA, "Write")
    meta = pq.ParquetFile(out).metadata
    assert meta.num_rows == n and meta.num_row_groups >= 3
