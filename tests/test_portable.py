"""A Beam stage through Beam's portable job service (the runner is an option, not a fixture).

``local_job_service_main`` speaks the same job API as the Flink and Spark job servers.
Workers run either in the submitting process (LOOPBACK) or in an external SDK worker
pool (``worker_pool_main``, EXTERNAL), the way a Flink or Spark cluster runs them
beside its task managers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from privacy.pseudonym import Pseudonymizer

DAY = "2026-11-04"
WORKER_KEY = "k" * 40  # only the external worker pool's environment holds it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(
    args: list[str], port: int, what: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start a Beam service process and wait until its port accepts connections."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with code {proc.returncode}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{what} did not start")


def stop(proc: subprocess.Popen) -> None:
    """Stop a service; SIGINT lets the worker pool stop the workers it started."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def job_service():
    port = free_port()
    proc = start_service(
        ["apache_beam.runners.portability.local_job_service_main", "--port", str(port)],
        port,
        "portable job service",
    )
    yield f"localhost:{port}"
    stop(proc)


@pytest.fixture(scope="module")
def worker_pool():
    """An external SDK worker pool; each worker it starts is a new ``python`` process."""
    port = free_port()
    env = {
        **os.environ,
        # The pool runs `python` from PATH: the project's interpreter must come first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOOKOUT_PSEUDONYM_KEY": WORKER_KEY,
    }
    proc = start_service(
        ["apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
        port,
        "SDK worker pool",
        env,
    )
    yield f"localhost:{port}"
    stop(proc)


def write_day(root: Path) -> Path:
    """A day folder with three valid conversations and one broken line."""
    src = root / DAY
    src.mkdir()
    lines = [
        json.dumps(
            {
                "conversation_id": f"c{i}",
                "account_id": f"acct_{i}",
                "timestamp": f"{DAY}T09:0{i}:00Z",
                "messages": [
                    {"role": "user", "content": f"Email me at alice{i}@example.com about invoice {i}"}
                ],
            }
        )
        for i in range(3)
    ]
    (src / "a.jsonl").write_text("\n".join([*lines, "{broken"]) + "\n", encoding="utf-8")
    return src


def check_outputs(out: Path, dead: Path, key: bytes) -> None:
    """Every valid record once, redacted and pseudonymized with ``key``; the broken one dead-lettered."""
    redacted, letters = pl.read_parquet(out).sort("conversation_id"), pl.read_parquet(dead)
    assert redacted["conversation_id"].to_list() == ["c0", "c1", "c2"]
    for i, messages in enumerate(redacted["messages"]):
        content = messages[0]["content"]
        assert f"alice{i}@example.com" not in content and "<EMAIL_ADDRESS>" in content
    pseudonymize = Pseudonymizer(key)
    assert redacted["account"].to_list() == [pseudonymize(f"acct_{i}") for i in range(3)]
    assert len(letters) == 1 and letters["reason"][0].startswith("invalid JSON")


@pytest.mark.slow
def test_ingest_redact_on_the_portable_runner(job_service, tmp_path):
    from pipelines import ingest_redact

    src = write_day(tmp_path)
    out, dead = tmp_path / "redacted.parquet", tmp_path / "dead.parquet"
    ingest_redact.run(
        [
            f"--input={src}",
            f"--day={DAY}",
            f"--output={out}",
            f"--dead_letter={dead}",
            "--runner=PortableRunner",
            f"--job_endpoint={job_service}",
            "--environment_type=LOOPBACK",
        ],
        pseudonym_key=b"p" * 32,
    )
    check_outputs(out, dead, b"p" * 32)


@pytest.mark.slow
def test_ingest_redact_on_an_external_worker_pool(job_service, worker_pool, tmp_path, monkeypatch):
    """The job runs on SDK workers started by the pool, which read the key from their own environment."""
    from pipelines import ingest_redact

    # Not here: a worker in this process would fail with PseudonymKeyError.
    monkeypatch.delenv("LOOKOUT_PSEUDONYM_KEY", raising=False)
    src = write_day(tmp_path)
    out, dead = tmp_path / "redacted.parquet", tmp_path / "dead.parquet"
    ingest_redact.run(
        [
            f"--input={src}",
            f"--day={DAY}",
            f"--output={out}",
            f"--dead_letter={dead}",
            "--runner=PortableRunner",
            f"--job_endpoint={job_service}",
            "--environment_type=EXTERNAL",
            f"--environment_config={worker_pool}",
        ]
    )
    check_outputs(out, dead, WORKER_KEY.encode("utf-8"))
