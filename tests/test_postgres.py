"""A real PostgreSQL server as Dagster's storage, with the production ``infra/dagster/dagster.yaml``.

The server runs from Debian's ``postgresql`` binaries (``scripts/ensure_postgres.sh``
installs them) in a temp dir on a free loopback port; the test materializes the real
``redacted_conversations`` asset for one partition and reads the run, its events and
the partition status back from Postgres.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import InstigatorStatus

from tests.conftest import REPO, partition_records

DAY = "2026-11-04"
MISSING_DAY = "2026-11-05"
PG_USER, PG_DB, PG_PASSWORD = "dagster", "dagster", "lookout-test-secret"


def postgres_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, if a PostgreSQL server is installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all(os.access(Path(candidate, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres", "psql")):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1; as root it runs as the ``postgres`` user."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        # Under /tmp (not pytest's 0700 root folder), so the server user can reach it.
        self.root = Path(tempfile.mkdtemp(prefix="lookout-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            self.user = "postgres" if _has_user("postgres") else "nobody"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(PG_PASSWORD + "\n", encoding="utf-8")
        if self.user:
            shutil.chown(pwfile, self.user)
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        self.psql("CREATE DATABASE " + PG_DB, db="postgres")

    def psql(self, sql: str, db: str = PG_DB) -> list[list[str]]:
        """Rows of a query, through TCP with the password (as Dagster connects)."""
        out = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-F",
                "\t",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": PG_PASSWORD},
        )
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def stop(self) -> None:
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"),
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def postgres():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (run scripts/ensure_postgres.sh as root)")
    pytest.importorskip("dagster_postgres", reason="the production extra (dagster-postgres) is not installed")
    server = PostgresServer(bindir)
    started = time.perf_counter()
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        server.stop()
        pytest.fail(f"postgres did not start: {exc.stderr!r}")
    server.startup_seconds = time.perf_counter() - started
    yield server
    server.stop()


@pytest.fixture
def pg_instance(postgres, tmp_path, monkeypatch):
    """A DagsterInstance from the production dagster.yaml, pointed at the test server by env vars."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    for name, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": PG_DB,
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": PG_PASSWORD,
    }.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_instance_storage_is_postgres(postgres, pg_instance):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    tables = {row[0] for row in postgres.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    # runs, events, asset partitions and schedule ticks all live in this database
    assert {"runs", "event_logs", "asset_keys", "jobs", "job_ticks", "instigators"} <= tables


@pytest.mark.slow
def test_partition_run_is_stored_in_postgres(postgres, pg_instance, tmp_path):
    from assets.definitions import build_definitions

    src = tmp_path / "in" / DAY
    src.mkdir(parents=True)
    valid = partition_records(DAY, 6)
    (src / "conversations.jsonl").write_text(
        "\n".join(json.dumps(r) for r in valid) + "\n{not json\n", encoding="utf-8"
    )
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

    started = time.perf_counter()
    result = job.execute_in_process(partition_key=DAY, instance=pg_instance, asset_selection=[key])
    seconds = time.perf_counter() - started
    assert result.success, seconds
    missing = job.execute_in_process(
        partition_key=MISSING_DAY, instance=pg_instance, asset_selection=[key], raise_on_error=False
    )
    assert not missing.success

    # Read back through a second instance (a fresh connection pool), as the webserver would.
    with dg.DagsterInstance.get() as reader:
        record = reader.get_run_record_by_id(result.run_id)
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert record.dagster_run.tags["dagster/partition"] == DAY
        assert reader.get_run_by_id(missing.run_id).status == dg.DagsterRunStatus.FAILURE
        assert reader.get_materialized_partitions(key) == {DAY}
        event = reader.get_latest_materialization_event(key)
        assert event.run_id == result.run_id and event.dagster_event.partition == DAY
        metadata = event.asset_materialization.metadata
        assert metadata["records_valid"].value == len(valid)
        assert metadata["records_dead_lettered"].value == 1
        status = reader.get_status_by_partition(key, [DAY, MISSING_DAY], job.partitions_def)
        assert status == {
            DAY: dg.AssetPartitionStatus.MATERIALIZED,
            MISSING_DAY: dg.AssetPartitionStatus.FAILED,
        }

    # And straight from the tables, with psql.
    [[run_status]] = postgres.psql(f"SELECT status FROM runs WHERE run_id = '{result.run_id}'")
    assert run_status == "SUCCESS"
    rows = postgres.psql(
        "SELECT run_id, partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
        "AND asset_key = '[\"redacted_conversations\"]'"
    )
    assert rows == [[result.run_id, DAY]]
    failure = postgres.psql(
        f"SELECT event FROM event_logs WHERE run_id = '{missing.run_id}' AND dagster_event_type = 'STEP_FAILURE'"
    )
    assert len(failure) == 1
    assert (
        f"no input for partition {MISSING_DAY}" in failure[0][0]
        and str(tmp_path / "in" / MISSING_DAY) in failure[0][0]
    )


@pytest.mark.slow
def test_schedule_and_backfill_commands_write_to_postgres(postgres, pg_instance):
    """The documented CLI: the daily schedule's state, and a backfill's queued runs, land in Postgres."""
    dagster = [str(Path(sys.executable).parent / "dagster")]
    location = ["-m", "assets.definitions"]
    subprocess.run(
        [*dagster, "schedule", "start", "daily_pipeline_schedule", *location],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    [state] = pg_instance.all_instigator_state()
    assert state.name == "daily_pipeline_schedule" and state.status == InstigatorStatus.RUNNING
    assert postgres.psql("SELECT job_type, status FROM jobs") == [["SCHEDULE", "RUNNING"]]

    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    subprocess.run(
        [
            *dagster,
            "job",
            "backfill",
            *location,
            "-j",
            "daily_pipeline",
            "--from",
            days[0],
            "--to",
            days[-1],
            "--noprompt",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    [backfill] = pg_instance.get_backfills()
    assert list(backfill.partition_names) == days
    runs = pg_instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    # Queued for the daemon (QueuedRunCoordinator); nothing ran in this process.
    assert sorted(r.tags["dagster/partition"] for r in runs) == days
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}
    rows = postgres.psql(
        f"SELECT count(*) FROM runs WHERE status = 'QUEUED' AND run_body LIKE '%{backfill.backfill_id}%'"
    )
    assert rows == [[str(len(days))]]
