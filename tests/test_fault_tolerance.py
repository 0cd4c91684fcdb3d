"""Fault tolerance: failures mid-stage are retried, and rerunning a failed partition loses and duplicates nothing.

* vLLM timeouts, 503s and dropped connections during the facet stage: a local
  HTTP server speaking vLLM's OpenAI-compatible API (a scripted double, over real
  sockets and real client timeouts) fails some requests once; the real
  ``conversation_facets`` asset (Beam RunInference, the vLLM client's retries) still
  gives every conversation exactly once. A conversation whose requests all fail is
  dead-lettered, and the rerun of the partition sends only that one to the server.
* A worker crash mid-stage in ``redacted_conversations``: the Beam job fails, the
  asset's Dagster retry policy runs it again, and the output has exactly the input's
  records; a partition whose retries are exhausted fails, keeps its previous output
  whole, and a rerun completes with exact counts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets import stages
from assets.definitions import ASSETS, build_definitions
from assets.resources import BeamRunnerResource, LookoutPaths, TaxonomyResource, VLLMServerResource
from pipelines.common import REDACTED_SCHEMA
from tests.conftest import partition_records

DAY = "2026-11-04"
FACETS = {
    "summary": "The user asked for help with a programming task.",
    "request": "help with code",
    "task": "coding",
    "topic": "programming",
    "concerning": 1,
    "categories": ["none"],
}


# --- vLLM failures in the facet stage ---------------------------------------------------


class FlakyVLLM(ThreadingHTTPServer):
    """A vLLM chat-completions endpoint that fails chosen conversations' first requests.

    ``faults`` maps a conversation number to ``timeout`` (answers after the client's
    timeout), ``503``, ``drop`` (closes the connection unanswered) or ``down`` (503
    until ``recovered`` is set).
    """

    daemon_threads = True

    def __init__(self, faults: dict[int, str], stall_s: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.faults = faults
        self.stall_s = stall_s
        self.recovered = False
        self.requests: Counter[int] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FlakyVLLM

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and body["response_format"]["type"] == "json_schema"
        number = int(re.search(r"conversation number (\d+)", body["messages"][-1]["content"]).group(1))
        with self.server.lock:
            self.server.requests[number] += 1
            first = self.server.requests[number] == 1
        fault = self.server.faults.get(number)
        if fault == "down" and not self.server.recovered or fault == "503" and first:
            self.send_error(503)
            return
        if fault == "drop" and first:
            self.close_connection = True  # the server process died mid-request
            return
        if fault == "timeout" and first:
            time.sleep(self.server.stall_s)
        payload = json.dumps({"choices": [{"message": {"content": json.dumps(FACETS)}}]}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)


@pytest.fixture
def flaky_vllm():
    faults = {1: "timeout", 4: "503", 6: "drop", 9: "down"}
    server = FlakyVLLM(faults, stall_s=6.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def write_redacted(state_dir, n: int) -> list[str]:
    """A redacted day of ``n`` synthetic conversations, as the ingest stage writes it."""
    ts = dt.datetime(2026, 11, 4, 9, tzinfo=dt.UTC)
    rows = [
        {
            "conversation_id": f"c{i:02d}",
            "account": f"p_{i % 4}",
            "timestamp": ts + dt.timedelta(minutes=i),
            "messages": [
                {
                    "role": "user",
                    "content": f"Please fix the bug in conversation number {i} of my Python script.",
                },
                {"role": "assistant", "content": "Here is the corrected loop."},
            ],
            "entities": [],
            "dropped_parts": 0,
        }
        for i in range(n)
    ]
    day = state_dir / DAY
    day.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=REDACTED_SCHEMA), day / stages.REDACTED)
    return [r["conversation_id"] for r in rows]


def materialize_facets(tmp_path, server: FlakyVLLM) -> dg.MaterializeResult:
    resources = {
        "paths": LookoutPaths(
            input_dir=str(tmp_path / "in"), state_dir=str(tmp_path / "state"), out_dir=str(tmp_path / "out")
        ),
        "beam_runner": BeamRunnerResource(),
        "llm": VLLMServerResource(
            base_url=server.url, model="lookout-test", timeout_s=3.0, max_retries=2, max_concurrency=4
        ),
        "taxonomy": TaxonomyResource(),
    }
    result = dg.materialize([stages.conversation_facets], partition_key=DAY, resources=resources)
    [event] = result.get_asset_materialization_events()
    return event.materialization.metadata


@pytest.mark.slow
def test_vllm_failures_are_retried_and_rerun_completes_the_partition(tmp_path, flaky_vllm):
    ids = write_redacted(tmp_path / "state", 10)
    state = tmp_path / "state" / DAY

    first = materialize_facets(tmp_path, flaky_vllm)
    facets = pl.read_parquet(state / stages.FACETS)
    dead = pl.read_parquet(state / stages.FACETS_DEAD)
    # Timeouts, 503s and dropped connections cost one retry each and lose nothing.
    assert sorted(facets["conversation_id"]) == [i for i in ids if i != "c09"]
    assert facets["conversation_id"].is_unique().all()
    assert dead["conversation_id"].to_list() == ["c09"]
    assert "vLLM request failed after 3 attempts" in dead["reason"][0] and "HTTP 503" in dead["reason"][0]
    assert first["conversations_with_facets"].value == 9 and first["facets_dead_lettered"].value == 1
    assert {n: flaky_vllm.requests[n] for n in (1, 4, 6)} == {1: 2, 4: 2, 6: 2}
    assert all(flaky_vllm.requests[n] == 1 for n in (0, 2, 3, 5, 7, 8))
    assert flaky_vllm.requests[9] == 6  # 3 client attempts for each of the extractor's 2 attempts

    # The server is back: the rerun sends only the dead-lettered conversation and completes the day.
    flaky_vllm.recovered = True
    before = sum(flaky_vllm.requests.values())
    second = materialize_facets(tmp_path, flaky_vllm)
    facets = pl.read_parquet(state / stages.FACETS)
    assert sorted(facets["conversation_id"]) == ids and facets["conversation_id"].is_unique().all()
    assert pl.read_parquet(state / stages.FACETS_DEAD).is_empty()
    assert second["facet_cache_hits"].value == 9 and second["facets_dead_lettered"].value == 0
    assert sum(flaky_vllm.requests.values()) - before == 1
    assert not (state / stages.FACETS_CACHE).exists()


# --- a worker crash in the ingest stage -----------------------------------------------


class WorkerCrashError(RuntimeError):
    """Stands in for a Beam worker dying mid-bundle."""


def test_every_asset_has_a_retry_policy():
    for asset in ASSETS:
        policy = asset.op.retry_policy
        assert policy is not None and policy.max_retries >= 1, asset.key


@pytest.mark.slow
def test_crash_mid_stage_is_retried_and_a_failed_partition_reruns_exactly(tmp_path, monkeypatch):
    from pipelines import ingest_redact

    src = tmp_path / "in" / DAY
    src.mkdir(parents=True)
    valid = partition_records(DAY, 8)
    (src / "conversations.jsonl").write_text(
        "\n".join(json.dumps(r) for r in valid) + "\n{not json\n", encoding="utf-8"
    )
    state = tmp_path / "state" / DAY
    defs = build_definitions(
        "local",
        paths={
            "input_dir": str(tmp_path / "in"),
            "out_dir": str(tmp_path / "out"),
            "state_dir": str(tmp_path / "state"),
        },
    )
    job = defs.resolve_job_def("daily_pipeline")
    key = dg.AssetKey("redacted_conversations")
    policy = stages.redacted_conversations.op.retry_policy
    assert policy is not None, "redacted_conversations has no Dagster RetryPolicy"
    max_retries = policy.max_retries

    # The third record of an attempt kills the worker, for the first `crashes` attempts.
    plan = {"crashes": 0, "crashed": 0, "seen": 0, "rows_on_disk_at_crash": []}
    parse = ingest_redact.parse_record

    def crashing_parse(*args, **kwargs):
        plan["seen"] += 1
        if plan["crashed"] < plan["crashes"] and plan["seen"] == 3:
            plan["crashed"] += 1
            plan["seen"] = 0  # the next attempt starts over
            out = state / stages.REDACTED
            plan["rows_on_disk_at_crash"].append(len(pl.read_parquet(out)) if out.exists() else None)
            raise WorkerCrashError("worker lost mid-bundle")
        return parse(*args, **kwargs)

    monkeypatch.setattr(ingest_redact, "parse_record", crashing_parse)

    def run(crashes: int) -> dg.ExecuteInProcessResult:
        plan.update(crashes=crashes, crashed=0, seen=0)
        return job.execute_in_process(
            partition_key=DAY,
            instance=dg.DagsterInstance.ephemeral(),
            asset_selection=[key],
            raise_on_error=False,
        )

    def check_exact() -> None:
        redacted = pl.read_parquet(state / stages.REDACTED)
        assert sorted(redacted["conversation_id"]) == sorted(r["conversation_id"] for r in valid)
        assert redacted["conversation_id"].is_unique().all()
        assert len(pl.read_parquet(state / stages.INGEST_DEAD)) == 1

    def retries(result) -> int:
        return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)

    # 1. One crash mid-stage: Dagster retries the step and the output is exact.
    once = run(crashes=1)
    assert once.success and plan["crashed"] == 1 and retries(once) == 1
    check_exact()

    # 2. The worker keeps crashing: retries run out, the partition fails, and every crash
    #    found the previous output whole (outputs are replaced only when complete).
    always = run(crashes=max_retries + 1)
    assert not always.success and plan["crashed"] == max_retries + 1 and retries(always) == max_retries
    assert plan["rows_on_disk_at_crash"][1:] == [len(valid)] * (max_retries + 1)
    check_exact()

    # 3. Rerunning the failed partition completes with no duplicate and no lost record.
    rerun = run(crashes=0)
    assert rerun.success and plan["crashed"] == 0
    [event] = rerun.get_asset_materialization_events()
    assert event.materialization.metadata["records_valid"].value == len(valid)
    check_exact()
