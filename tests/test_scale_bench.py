"""Scale benchmark: capacity arithmetic from measured rows."""

from __future__ import annotations

import math

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


def test_redaction_capacity_uses_the_best_rate_at_the_largest_size_and_names_its_commit():
    runs = [
        _beam(1000, "in_process", 10.0, "new"),  # 100 rec/CPU-s, but not the largest n
        _beam(100_000, "in_process", 2000.0, "old"),  # 50 rec/CPU-s
        _beam(100_000, "multi_processing", 2500.0, "new"),  # 40 rec/CPU-s
    ]
    out = scale.capacity(runs, None)["redaction"]
    assert out["records_per_cpu_s"] == 50.0
    assert out["from"] == "in_process at n=100000 (commit old)"
    core_s = scale.CONVERSATIONS_PER_DAY / 50.0
    assert out["cores"] == math.ceil(core_s / (scale.BATCH_WINDOW_H * 3600) * scale.HEADROOM)


def test_capacity_from_a_row_without_commit():
    out = scale.capacity([_beam(1000, "in_process", 20.0, None)], None)["redaction"]
    assert out["from"] == "in_process at n=1000"
