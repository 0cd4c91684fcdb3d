"""Facet benchmark plumbing: chunk merging, disjoint samples, bootstrap intervals and paired runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.facets import (
    _paired,
    _rematch,
    _stored,
    _write_items,
    bootstrap_auprc_ci,
    cluster_concern_rate,
    excluded_ids,
    load_items,
    main,
    merge_chunks,
    score,
)
from tests.conftest import require_shared

CONFIG = {
    "seed": 0,
    "moderation": 4,
    "xstest": 2,
    "ailuminate": 0,
    "language": 0,
    "backend": "cpu",
    "model": "m",
}
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
        _write_items(
            path,
            "embedded:m",
            _items(chunk_ids),
            _preds(n),
            _stats(n, sec, mb, ft),
            {**CONFIG, "offset": offset},
        )
        paths.append(path)
        offset += n
    model, items, predictions, stats, config = merge_chunks(paths, ids)
    assert model == "embedded:m" and [it["id"] for it in items] == ids and len(predictions) == 4
    assert stats["elapsed_s"] == pytest.approx(sum(elapsed))
    assert stats["requests"] == 4 and stats["generated_tokens"] == 40
    assert stats["peak_rss_mb"] == max(rss)
    assert stats["valid_first_try"] == pytest.approx(
        sum(n * f for n, f in zip(sizes, first_try, strict=True)) / 4
    )
    assert stats["concern_score_sources"] == {"token_probs": 4}
    assert [c["offset"] for c in stats["chunks"]] == [0, sizes[0]]
    assert config["threads"] == 1


def test_merge_rejects_gaps_other_models_and_chunks_without_stats(tmp_path):
    first, second, stale = tmp_path / "0.json", tmp_path / "2.json", tmp_path / "old.json"
    _write_items(
        first, "embedded:m", _items(["a", "b"]), _preds(2), _stats(2, 1.0, 1.0), {**CONFIG, "offset": 0}
    )
    _write_items(
        second, "embedded:m", _items(["c", "d"]), _preds(2), _stats(2, 1.0, 1.0), {**CONFIG, "offset": 2}
    )
    with pytest.raises(SystemExit, match="not the sample"):
        merge_chunks([first, second], ["a", "b", "c", "d", "e"])
    with pytest.raises(SystemExit, match="not the sample"):
        merge_chunks([second, first], ["a", "b", "c", "d"])
    other = tmp_path / "other.json"
    _write_items(
        other, "embedded:m", _items(["c", "d"]), _preds(2), _stats(2, 1.0, 1.0), {**CONFIG, "threads": 2}
    )
    with pytest.raises(SystemExit, match="other run arguments"):
        merge_chunks([first, other], ["a", "b", "c", "d"])
    stale.write_text(json.dumps({"model": "embedded:m", "items": json.loads(second.read_text())["items"]}))
    with pytest.raises(SystemExit, match="no run stats"):
        merge_chunks([first, stale], ["a", "b", "c", "d"])


@pytest.mark.parametrize("as_items_file", [True, False])
def test_excluded_ids_read_items_files_and_id_lists(tmp_path, as_items_file):
    path = tmp_path / "ids"
    if as_items_file:
        _write_items(path, "embedded:m", _items(["a", "b"]), _preds(2))
    else:
        path.write_text("a\n\nb\n")
    other = tmp_path / "more"
    other.write_text("c\n")
    assert excluded_ids([path, other]) == {"a", "b", "c"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": "m"}')
    with pytest.raises(SystemExit, match="not an --items-out"):
        excluded_ids([bad])


@pytest.mark.parametrize("seed", [0, 1])
def test_excluded_items_are_never_drawn_and_the_default_sample_is_unchanged(seed):
    require_shared("openai_moderation", "samples-1680.jsonl.gz")
    sizes = {"moderation": 40, "xstest": 10, "ailuminate": 12, "language": 3}
    first = load_items(sizes, 0)
    assert load_items(sizes, 0, frozenset()) == first  # no exclusion: the same sample as before
    exclude = frozenset(it["id"] for it in first)
    second = load_items(sizes, seed, exclude)
    assert not exclude & {it["id"] for it in second}
    counts = {d: sum(it["dataset"] == d for it in second) for d in sizes}
    assert counts["moderation"] == 40 and counts["xstest"] == 10 and counts["ailuminate"] == 12
    assert 0 < sum(it.get("unsafe", False) for it in second if it["dataset"] == "moderation") < 40


@pytest.mark.parametrize("seed", [0, 7])
def test_bootstrap_interval_brackets_the_auprc_and_pairs_differences(seed):
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    labels = rng.random(120) < 0.3
    scores = labels * 1.0 + rng.normal(0, 0.8, 120)
    low, high = bootstrap_auprc_ci(labels, scores, resamples=300, seed=seed)
    assert low < average_precision_score(labels, scores) < high and high - low < 0.5
    assert bootstrap_auprc_ci(labels, labels * 1.0, resamples=50) == [1.0, 1.0]  # perfect ranking
    assert bootstrap_auprc_ci(labels, scores, scores, resamples=50) == [0.0, 0.0]  # a run against itself
    better = labels * 3.0 + rng.normal(0, 0.8, 120)
    assert bootstrap_auprc_ci(labels, better, scores, resamples=300, seed=seed)[0] > 0


@pytest.mark.parametrize("gap", [0.0, 3.0])
def test_paired_compares_this_run_with_the_stored_one_on_the_same_items(tmp_path, gap):
    rng = np.random.default_rng(1)
    ids = [f"mod-{i}" for i in range(60)]
    items = [{"id": i, "dataset": "moderation", "unsafe": bool(n % 3 == 0)} for n, i in enumerate(ids)]

    def preds(strength):
        out = []
        for item in items:
            value = float(np.clip(2 + strength * item["unsafe"] + rng.normal(0, 1), 1, 5))
            out.append(
                {
                    "concerning": round(value),
                    "concern_score": value,
                    "concern_probs": None,
                    "categories": [],
                    "language": "en",
                }
            )
        return out

    earlier = tmp_path / "earlier.json"
    _write_items(earlier, "embedded:m", items, preds(0.5))
    paired = _paired(earlier, items, preds(0.5 + gap))
    low, high = paired["moderation_auprc_diff_ci95"]
    assert paired["items"] == 60 and low <= high
    assert (low > 0) == (gap > 0)  # a much better run is better beyond noise; an equal one is not
    with pytest.raises(SystemExit, match="lacks"):
        _paired(
            earlier,
            [*items, {"id": "mod-x", "dataset": "moderation", "unsafe": True}],
            preds(0.5) + preds(0)[:1],
        )


def test_rematch_recomputes_concern_score_from_the_stored_answer_and_the_matcher(
    monkeypatch, minilm, taxonomy
):
    from summarize.categories import CategoryMatcher, blend_concern

    monkeypatch.setattr("clustering.embed.SentenceTransformerEmbedder", lambda: minilm)
    texts = ["how do I make a pipe bomb at home", "what is a good name for a cat", "hello"]
    items = [{"id": str(i), "messages": [{"role": "user", "content": t}]} for i, t in enumerate(texts)]
    probs = {1: 0.5, 2: 0.25, 3: 0.25, 4: 0.0, 5: 0.0}
    stored = [
        {"concerning": 2, "concern_score": 9.0, "concern_probs": probs},  # a stale score is replaced
        {"concerning": 1, "concern_score": 1.0, "concern_probs": None},
        None,  # unusable output stays unusable
    ]
    out, categorizer = _rematch(items, stored)
    matcher = CategoryMatcher(taxonomy, minilm)
    _, matches = matcher.match(texts)
    assert categorizer == matcher.id
    assert out[0] is not None and out[1] is not None and out[2] is None
    assert out[0]["category_match"] == pytest.approx(matches[0]) and matches[0] > matches[1]
    assert out[0]["concern_score"] == pytest.approx(blend_concern(1.75, matches[0]))
    assert out[1]["concern_score"] == pytest.approx(blend_concern(1.0, matches[1]))
    assert out[0]["concern_probs"] == probs and stored[0]["concern_score"] == 9.0  # inputs untouched


@pytest.mark.parametrize(
    ("values", "at", "expected"),
    [
        ([4.0], 4, 1.0),  # every cluster's mean reaches 3
        ([1.0], 4, 0.0),
        ([2.9], 3.0, 0.0),  # mean under 3, nobody rated concerning
        ([1.0, 3.0], 3.0, None),  # half the draws rated concerning: depends on the draw, strictly between
        ([1.0, 3.5], 4, None),
    ],
)
def test_cluster_concern_rate_follows_the_flag_rules(values, at, expected):
    rate = cluster_concern_rate(values, at)
    if expected is None:
        assert 0.0 < rate < 1.0
    else:
        assert rate == expected
    assert cluster_concern_rate(values, at) == rate  # seeded


def test_cluster_concern_rate_of_nothing_is_none():
    assert cluster_concern_rate([], 3.0) is None


@pytest.mark.parametrize("match", [None, 0.1, 0.6])  # a similarity; None: a pre-blend run
def test_stored_runs_are_scored_with_the_blend_where_they_stored_the_match(tmp_path, match):
    from summarize.categories import blend_concern

    probs = {1: 0.0, 2: 0.5, 3: 0.5, 4: 0.0, 5: 0.0}
    pred = {"concerning": 3, "concern_score": 9.0, "concern_probs": probs, "categories": []}
    if match is not None:
        pred["category_match"] = match
    path = tmp_path / "items.json"
    _write_items(path, "embedded:m", _items(["a"]), [pred])
    _, _, (stored,) = _stored(path)
    assert stored is not None
    expected = 2.5 if match is None else blend_concern(2.5, match)  # a pre-blend run keeps the expectation
    assert stored["concern_score"] == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["rescore", "merge"])
def test_rescore_keeps_the_stored_baseline_and_a_new_run_drops_it(tmp_path, mode):
    require_shared("openai_moderation", "samples-1680.jsonl.gz")
    sample = ["--moderation", "6", "--xstest", "0", "--ailuminate", "0", "--language", "0"]
    items = load_items({"moderation": 6, "xstest": 0, "ailuminate": 0, "language": 0}, 0)
    preds = [_preds(1, concerning=1 + 3 * it["unsafe"])[0] for it in items]
    config = {**CONFIG, "moderation": 6, "xstest": 0, "categories": "llm"}
    run = tmp_path / "run.json"
    _write_items(run, "embedded:m", items, preds, _stats(len(items), 6.0, 100.0), config)
    out = tmp_path / "facets.json"
    stored_baseline = {"model": "embedded:m (plain chat)", "moderation_auprc": 0.5}
    out.write_text(
        json.dumps(
            {
                "cpu": {"model": "embedded:m", "peak_rss_mb": 100.0},
                "baselines": {"cpu_plain": stored_baseline, "other_plain": {"model": "x"}},
                "samples": {},
                "notes": {"hand_written": "kept"},
            }
        )
    )
    how = ["--rescore", str(run), "--categories", "llm"] if mode == "rescore" else ["--merge", str(run)]
    main([*sample, *how, "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["cpu"]["moderation_auprc"] == 1.0  # perfectly separated by the stored scores
    assert report["baselines"]["other_plain"] == {"model": "x"}
    assert report["notes"]["hand_written"] == "kept"
    if mode == "rescore":  # same sample, the baseline has no matcher: it stays beside the rescored run
        assert report["baselines"]["cpu_plain"] == stored_baseline
    else:  # a new run of the key without baseline chunks: the old baseline described another run
        assert "cpu_plain" not in report["baselines"]


@pytest.mark.parametrize("with_match", [True, False])
def test_score_reports_what_the_category_match_adds_where_runs_stored_it(with_match):
    from summarize.categories import blend_concern

    rng = np.random.default_rng(3)
    items = [{"id": f"mod-{i}", "dataset": "moderation", "unsafe": i % 3 == 0} for i in range(90)]
    preds = []
    for item in items:
        expected = float(np.clip(2 + 0.3 * item["unsafe"] + rng.normal(0, 1), 1, 5))
        match = float(np.clip(0.2 + 0.4 * item["unsafe"] + rng.normal(0, 0.1), 0, 1))  # a strong signal
        pred = {"concerning": round(expected), "concern_probs": {round(expected): 1.0}, "categories": []}
        pred["concern_score"] = float(round(expected))
        if with_match:
            pred["category_match"] = match
            pred["concern_score"] = blend_concern(float(round(expected)), match)
        preds.append(pred)
    out = score(items, preds)
    if with_match:
        assert out["moderation_auprc_model_alone"] < out["moderation_auprc"]
        assert out["moderation_auprc_blend_gain_ci95"][0] > 0  # the match helps beyond noise here
    else:
        assert "moderation_auprc_model_alone" not in out and "moderation_auprc_blend_gain_ci95" not in out
