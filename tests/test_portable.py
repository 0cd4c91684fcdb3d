"""A Beam stage through Beam's portable job service (the runner is an option, not a fixture)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import polars as pl
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def job_service():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("portable job service did not start")
    yield f"localhost:{port}"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_ingest_redact_on_the_portable_runner(job_service, tmp_path):
    from pipelines import ingest_redact

    day = "2026-11-04"
    src = tmp_path / day
    src.mkdir()
    good = {
        "conversation_id": "c1",
        "account_id": "acct_1",
        "timestamp": f"{day}T09:00:00Z",
        "messages": [{"role": "user", "content": "Email me at alice@example.com about the invoice"}],
    }
    (src / "a.jsonl").write_text(json.dumps(good) + "\n{broken\n", encoding="utf-8")
    out, dead = tmp_path / "redacted.parquet", tmp_path / "dead.parquet"
    ingest_redact.run(
        [
            f"--input={src}", f"--day={day}", f"--output={out}", f"--dead_letter={dead}",
            "--runner=PortableRunner", f"--job_endpoint={job_service}", "--environment_type=LOOPBACK",
        ],
        pseudonym_key=b"p" * 32,
    )
    redacted, letters = pl.read_parquet(out), pl.read_parquet(dead)
    content = redacted["messages"][0][0]["content"]
    assert "alice@example.com" not in content and "<EMAIL_ADDRESS>" in content
    assert redacted["account"][0].startswith("p_")
    assert letters["reason"][0].startswith("invalid JSON")
