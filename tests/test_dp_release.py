"""DP release of a hierarchy: selection on with DP, parents from children, accounting, no exact counts published."""

from __future__ import annotations

import polars as pl
import pytest

from assets.definitions import RESOURCES_BY_DEPLOYMENT
from assets.resources import PrivacyResource
from clustering.aggregate import CONCERNING_AT
from privacy.dp import DPConfig, SelectionConfig, select_partitions
from privacy.release import DPAccounting, dp_level_counts, with_dp_counts
from reporting.tables import build_report_tables

CODES = ["vcr", "ncr"]


def hierarchy(
    sizes: list[int], parent_of: dict[int, int], top: int | None = None, seed_concern: int = 1
) -> pl.DataFrame:
    """Membership rows: base cluster ``i`` has ``sizes[i]`` accounts with one conversation each, under ``parent_of[i]``."""
    rows = []
    for cid, n in enumerate(sizes):
        for a in range(n):
            conv = f"c{cid}-{a}"
            facet = {
                "concern_score": 1 + ((a * 7 + cid + seed_concern) % 9) / 2,
                "categories": ["ncr"] if a % 2 else [],
            }
            rows.append(
                {"conversation_id": conv, "account": f"a{cid}-{a}", "cluster_id": cid, "level": 0, **facet}
            )
            rows.append(
                {
                    "conversation_id": conv,
                    "account": f"a{cid}-{a}",
                    "cluster_id": parent_of[cid],
                    "level": 1,
                    **facet,
                }
            )
            if top is not None:
                rows.append(
                    {
                        "conversation_id": conv,
                        "account": f"a{cid}-{a}",
                        "cluster_id": top,
                        "level": 2,
                        **facet,
                    }
                )
    return pl.DataFrame(rows, schema_overrides={"categories": pl.List(pl.Utf8)})


@pytest.mark.parametrize("deployment", sorted(RESOURCES_BY_DEPLOYMENT))
def test_selection_is_on_wherever_dp_counts_are(deployment):
    privacy = RESOURCES_BY_DEPLOYMENT[deployment]["privacy"]
    assert privacy.dp() is not None, "every deployment publishes DP counts"
    assert privacy.selection() is not None, "and so selects partitions privately"
    assert privacy.thresholds().min_accounts == 1, "the exact account threshold is replaced"


def test_dp_and_selection_are_one_switch():
    assert (
        PrivacyResource(dp_epsilon=None).selection() is None
        and PrivacyResource(dp_epsilon=None).thresholds().min_accounts == 5
    )
    with pytest.raises(Exception, match="dp_selection_epsilon"):
        PrivacyResource(dp_selection_epsilon=None)


def test_small_day_still_releases_at_the_local_budget():
    # Sample-sized: 26 conversations in clusters of 3 to 9 accounts, plus two of one account.
    members = hierarchy([9, 7, 5, 3, 1, 1], {0: 10, 1: 10, 2: 11, 3: 11, 4: 12, 5: 12})
    local = RESOURCES_BY_DEPLOYMENT["local"]["privacy"]
    config = SelectionConfig(6.0, 1e-6, 1, local.min_accounts)  # the local demo budget
    for _ in range(10):
        selection = select_partitions(members, config, salt="d")
        assert {0, 1, 2} <= set(selection.base_kept) and not {4, 5} & set(selection.base_kept)
        assert {10, 11} <= set(selection.kept) and 12 not in selection.kept
    assert selection.thresholds == {0: 3} and selection.delta <= 1e-6
    # The production budget releases none of it (threshold 14 accounts before any floor).
    assert select_partitions(members, SelectionConfig(1.0, 1e-6, 1), salt="d").kept == []


def test_parent_is_released_iff_a_child_is():
    members = hierarchy([40, 1, 1, 40], {0: 10, 1: 10, 2: 11, 3: 12}, top=20)
    selection = select_partitions(members, SelectionConfig(1.0, 1e-6, 1), salt="d")
    assert selection.base_kept == [0, 3]
    assert selection.kept == [0, 3, 10, 12, 20]  # 11 holds only a one-account child


def test_accounting_adds_up():
    members = hierarchy([30, 20, 25], {0: 10, 1: 10, 2: 11}, top=20)
    selection = select_partitions(members, SelectionConfig(2.0, 1e-7, 1), salt="d")
    released = pl.DataFrame({"cluster_id": selection.kept}).join(
        members.select("cluster_id", "level").unique(), on="cluster_id"
    )
    config = DPConfig(epsilon=3.0)
    _, counts_spent = dp_level_counts(members, released, CODES, config, salt="d")
    assert counts_spent == pytest.approx(3.0)  # OpenDP's maps over 5 base measures + 2 parent levels
    privacy = PrivacyResource(
        dp_epsilon=3.0, dp_selection_epsilon=2.0, dp_selection_delta=1e-7, min_accounts=1
    )
    accounting = privacy.accounting(selection)
    assert accounting == DPAccounting(selection.epsilon, selection.delta, selection.thresholds[0], 3.0)
    assert accounting.epsilon == pytest.approx(selection.epsilon + counts_spent) == pytest.approx(5.0)
    assert accounting.delta == selection.delta <= 1e-7
    metrics = accounting.metrics()
    assert metrics["dp_epsilon"] == pytest.approx(
        metrics["dp_selection_epsilon"] + metrics["dp_counts_epsilon"]
    )
    assert DPAccounting.from_json(accounting.to_json()) == accounting and DPAccounting.from_json({}) is None


def test_parent_counts_are_sums_of_released_children():
    members = hierarchy([30, 20, 25, 2], {0: 10, 1: 10, 2: 11, 3: 11}, top=20)
    released = pl.DataFrame({"cluster_id": [0, 1, 2, 10, 11, 20], "level": [0, 0, 0, 1, 1, 2]})
    # A large budget keeps the noise small, so no count is clipped at zero and sums are exact identities.
    noisy, _ = dp_level_counts(members, released, CODES, DPConfig(epsilon=300.0), salt="d")
    n = dict(zip(noisy["cluster_id"], noisy["conversations"], strict=True))
    assert n[10] == n[0] + n[1] and n[11] == n[2] and n[20] == n[0] + n[1] + n[2]  # child 3 is not released
    cats = dict(zip(noisy["cluster_id"], noisy["cat_ncr"], strict=True))
    assert cats[20] == cats[0] + cats[1] + cats[2]


def exact_released(members: pl.DataFrame, ids: list[int]) -> pl.DataFrame:
    """The private released table with exact counts, as the gate writes it."""
    return (
        members.filter(pl.col("cluster_id").is_in(ids))
        .group_by("cluster_id", "level")
        .agg(
            pl.len().cast(pl.Int64).alias("conversations"),
            pl.col("account").n_unique().cast(pl.Int64).alias("unique_accounts"),
            pl.col("concern_score").mean().alias("mean_concern"),
            (pl.col("concern_score") >= CONCERNING_AT).mean().alias("share_concerning"),
            *[pl.col("categories").list.contains(c).sum().cast(pl.Int64).alias(f"cat_{c}") for c in CODES],
        )
        .with_columns(pl.lit("d").alias("day"), pl.format("Cluster {}", "cluster_id").alias("title"))
        .sort("cluster_id")
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_published_report_holds_dp_counts_not_exact_ones(seed):
    members = hierarchy([12, 9, 15, 7], {0: 10, 1: 10, 2: 11, 3: 11}, top=20, seed_concern=seed)
    ids = [0, 1, 2, 3, 10, 11, 20]
    exact = exact_released(members, ids)
    noisy, spent = dp_level_counts(
        members, exact.select("cluster_id", "level"), CODES, DPConfig(epsilon=0.5), salt=f"s{seed}"
    )
    flags = pl.DataFrame(
        {
            "cluster_id": [0, 1, 2, 3],
            "track_id": ["t0", "t1", "t2", "t3"],
            "is_new": [True, False, False, False],
            "growth_ratio": [None, 1.7, 3.3, 1.0],
            "flagged": [True, False, True, False],
            "reasons": [
                ["mean concern 3.4 >= 3.0", "new: no similar cluster in the trailing window"],
                [],
                ["coordination: 9 accounts sent 2 distinct requests (ratio 0.22 <= 0.5)"],
                [],
            ],
            "reason_codes": [["mean_concern", "new"], [], ["share_concerning", "coordination"], []],
        }
    )
    summary = {"facets_extracted": 50, "dp_epsilon": spent}
    empty = pl.DataFrame(schema={"stage": pl.Utf8, "reason": pl.Utf8, "records": pl.Int64})
    tables = build_report_tables(
        "d",
        with_dp_counts(exact, noisy),
        flags,
        CODES,
        summary,
        empty,
        pl.DataFrame(schema={"entity_type": pl.Utf8, "count": pl.Int64}),
        pl.DataFrame(schema={"cluster_id": pl.Int64}),
    )
    published = tables.clusters.sort("cluster_id")
    truth = exact.sort("cluster_id")
    dp = noisy.sort("cluster_id")
    for col in ("conversations", "unique_accounts", "mean_concern", "share_concerning"):
        assert published[col].to_list() == dp[col].to_list(), col
    assert published["conversations"].to_list() != truth["conversations"].to_list(), "noise made them differ"
    cats = tables.categories.filter(pl.col("category") == "ncr").sort("cluster_id")
    assert dict(zip(cats["cluster_id"], cats["conversations"], strict=True)) == {
        c: v for c, v in zip(dp["cluster_id"], dp["cat_ncr"], strict=True) if v > 0
    }
    # Flags: no exact figure and no exact growth is published; reasons restate the DP figures.
    reasons = " ".join(r for rs in published["reasons"].to_list() for r in rs)
    assert "9 accounts" not in reasons and "3.4" not in reasons and "0.22" not in reasons
    mean0 = published.filter(pl.col("cluster_id") == 0)["mean_concern"].item()
    assert f"mean concern {mean0:.1f}" in reasons
    assert published["growth_ratio"].null_count() == len(published)  # no published history: no growth figure


@pytest.mark.parametrize(
    ("released_ids", "empty"),
    [
        ({0, 1, 10, 11, 20}, set()),  # every parent has a released base cluster below it
        ({0, 10, 11, 20}, {11}),  # 11's only base cluster (1) was withheld by a later layer
        ({10, 11, 20}, {10, 11, 20}),  # no base cluster released: nothing above is published
        ({2, 20}, set()),  # 2 hangs from 20 through the withheld 12
    ],
)
def test_parents_without_released_base(released_ids, empty):
    from privacy.release import parents_without_released_base

    # base 0 -> 10 -> 20, base 1 -> 11 -> 20, base 2 -> 12 -> 20
    nodes = pl.DataFrame(
        {
            "cluster_id": [0, 1, 2, 10, 11, 12, 20],
            "parent_id": [10, 11, 12, 20, 20, 20, None],
            "level": [0, 0, 0, 1, 1, 1, 2],
        },
        schema={"cluster_id": pl.Int64, "parent_id": pl.Int64, "level": pl.Int64},
    )
    released = nodes.filter(pl.col("cluster_id").is_in(list(released_ids)))
    out = parents_without_released_base(released, nodes)
    assert set(out["cluster_id"]) == empty
    assert out["reason"].str.contains("no released base").all()
