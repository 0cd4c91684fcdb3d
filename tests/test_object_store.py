"""Beam stages against an object store: the Dataflow layout, on a real S3 server on loopback.

Dataflow workers cannot mount the Dagster host's disk. With ``exchange_dir`` set the
Beam jobs read the day's logs, the pseudonym key and their inputs from the object
store and write their outputs there; the host copies them in and out with Beam's
filesystems. moto's S3 server stands in for GCS or S3: the same Beam filesystem
code paths (match, create, open, rename, delete) run over HTTP.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import dagster as dg
import polars as pl
import pytest
from moto.server import ThreadedMotoServer

from assets import stages
from assets.resources import (
    BeamRunnerResource,
    LookoutPaths,
    RedactionResource,
    TaxonomyResource,
    VLLMServerResource,
)
from pipelines import storage
from privacy.pseudonym import Pseudonymizer
from tests.conftest import partition_records

DAY = "2026-11-04"
BUCKET = "lookout-test"
FACETS = {
    "summary": "The user asked for help with a task.",
    "request": "help with a task",
    "task": "advice",
    "topic": "general",
    "concerning": 1,
    "categories": ["none"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on loopback with one bucket; credentials come from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "lookout-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "lookout-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client, [f"--s3_endpoint_url={endpoint}", "--s3_region_name=us-east-1"]
    server.stop()


def _keys(client, prefix: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


class _Handler(BaseHTTPRequestHandler):
    """vLLM's chat-completions endpoint answering every request with the same facets."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        payload = json.dumps({"choices": [{"message": {"content": json.dumps(FACETS)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def vllm_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _resources(tmp_path, s3_args: list[str], vllm: str) -> dict:
    return {
        "paths": LookoutPaths(
            input_dir=f"s3://{BUCKET}/logs",
            state_dir=str(tmp_path / "state"),
            out_dir=str(tmp_path / "out"),
            exchange_dir=f"s3://{BUCKET}/exchange",
        ),
        "beam_runner": BeamRunnerResource(extra_args=s3_args),
        "redaction": RedactionResource(pseudonym_key_uri=f"s3://{BUCKET}/secrets/pseudonym.key"),
        "llm": VLLMServerResource(base_url=vllm, model="lookout-test", timeout_s=10.0, max_concurrency=4),
        "taxonomy": TaxonomyResource(),
    }


@pytest.mark.slow
def test_beam_stages_read_and_write_through_the_object_store(tmp_path, s3, vllm_url):
    client, s3_args = s3
    records = partition_records(DAY, 6)
    body = "\n".join(json.dumps(r) for r in records) + "\n{not json\n"
    client.put_object(Bucket=BUCKET, Key=f"logs/{DAY}/conversations.jsonl", Body=body.encode())
    client.put_object(Bucket=BUCKET, Key="secrets/pseudonym.key", Body=b"k" * 32)
    resources = _resources(tmp_path, s3_args, vllm_url)
    # An earlier try's leftovers in the exchange folder are cleared, never read.
    client.put_object(Bucket=BUCKET, Key=f"exchange/{DAY}/facets_cache.parquet", Body=b"stale")

    result = dg.materialize(
        [stages.redacted_conversations, stages.conversation_facets], partition_key=DAY, resources=resources
    )

    assert result.success
    state = tmp_path / "state" / DAY
    redacted = pl.read_parquet(state / stages.REDACTED)
    assert sorted(redacted["conversation_id"]) == sorted(r["conversation_id"] for r in records)
    pseudonymize = Pseudonymizer(b"k" * 32)  # the key stored in the bucket
    assert set(redacted["account"]) == {pseudonymize(r["account_id"]) for r in records}
    dead = pl.read_parquet(state / stages.INGEST_DEAD)
    assert len(dead) == 1 and dead["reason"][0].startswith("invalid JSON")
    facets = pl.read_parquet(state / stages.FACETS)
    assert sorted(facets["conversation_id"]) == sorted(redacted["conversation_id"])
    assert set(facets["summary"]) == {FACETS["summary"]}
    assert pl.read_parquet(state / stages.FACETS_DEAD).is_empty()
    # The exchange folder is emptied after each stage; the logs are untouched.
    assert _keys(client, "exchange/") == []
    assert _keys(client, "logs/") == [f"logs/{DAY}/conversations.jsonl"]

    # A rerun sends the earlier facets up as the cache: no conversation goes to the model again.
    again = dg.materialize([stages.conversation_facets], partition_key=DAY, resources=resources)
    [event] = again.get_asset_materialization_events()
    assert event.materialization.metadata["facet_cache_hits"].value == len(records)
    assert _keys(client, "exchange/") == []


@pytest.mark.slow
def test_a_day_without_logs_in_the_object_store_fails_naming_the_prefix(tmp_path, s3, vllm_url):
    _, s3_args = s3
    result = dg.materialize(
        [stages.redacted_conversations],
        partition_key="2026-11-05",
        resources=_resources(tmp_path, s3_args, vllm_url),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert f"no log file under s3://{BUCKET}/logs/2026-11-05" in failure.event_specific_data.error.message


def test_storage_round_trip_and_folder_delete(tmp_path, s3):
    client, s3_args = s3
    storage.configure(s3_args)
    local = tmp_path / "a.bin"
    local.write_bytes(bytes(range(256)) * 4096)
    uri = storage.join(f"s3://{BUCKET}/x", "day", "a.bin")
    storage.upload(local, uri)
    storage.upload(local, storage.join(f"s3://{BUCKET}/x", "day", "sub", "b.bin"))
    copy = tmp_path / "copy" / "a.bin"
    storage.download(uri, copy)
    assert copy.read_bytes() == local.read_bytes()
    assert storage.matching_files(f"s3://{BUCKET}/x/day", ["*.bin"]) == [uri]
    storage.delete_folder(f"s3://{BUCKET}/x/day")
    assert _keys(client, "x/") == []
    with pytest.raises(FileNotFoundError, match="a.bin does not exist"):
        storage.download(uri, copy)
    assert copy.read_bytes() == local.read_bytes()  # a failed download leaves the old file whole


@pytest.mark.parametrize("field", ["state_dir", "out_dir"])
def test_state_and_reports_must_be_on_the_dagster_host(tmp_path, field):
    values = {
        "input_dir": "s3://b/logs",
        "state_dir": str(tmp_path),
        "out_dir": str(tmp_path),
        field: "gs://b/x",
    }
    paths = LookoutPaths(**values)
    with pytest.raises(ValueError, match=f"{field} must be a folder on the Dagster host.*exchange_dir"):
        paths.state_for(DAY) if field == "state_dir" else paths.report_for(DAY)


@pytest.mark.parametrize(
    ("exchange_dir", "expected"), [("", None), ("s3://b/lookout-exchange", f"s3://b/lookout-exchange/{DAY}")]
)
def test_exchange_folder_per_day(tmp_path, exchange_dir, expected):
    paths = LookoutPaths(
        input_dir=str(tmp_path), state_dir=str(tmp_path), out_dir=str(tmp_path), exchange_dir=exchange_dir
    )
    assert paths.exchange_for(DAY) == expected
