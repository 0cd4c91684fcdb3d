"""Shared fixtures: the real models are loaded once per session."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from pathlib import Path

import pytest

from summarize.llm import LLM, JsonRequest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
SHARED_DATA = REPO.parent / "shared" / "data"


def require_shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"evaluation data {path} is absent (../shared/data is not checked out here)")
    return path


@pytest.fixture(scope="session")
def pii_synth() -> list[dict]:
    path = require_shared("pii_presidio_synth", "synth_dataset_v2.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        records = json.load(f)
    assert records and {"full_text", "spans"} <= set(records[0]), f"unexpected format in {path}"
    return records


@pytest.fixture(scope="session")
def redactor():
    from privacy.redaction import Redactor

    return Redactor()


@pytest.fixture(scope="session")
def embedded_llm():
    """The small embedded model: these tests check mechanics; the default model has its own test."""
    from summarize.embedded import SMALL_MODEL, EmbeddedLLM

    return EmbeddedLLM(SMALL_MODEL)


@pytest.fixture(scope="session")
def minilm():
    """The bundled sentence embedder (all-MiniLM-L6-v2)."""
    from clustering.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def taxonomy():
    from summarize.taxonomy import load_taxonomy

    return load_taxonomy()


def sample_records(day: str) -> list[dict]:
    """The valid JSONL records of one bundled sample day."""
    out = []
    for line in (SAMPLE / day / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record.get("messages"), list) and record["messages"] and record.get("account_id"):
            out.append(record)
    return out


def partition_records(day: str, n: int) -> list[dict]:
    """The first ``n`` sample records of ``day`` that the ingest stage accepts for that partition."""
    from summarize.records import RecordError, parse_record

    out = []
    for record in sample_records(day):
        try:
            parse_record(json.dumps(record), source="t", location="t", day=dt.date.fromisoformat(day))
        except RecordError:
            continue
        out.append(record)
    return out[:n]


class ScriptedLLM(LLM):
    """Test double for the LLM interface: answers from a fixed script, recording requests.

    An exception in the script is raised for that request; past the end it answers ``{}``.
    """

    def __init__(self, answers, model_id="test:scripted"):
        self.answers = list(answers)
        self.requests: list[JsonRequest] = []
        self.model_id = model_id

    def generate_json(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else "{}"
        if isinstance(answer, Exception):
            raise answer
        return answer
