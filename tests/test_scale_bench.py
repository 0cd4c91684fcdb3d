"""Scale benchmark: capacity arithmetic from measured rows."""

from __future__ import annotations

import math

import pytest

from benchmarks import scale


def _beam(n: int, mode: str, cpu_s: float, commit: str | None) -> dict:
    row = {
        "n": n,
        "mode": mode,
        "stage": scale.BEAM_STAGE,
        "status": "ok",
        "records": n,
        "cpu_s": cpu_s,
        "seconds": cpu_s,
        "peak_rss_mb": 700.0,
        "self_peak_rss_mb": 700.0,
        "workers_peak_rss_mb": 650.0,
    }
    return row if commit is None else {**row, "commit": commit}


def test_redaction_capacity_uses_the_multi_processing_row_at_the_largest_size_and_names_its_commit():
    runs = [
        _beam(1000, "multi_processing", 10.0, "new"),  # 100 rec/CPU-s, but not the largest n
        _beam(100_000, "in_process", 2000.0, "old"),  # 50 rec/CPU-s, not the deployed shape
        _beam(100_000, "multi_processing", 2500.0, "new"),  # 40 rec/CPU-s
        _beam(100_000, "multi_processing@old", 1000.0, "old"),  # a baseline ref: never sized from
    ]
    out = scale.capacity(runs, None)["redaction"]
    assert out["records_per_cpu_s"] == 40.0
    assert out["from"] == "multi_processing at n=100000 (commit new)"
    core_s = scale.CONVERSATIONS_PER_DAY / 40.0
    assert out["cores"] == math.ceil(core_s / (scale.BATCH_WINDOW_H * 3600) * scale.HEADROOM)


def test_capacity_falls_back_to_the_in_process_row():
    out = scale.capacity([_beam(10_000, "in_process", 200.0, "c1")], None)["redaction"]
    assert out["from"] == "in_process at n=10000 (commit c1)"


@pytest.mark.parametrize(
    ("mode", "expected"), [("multi_processing@dd4fe3c", "multi_processing"), ("in_process", "in_process")]
)
def test_base_mode(mode, expected):
    assert scale.base_mode(mode) == expected
    assert scale.base_mode(scale.ref_mode(expected, "abc1234")) == expected


@pytest.mark.parametrize(
    ("ref_cpu", "current", "expected"),
    [
        (150.0, {"status": "ok", "cpu_s": 100.0}, 1.5),
        (150.0, {"status": "timeout"}, None),
        (150.0, {"status": "ok", "cpu_s": 0.0}, None),
    ],
)
def test_compare_to_current(ref_cpu, current, expected):
    row = {"status": "ok", "cpu_s": ref_cpu}
    scale.compare_to_current(row, current)
    assert row.get("cpu_s_vs_current") == expected


def test_a_baseline_ref_runs_its_own_code():
    """The ref's checkout is what the child imports: a temporary worktree of HEAD holds this file."""
    with scale.ref_checkout("HEAD") as checkout:
        assert (checkout / "benchmarks" / "scale.py").exists()
        assert checkout != scale.REPO
        kept = checkout
    assert not kept.exists()


def test_capacity_from_a_row_without_commit():
    out = scale.capacity([_beam(1000, "in_process", 20.0, None)], None)["redaction"]
    assert out["from"] == "in_process at n=1000"
