"""Flagging benchmark: label-derived concern on concern_score's scale."""

from __future__ import annotations

import json

import pytest

from benchmarks import flagging


def test_label_concern_is_the_integer():
    assert flagging.concern_scale("label") == {k: float(k) for k in range(1, 6)}


def test_facets_scale_reads_the_facet_benchmark_and_ranks_like_the_labels():
    scale = flagging.concern_scale("facets")
    assert sorted(scale) == [1, 2, 3, 4, 5]
    assert all(1.0 <= v <= 5.0 for v in scale.values())
    assert [scale[k] for k in range(1, 6)] == sorted(scale.values())  # a higher label never scores lower


def test_facets_scale_needs_every_integer(tmp_path, monkeypatch):
    result = tmp_path / "facets.json"
    result.write_text(json.dumps({"cpu": {"concern_by_integer": {"1": {"n": 3, "mean": 2.0}}}}))
    monkeypatch.setattr(flagging, "FACETS_RESULT", result)
    with pytest.raises(SystemExit, match="concern_by_integer"):
        flagging.concern_scale("facets")
