"""Differentially private published counts: contribution bounding and the OpenDP release."""

from __future__ import annotations

import polars as pl
import pytest

from privacy.dp import (
    DPConfig,
    SelectionConfig,
    bound_contributions,
    bound_partitions,
    dp_cluster_counts,
    dp_raw_counts,
    select_partitions,
    selection_parameters,
    selection_withheld,
)


def members(rows):
    return pl.DataFrame(
        rows,
        orient="row",
        schema={
            "conversation_id": pl.Utf8,
            "account": pl.Utf8,
            "cluster_id": pl.Int64,
            "concern_score": pl.Float64,
            "categories": pl.List(pl.Utf8),
        },
    )


def test_bounding_limits_conversations_and_clusters_per_account():
    rows = [(f"c{i}", "heavy", i % 3, 1, []) for i in range(30)] + [
        ("x", "light", 0, 1, []),
        ("n", "light", -1, 1, []),
    ]
    bounded = bound_contributions(
        members(rows), DPConfig(max_clusters_per_account=2, max_conversations_per_account=4), salt="d"
    )
    heavy = bounded.filter(pl.col("account") == "heavy")
    assert heavy["cluster_id"].n_unique() == 2
    assert heavy.group_by("cluster_id").len()["len"].max() == 4
    assert bounded.filter(pl.col("account") == "light")["conversation_id"].to_list() == ["x"]  # noise dropped
    again = bound_contributions(
        members(list(reversed(rows))),
        DPConfig(max_clusters_per_account=2, max_conversations_per_account=4),
        salt="d",
    )
    assert sorted(again["conversation_id"]) == sorted(bounded["conversation_id"])


def test_noisy_counts_spend_the_budget_and_stay_close_on_large_clusters():
    rows = [
        (f"c{i}", f"a{i}", i % 2, 4.7 if i % 4 == 0 else 1.2, ["ncr"] if i % 2 else []) for i in range(20000)
    ]
    config = DPConfig(epsilon=1.0)
    noisy, spent = dp_cluster_counts(members(rows), [0, 1], ["ncr", "vcr"], config, salt="d")
    assert spent == pytest.approx(1.0)
    scale = 4 * 5 * 5 / 1.0  # the widest measure's sensitivity over its share of epsilon
    for row in noisy.iter_rows(named=True):
        assert abs(row["conversations"] - 10000) < 10 * scale
        assert 1.0 <= row["mean_concern"] <= 5.0 and 0 <= row["share_concerning"] <= 1
    ncr = dict(zip(noisy["cluster_id"], noisy["cat_ncr"], strict=True))
    assert abs(ncr[1] - 10000) < 10 * 4 * 5 * 4 * 5 and ncr[0] < 10 * 4 * 5 * 4 * 5
    # concern in tenths comes back in points: cluster 0 is half 4.7 and half 1.2, cluster 1 all 1.2
    precise, _ = dp_cluster_counts(members(rows), [0, 1], [], DPConfig(epsilon=20.0), salt="d")
    assert precise["mean_concern"].to_list() == pytest.approx([2.95, 1.2], abs=0.05)
    assert precise["share_concerning"].to_list() == pytest.approx([0.5, 0.0], abs=0.02)


@pytest.mark.parametrize(
    ("score", "tenths"),
    [
        (2.34, 23),
        (3.0, 30),
        (9.0, 50),
        (0.0, 10),
    ],  # out-of-range scores are clipped to 1-5: sensitivity holds
)
def test_concern_sum_counts_clipped_tenths(score, tenths):
    rows = [(f"c{i}", f"a{i}", 0, score, []) for i in range(40)]
    raw, _ = dp_raw_counts(members(rows), [0], [], DPConfig(), epsilon=1e6, salt="d")
    assert raw["concern_sum"][0] == 40 * tenths
    assert raw["concerning_count"][0] == (40 if score >= 3.0 else 0)


def test_noise_is_real():
    rows = [(f"c{i}", f"a{i}", 0, 1, []) for i in range(500)]
    draws = {
        dp_cluster_counts(members(rows), [0], [], DPConfig(epsilon=0.5), salt="d")[0]["conversations"][0]
        for _ in range(8)
    }
    assert len(draws) > 1


def test_invalid_budget_is_rejected():
    with pytest.raises(ValueError):
        DPConfig(epsilon=0)


# --- private partition selection ---------------------------------------------------


def level_rows(sizes, level=0, offset=0):
    """One conversation per account; cluster ``offset + i`` has ``sizes[i]`` accounts."""
    rows = [
        (f"c{offset + i}-{a}", f"a{offset + i}-{a}", offset + i, level)
        for i, n in enumerate(sizes)
        for a in range(n)
    ]
    return pl.DataFrame(
        rows,
        orient="row",
        schema={"conversation_id": pl.Utf8, "account": pl.Utf8, "cluster_id": pl.Int64, "level": pl.Int64},
    )


def test_tiny_cluster_is_not_selected_and_a_large_one_is():
    # The threshold is set so a 1-account cluster passes with probability below delta (1e-9 here).
    config = SelectionConfig(epsilon=1.0, delta=1e-9, max_partitions=1)
    base = level_rows([1, 2, 5000])
    # One parent (100) over the three base clusters: the same conversations one level up.
    members = pl.concat(
        [
            base,
            base.with_columns(pl.lit(100, pl.Int64).alias("cluster_id"), pl.lit(1, pl.Int64).alias("level")),
        ]
    )
    for _ in range(5):
        selection = select_partitions(members, config, salt="d")
        assert selection.kept == [2, 100] and selection.base_kept == [2]
    # The whole budget goes to the one base-level mechanism: no split over levels.
    assert selection.epsilon == pytest.approx(1.0) and selection.delta <= 1e-9
    assert set(selection.thresholds) == {0}
    assert selection_withheld([0, 1, 2, 100], selection)["cluster_id"].to_list() == [0, 1]


@pytest.mark.parametrize(("epsilon", "delta", "k"), [(1.0, 1e-6, 4), (0.5, 1e-6, 1), (2.0, 1e-9, 2)])
def test_threshold_is_the_smallest_meeting_delta(epsilon, delta, k):
    from privacy.dp import _threshold_measurement

    scale, threshold = selection_parameters(epsilon, delta, k)
    assert scale == pytest.approx(k / epsilon)
    eps, spent = _threshold_measurement(scale, threshold).map((k, k, 1))
    assert eps == pytest.approx(epsilon) and spent <= delta
    assert _threshold_measurement(scale, threshold - 1).map((k, k, 1))[1] > delta


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-6, 2.0])
def test_selection_delta_is_validated(delta):
    with pytest.raises(ValueError, match="delta"):
        SelectionConfig(delta=delta)


def test_partition_bound_per_account_and_level():
    rows = [("c", "heavy", cid, 0) for cid in range(10)] + [("c", "heavy", 100 + cid, 1) for cid in range(3)]
    members = pl.DataFrame(
        rows,
        orient="row",
        schema={"conversation_id": pl.Utf8, "account": pl.Utf8, "cluster_id": pl.Int64, "level": pl.Int64},
    )
    bounded = bound_partitions(members, 2, salt="d")
    assert bounded.group_by("level").len().sort("level")["len"].to_list() == [2, 2]
    again = bound_partitions(members.reverse(), 2, salt="d")
    assert sorted(again["cluster_id"]) == sorted(bounded["cluster_id"])


def test_empty_selection():
    assert select_partitions(level_rows([]), SelectionConfig(), salt="d").kept == []
