"""Flagging benchmark: label-derived concern on concern_score's scale."""

from __future__ import annotations

import json
from dataclasses import asdict

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


def test_sweep_covers_every_combination_on_top_of_the_rules():
    rules = flagging.FlagRules(min_conversations=5)
    sweep = [
        flagging.parse_sweep("min_share_concerning=0.5,0.7"),
        flagging.parse_sweep("min_mean_concern=3,3.2"),
    ]
    variants = flagging.sweep_variants(sweep, rules)
    assert [(v.min_share_concerning, v.min_mean_concern) for v in variants] == [
        (0.5, 3.0),
        (0.5, 3.2),
        (0.7, 3.0),
        (0.7, 3.2),
    ]
    assert all(v.min_conversations == 5 for v in variants)
    assert isinstance(variants[0].min_mean_concern, float)
    assert flagging.changed_rules(variants[3], flagging.FlagRules()) == {
        "min_share_concerning": 0.7,
        "min_mean_concern": 3.2,
        "min_conversations": 5,
    }
    assert flagging.sweep_variants([], rules) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_share", "expected FIELD=V1"),
        ("no_such_field=1", "no field"),
        ("request_similarity=0.8,0.9", "coordination signals"),
    ],
)
def test_sweep_rejects(text, message):
    import argparse

    with pytest.raises((SystemExit, argparse.ArgumentTypeError), match=message):
        flagging.sweep_variants([flagging.parse_sweep(text)], flagging.FlagRules())


def _run(seed: int, false_counts: list[int], flagged_day: int | None) -> dict:
    campaign = {"rate": 0.01, "start_day": 2, "flagged_day": flagged_day, "days_to_flag": None}
    if flagged_day is not None:
        campaign["days_to_flag"] = flagged_day - 2
    side = {"campaigns": [campaign], "false_flags_per_day": 0.0, "false_flags_per_campaign_free_day": 0.0}
    return {
        "config": {"seed": seed, "steady_hazard": "vcr", "flag_rules": asdict(flagging.FlagRules())},
        "facets": "label-derived",
        **side,
        "baseline": {"rule": "mean", **side},
        "per_day": [{"lookout_false_flag_codes": {}} for _ in false_counts],
        "sweep": [
            {
                "rules": {"min_share_concerning": 0.7},
                "campaigns": [campaign],
                "false_flags_per_day": sum(false_counts[1:]) / (len(false_counts) - 1),
                "false_flags_per_campaign_free_day": None,
            }
        ],
        "seconds": {"total": 1.0},
        "machine": {},
    }


def test_combine_pools_each_variant_over_seeds(capsys):
    result = flagging.combine([_run(1, [0, 1, 1], 3), _run(2, [0, 0, 0], None)])
    (variant,) = result["sweep"]
    assert variant["rules"] == {"min_share_concerning": 0.7}
    assert [c["seed"] for c in variant["campaigns"]] == [1, 2]
    assert variant["false_flags_per_day"] == 0.5  # mean of 1.0 and 0.0
    assert variant["false_flags_per_campaign_free_day"] is None
    flagging.print_table(result)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("sweep"))
    assert "min_share_concerning=0.7" in row and "1/2" in row and "false flags/day 0.5" in row
    assert result["sweep_pick"]["rules"] == {}  # the run's own rules: same detection, fewer false flags


def _side(delays: list[int | None], false_flags: float, rules: dict | None = None) -> dict:
    side = {"campaigns": [{"days_to_flag": d} for d in delays], "false_flags_per_day": false_flags}
    return side if rules is None else {"rules": rules, **side}


@pytest.mark.parametrize(
    ("variants", "picked"),
    [
        # Fewer false flags at the same detection: picked.
        (
            [_side([0, 1, None], 0.4, {}), _side([0, 1, None], 0.1, {"min_mean_concern": 3.2})],
            {"min_mean_concern": 3.2},
        ),
        # One campaign a day later (still within 2 days): not kept, however few false flags.
        ([_side([0, 1, None], 0.4, {}), _side([0, 2, None], 0.1, {"min_mean_concern": 3.2})], {}),
        # A missed campaign: not kept.
        ([_side([0, 1, None], 0.4, {}), _side([0, None, 0], 0.0, {"min_share_concerning": 0.7})], {}),
        # Within 0.01 a day: the smaller change wins.
        (
            [
                _side([0, 1, None], 0.105, {"min_mean_concern": 3.2}),
                _side([0, 1, None], 0.1, {"min_mean_concern": 3.4}),
            ],
            {"min_mean_concern": 3.2},
        ),
        ([_side([0, 2, None], 0.1, {"min_mean_concern": 3.2})], {}),  # none kept: the run's own rules
        ([], None),  # no sweep
    ],
)
def test_pick_variant(variants, picked):
    result = {
        "config": {"flag_rules": asdict(flagging.FlagRules())},
        **_side([0, 1, None], 0.4),
        "sweep": variants,
    }
    chosen = flagging.pick_variant(result)
    assert (None if chosen is None else chosen["rules"]) == picked


@pytest.mark.parametrize(
    "order", [[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0], [4, 0, 6, 2, 5, 1, 7, 3]]
)
def test_cluster_owner_is_half_or_more_and_a_campaign_wins_a_tie(order):
    import polars as pl

    rows = [
        # cluster 0: 2 campaign0 + 2 background (tie); cluster 1: 1 campaign1 + 2 background; noise
        (0, "campaign0"),
        (0, "campaign0"),
        (0, "background"),
        (0, "background"),
        (1, "campaign1"),
        (1, "background"),
        (1, "background"),
        (-1, "campaign1"),
    ]
    rows = [rows[i] for i in order]
    ids = [f"c{i}" for i in range(len(rows))]
    assignments = pl.DataFrame({"conversation_id": ids, "cluster_id": [c for c, _ in rows]})
    stream = pl.DataFrame({"conversation_id": ids, "label": [label for _, label in rows]})
    assert flagging.cluster_owners(assignments, stream) == {0: "campaign0", 1: "background"}
