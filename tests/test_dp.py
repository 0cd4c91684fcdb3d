"""Differentially private published counts: contribution bounding and the OpenDP release."""

from __future__ import annotations

import polars as pl
import pytest

from privacy.dp import DPConfig, bound_contributions, dp_cluster_counts


def members(rows):
    return pl.DataFrame(rows, orient="row", schema={"conversation_id": pl.Utf8, "account": pl.Utf8, "cluster_id": pl.Int64, "concerning": pl.Int64, "categories": pl.List(pl.Utf8)})


def test_bounding_limits_conversations_and_clusters_per_account():
    rows = [(f"c{i}", "heavy", i % 3, 1, []) for i in range(30)] + [("x", "light", 0, 1, []), ("n", "light", -1, 1, [])]
    bounded = bound_contributions(members(rows), DPConfig(max_clusters_per_account=2, max_conversations_per_account=4), salt="d")
    heavy = bounded.filter(pl.col("account") == "heavy")
    assert heavy["cluster_id"].n_unique() == 2
    assert heavy.group_by("cluster_id").len()["len"].max() == 4
    assert bounded.filter(pl.col("account") == "light")["conversation_id"].to_list() == ["x"]  # noise dropped
    again = bound_contributions(members(list(reversed(rows))), DPConfig(max_clusters_per_account=2, max_conversations_per_account=4), salt="d")
    assert sorted(again["conversation_id"]) == sorted(bounded["conversation_id"])


def test_noisy_counts_spend_the_budget_and_stay_close_on_large_clusters():
    rows = [(f"c{i}", f"a{i}", i % 2, 5 if i % 4 == 0 else 1, ["ncr"] if i % 2 else []) for i in range(20000)]
    config = DPConfig(epsilon=1.0)
    noisy, spent = dp_cluster_counts(members(rows), [0, 1], ["ncr", "vcr"], config, salt="d")
    assert spent == pytest.approx(1.0)
    scale = 4 * 5 * 5 / 1.0  # the widest measure's sensitivity over its share of epsilon
    for row in noisy.iter_rows(named=True):
        assert abs(row["conversations"] - 10000) < 10 * scale
        assert 1.0 <= row["mean_concern"] <= 5.0 and 0 <= row["share_concerning"] <= 1
    ncr = dict(zip(noisy["cluster_id"], noisy["cat_ncr"], strict=True))
    assert abs(ncr[1] - 10000) < 10 * 4 * 5 * 4 * 5 and ncr[0] < 10 * 4 * 5 * 4 * 5


def test_noise_is_real():
    rows = [(f"c{i}", f"a{i}", 0, 1, []) for i in range(500)]
    draws = {dp_cluster_counts(members(rows), [0], [], DPConfig(epsilon=0.5), salt="d")[0]["conversations"][0] for _ in range(8)}
    assert len(draws) > 1


def test_invalid_budget_is_rejected():
    with pytest.raises(ValueError):
        DPConfig(epsilon=0)
