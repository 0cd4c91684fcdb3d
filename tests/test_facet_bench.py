"""Joining chunks of one facet benchmark run (``--offset``/``--limit`` then ``--merge``)."""

from __future__ import annotations

import json

import pytest

from benchmarks.facets import _write_items, merge_chunks

CONFIG = {"seed": 0, "moderation": 4, "xstest": 2, "ailuminate": 0, "language": 0, "backend": "cpu", "model": "m"}
CONFIG = {**CONFIG, "threads": 1, "attempts": 2}


def _items(ids):
    return [{"id": i, "dataset": "moderation", "unsafe": n % 2 == 0} for n, i in enumerate(ids)]


def _preds(n, concerning=2):
    return [
        {
            "concerning": concerning,
            "concern_score": float(concerning),
            "concern_probs": {concerning: 1.0},
            "categories": ["none"],
            "language": "en",
        }
        for _ in range(n)
    ]


def _stats(n, elapsed, rss, first_try=1.0, dead=0.0):
    return {
        "requests": n,
        "generated_tokens": 10 * n,
        "elapsed_s": elapsed,
        "load_s": 1.0,
        "peak_rss_mb": rss,
        "valid_first_try": first_try,
        "valid_after_retries": 1.0 - dead,
        "dead_letter_rate": dead,
        "concern_score_sources": {"token_probs": n},
        "dead_letter_reasons": {},
    }


@pytest.mark.parametrize(
    ("sizes", "elapsed", "rss", "first_try"),
    [((2, 2), (3.0, 5.0), (100.0, 120.0), (1.0, 0.5)), ((1, 3), (1.5, 4.5), (90.0, 80.0), (0.0, 1.0))],
)
def test_merge_sums_seconds_keeps_peak_rss_and_weights_rates(tmp_path, sizes, elapsed, rss, first_try):
    ids = ["a", "b", "c", "d"]
    paths, offset = [], 0
    for n, sec, mb, ft in zip(sizes, elapsed, rss, first_try, strict=True):
        path = tmp_path / f"chunk-{offset}.json"
        chunk_ids = ids[offset : offset + n]
        _write_items(path, "embedded:m", _items(chunk_ids), _preds(n), _stats(n, sec, mb, ft), {**CONFIG, "offset": offset})
        paths.append(path)
        offset += n
    model, items, predictions, stats, config = merge_chunks(paths, ids)
    assert model == "embedded:m" and [it["id"] for it in items] == ids and len(predictions) == 4
    assert stats["elapsed_s"] == pytest.approx(sum(elapsed))
    assert stats["requests"] == 4 and stats["generated_tokens"] == 40
    assert stats["peak_rss_mb"] == max(rss)
    assert stats["valid_first_try"] == pytest.approx(sum(n * f for n, f in zip(sizes, first_try, strict=True)) / 4)
    assert stats["concern_score_sources"] == {"token_probs": 4}
    assert [c["offset"] for c in stats["chunks"]] == [0, sizes[0]]
    assert config["threads"] == 1


def test_merge_rejects_gaps_other_models_and_chunks_without_stats(tmp_path):
    first, second, stale = tmp_path / "0.json", tmp_path / "2.json", tmp_path / "old.json"
    _write_items(first, "embedded:m", _items(["a", "b"]), _preds(2), _stats(2, 1.0, 1.0), {**CONFIG, "offset": 0})
    _write_items(second, "embedded:m", _items(["c", "d"]), _preds(2), _stats(2, 1.0, 1.0), {**CONFIG, "offset": 2})
    with pytest.raises(SystemExit, match="not the sample"):
        merge_chunks([first, second], ["a", "b", "c", "d", "e"])
    with pytest.raises(SystemExit, match="not the sample"):
        merge_chunks([second, first], ["a", "b", "c", "d"])
    other = tmp_path / "other.json"
    _write_items(other, "embedded:m", _items(["c", "d"]), _preds(2), _stats(2, 1.0, 1.0), {**CONFIG, "threads": 2})
    with pytest.raises(SystemExit, match="other run arguments"):
        merge_chunks([first, other], ["a", "b", "c", "d"])
    stale.write_text(json.dumps({"model": "embedded:m", "items": json.loads(second.read_text())["items"]}))
    with pytest.raises(SystemExit, match="no run stats"):
        merge_chunks([first, stale], ["a", "b", "c", "d"])
