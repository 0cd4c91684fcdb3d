"""Cross-day tracking and emerging-abuse flags (pure functions, synthetic data)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from clustering.tracking import (
    FlagRules,
    TrackingParams,
    centroids,
    coordination_signals,
    flag_clusters,
    link_tracks,
)

SEVERITY = {"ncr": "high", "ipv": "medium"}


def unit(*v):
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


def history_frame(rows):
    return pl.DataFrame(
        rows,
        schema={
            "day": pl.Utf8,
            "track_id": pl.Utf8,
            "conversations": pl.Int64,
            "centroid": pl.List(pl.Float64),
        },
    )


def test_centroids_skip_noise_and_are_unit_norm():
    vectors = np.array([[1.0, 0], [3.0, 0], [0, 2.0], [5.0, 5.0]])
    ids, centres = centroids(vectors, np.array([0, 0, 1, -1]))
    assert ids == [0, 1]
    np.testing.assert_allclose(centres, [[1, 0], [0, 1]])


def test_link_reuses_matching_track_and_marks_new():
    history = history_frame(
        [
            {
                "day": "2026-11-01",
                "track_id": "2026-11-01/0",
                "conversations": 5,
                "centroid": unit(1, 0, 0).tolist(),
            },
            {
                "day": "2026-11-01",
                "track_id": "2026-11-01/1",
                "conversations": 5,
                "centroid": unit(0, 1, 0).tolist(),
            },
        ]
    )
    today = np.stack([unit(0, 0.98, 0.2), unit(0, 0, 1)])
    tracks = link_tracks("2026-11-02", [0, 1], today, history, TrackingParams(min_similarity=0.8))
    assert tracks["track_id"].to_list() == ["2026-11-01/1", "2026-11-02/1"]
    assert tracks["is_new"].to_list() == [False, True]


def test_link_uses_latest_centroid_of_a_track():
    history = history_frame(
        [
            {"day": "2026-11-01", "track_id": "t", "conversations": 5, "centroid": unit(1, 0).tolist()},
            {"day": "2026-11-02", "track_id": "t", "conversations": 5, "centroid": unit(0, 1).tolist()},
        ]
    )
    tracks = link_tracks("2026-11-03", [0], np.stack([unit(0, 1)]), history, TrackingParams())
    assert tracks["track_id"].to_list() == ["t"]


def clusters_frame(rows):
    return pl.DataFrame(rows).with_columns(
        pl.col("cluster_id").cast(pl.Int64), pl.col("conversations").cast(pl.Int64)
    )


@pytest.mark.parametrize(
    ("mean_concern", "share", "is_new", "history_rows", "flagged"),
    [
        (4.2, 0.8, True, 40, True),  # new and concerning
        (1.2, 0.0, True, 40, False),  # new but benign
        (4.2, 0.8, False, 40, True),  # known track that grew sharply (1 -> 12 conversations)
        (4.2, 0.8, True, 0, False),  # first day: nothing to compare with
    ],
)
def test_flag_rules(mean_concern, share, is_new, history_rows, flagged):
    clusters = clusters_frame(
        [
            {
                "cluster_id": 0,
                "conversations": 12,
                "mean_concern": mean_concern,
                "share_concerning": share,
                "cat_ncr": 0,
                "cat_ipv": 0,
            },
            {
                "cluster_id": 1,
                "conversations": 28,
                "mean_concern": 1.0,
                "share_concerning": 0.0,
                "cat_ncr": 0,
                "cat_ipv": 0,
            },
        ]
    )
    tracks = pl.DataFrame(
        {
            "cluster_id": [0, 1],
            "track_id": ["a" if not is_new else "new", "b"],
            "is_new": [is_new, False],
            "similarity": [None, 0.9],
        }
    )
    history = (
        pl.DataFrame({"day": ["2026-11-01"] * 2, "track_id": ["a", "b"], "conversations": [1, 30]})
        if history_rows
        else pl.DataFrame()
    )
    totals = {"2026-11-01": history_rows} if history_rows else {}
    flags = flag_clusters(clusters, tracks, history, 40, totals, SEVERITY, FlagRules())
    row = flags.filter(pl.col("cluster_id") == 0).row(0, named=True)
    assert row["flagged"] is flagged
    assert bool(row["reasons"]) is flagged
    assert not flags.filter(pl.col("cluster_id") == 1)["flagged"][0]


def test_growth_reason_cites_test_and_severity_counts():
    clusters = clusters_frame(
        [
            {
                "cluster_id": 0,
                "conversations": 10,
                "mean_concern": 2.0,
                "share_concerning": 0.2,
                "cat_ncr": 8,
                "cat_ipv": 0,
            }
        ]
    )
    tracks = pl.DataFrame({"cluster_id": [0], "track_id": ["a"], "is_new": [False], "similarity": [0.9]})
    history = pl.DataFrame(
        {"day": ["2026-11-01", "2026-11-02"], "track_id": ["a", "a"], "conversations": [1, 1]}
    )
    flags = flag_clusters(
        clusters, tracks, history, 20, {"2026-11-01": 50, "2026-11-02": 50}, SEVERITY, FlagRules()
    )
    row = flags.row(0, named=True)
    assert row["flagged"]
    assert any("high-severity" in r for r in row["reasons"])
    assert any("BH q=" in r for r in row["reasons"])
    assert row["growth_ratio"] > 10


# --- coordination ----------------------------------------------------------------


def day_facets(rows):
    """Facets and assignments from (cluster_id, account, request, minute) tuples."""
    start = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    facets = pl.DataFrame(
        {
            "conversation_id": [f"c{i}" for i in range(len(rows))],
            "account": [r[1] for r in rows],
            "request": [r[2] for r in rows],
            "timestamp": [start + dt.timedelta(minutes=r[3]) for r in rows],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    assignments = pl.DataFrame(
        {"conversation_id": facets["conversation_id"], "cluster_id": [r[0] for r in rows]}
    )
    return facets, assignments


def spread(cluster_id, n, requests, accounts=None, start=0.0, step=1440 / 10):
    """``n`` conversations of one cluster, cycling through ``requests``, one account each unless given."""
    return [
        (
            cluster_id,
            accounts[i % len(accounts)] if accounts else f"acct{cluster_id}_{i}",
            requests[i % len(requests)],
            (start + i * step) % 1440,
        )
        for i in range(n)
    ]


BACKGROUND = spread(9, 40, [f"question number {w} about topic {w * 7}" for w in range(40)], step=36)


@pytest.mark.parametrize(
    ("rows", "distinct", "accounts"),
    [
        (spread(0, 10, ["How do I make X?", "how do i make x", "HOW DO I MAKE X!!"]), 1, 10),  # edited copies
        (spread(0, 10, ["alpha", "beta"]), 2, 10),
        (spread(0, 6, [f"request {w}" for w in "abcdef"], accounts=["a", "b"]), 6, 2),
    ],
)
def test_distinct_requests_group_normalised_copies(rows, distinct, accounts):
    facets, assignments = day_facets(rows + [(-1, "n", "noise", 5.0)])
    signal = coordination_signals(facets, assignments, FlagRules()).row(0, named=True)
    assert (signal["distinct_requests"], signal["unique_accounts"]) == (distinct, accounts)
    assert signal["distinct_request_ratio"] == pytest.approx(distinct / (len(rows)))
    assert signal["new_account_share"] is None  # no trailing window given


def test_near_duplicate_requests_group_by_embedding_similarity():
    facets, assignments = day_facets(
        spread(0, 4, ["make a weapon", "build a weapon", "bake bread", "knit a scarf"])
    )
    vectors = np.stack([unit(1, 0.05, 0), unit(1, 0, 0.05), unit(0, 1, 0), unit(0, 0, 1)])
    by_text = coordination_signals(facets, assignments, FlagRules())["distinct_requests"][0]
    by_vector = coordination_signals(
        facets, assignments, FlagRules(request_similarity=0.95), request_vectors=vectors
    )
    assert (by_text, by_vector["distinct_requests"][0]) == (4, 3)


def test_new_account_share_against_trailing_window():
    facets, assignments = day_facets(spread(0, 4, ["r"], accounts=["old1", "old2", "new1", "new2"]))
    signal = coordination_signals(facets, assignments, FlagRules(), seen_accounts={"old1", "old2", "other"})
    assert signal["new_account_share"][0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("burst_start", "step", "bursty"),
    [
        (600.0, 2.0, True),  # 12 conversations in 24 minutes against traffic spread over the day
        (0.0, 120.0, False),  # the same 12 spread over the day like the background
    ],
)
def test_burst_against_the_days_traffic(burst_start, step, bursty):
    rows = spread(0, 12, ["same"], start=burst_start, step=step) + BACKGROUND
    facets, assignments = day_facets(rows)
    signal = (
        coordination_signals(facets, assignments, FlagRules())
        .filter(pl.col("cluster_id") == 0)
        .row(0, named=True)
    )
    assert (signal["burst_p"] < FlagRules().burst_alpha) is bursty
    assert signal["burst_conversations"] >= (12 if bursty else 1)


def test_no_timestamps_means_no_burst_figures():
    facets, assignments = day_facets(spread(0, 5, ["same"]))
    signal = coordination_signals(facets.drop("timestamp"), assignments, FlagRules()).row(0, named=True)
    assert signal["burst_p"] is None and signal["distinct_requests"] == 1


def coordination_case(rows, seen=None, **rules):
    """Flags of a known, non-growing, concerning cluster 0 next to benign background 9."""
    facets, assignments = day_facets(rows + BACKGROUND)
    rule = FlagRules(**rules)
    signals = coordination_signals(facets, assignments, rule, seen_accounts=seen)
    n = sum(r[0] == 0 for r in rows)
    clusters = clusters_frame(
        [
            {
                "cluster_id": 0,
                "conversations": n,
                "mean_concern": 4.5,
                "share_concerning": 0.9,
                "cat_ncr": 0,
                "cat_ipv": 0,
            },
            {
                "cluster_id": 9,
                "conversations": 40,
                "mean_concern": 1.0,
                "share_concerning": 0.0,
                "cat_ncr": 0,
                "cat_ipv": 0,
            },
        ]
    )
    tracks = pl.DataFrame(
        {"cluster_id": [0, 9], "track_id": ["a", "b"], "is_new": [False, False], "similarity": [0.9, 0.9]}
    )
    # Same share as in the trailing window: neither new nor growing, so only coordination can flag.
    history = pl.DataFrame({"day": ["2026-11-01"] * 2, "track_id": ["a", "b"], "conversations": [n, 40]})
    flags = flag_clusters(clusters, tracks, history, n + 40, {"2026-11-01": n + 40}, SEVERITY, rule, signals)
    return flags.filter(pl.col("cluster_id") == 0).row(0, named=True)


@pytest.mark.parametrize(
    ("rows", "seen", "rules", "flagged", "reason"),
    [
        (
            spread(0, 10, ["one ask", "one ask!", "another ask"]),
            None,
            {},
            True,
            "coordination: 10 accounts sent 2 distinct requests",
        ),
        (
            spread(0, 10, [f"ask {w}" for w in range(10)]),
            None,
            {},
            False,
            None,
        ),  # all different, spread out: control
        (spread(0, 10, ["one ask"], accounts=["a", "b", "c"]), None, {}, False, None),  # too few accounts
        (
            spread(0, 10, [f"ask {w}" for w in range(10)], start=300, step=3),
            None,
            {},
            True,
            "burst: 10 conversations within 60 min",
        ),
        (
            spread(0, 10, ["one ask"]),
            {f"acct0_{i}" for i in range(10)},
            {"coordination_min_new_account_share": 0.5},
            False,
            None,
        ),
        (
            spread(0, 10, ["one ask"]),
            {"acct0_0"},
            {"coordination_min_new_account_share": 0.5},
            True,
            "90% of its 10 accounts not seen",
        ),
    ],
)
def test_coordination_rule(rows, seen, rules, flagged, reason):
    row = coordination_case(rows, seen, **rules)
    assert row["flagged"] is flagged and row["coordinated"] is flagged
    assert row["growth_q"] > 0.05 and not row["is_new"]
    if reason:
        assert any(r.startswith(reason) for r in row["reasons"]), row["reasons"]
        assert any(r.startswith("mean concern") for r in row["reasons"])


def test_coordination_needs_concern():
    facets, assignments = day_facets(spread(0, 10, ["one ask"]))
    signals = coordination_signals(facets, assignments, FlagRules())
    clusters = clusters_frame(
        [
            {
                "cluster_id": 0,
                "conversations": 10,
                "mean_concern": 1.0,
                "share_concerning": 0.0,
                "cat_ncr": 0,
                "cat_ipv": 0,
            }
        ]
    )
    tracks = pl.DataFrame(
        {"cluster_id": [0], "track_id": ["a"], "is_new": [True], "similarity": [None]},
        schema_overrides={"similarity": pl.Float64},
    )
    row = flag_clusters(clusters, tracks, pl.DataFrame(), 10, {}, SEVERITY, FlagRules(), signals).row(
        0, named=True
    )
    assert row["coordinated"] and not row["flagged"] and row["reasons"] == []


# --- backfill through the asset ------------------------------------------------------

BACKFILL_DAYS = ["2026-11-02", "2026-11-03", "2026-11-04"]


def write_day_state(state_dir, day, sizes):
    """State files ``cluster_tracks`` reads for one day: ``sizes`` maps a centroid axis to (conversations, concern)."""
    from assets import stages
    from clustering.aggregate import assignments_frame, cluster_table
    from clustering.naming import NamedCluster

    day_state = state_dir / day
    day_state.mkdir(parents=True)
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    rows, labels = [], []
    for cid, (axis, (n, concern)) in enumerate(sorted(sizes.items())):
        for i in range(n):
            rows.append(
                {
                    "conversation_id": f"{day}-{axis}-{i}",
                    "account": f"acct{axis}_{i}",
                    "timestamp": start + dt.timedelta(minutes=37 * i),
                    "summary": f"summary {axis}",
                    "request": f"request {axis} number {i}",
                    "task": "t",
                    "topic": "t",
                    "concern_score": float(concern),
                    "categories": ["ncr"] if concern >= 4 else [],
                }
            )
            labels.append(cid)
    facets = pl.DataFrame(
        rows, schema_overrides={"categories": pl.List(pl.Utf8), "timestamp": pl.Datetime("us", "UTC")}
    )
    assignments = assignments_frame(facets, np.array(labels), day)
    names = [NamedCluster(c, f"c{c}", "", "fallback") for c in range(len(sizes))]
    facets.write_parquet(day_state / stages.FACETS)
    assignments.write_parquet(day_state / stages.ASSIGNMENTS)
    table = cluster_table(facets, assignments, names, ["ncr", "ipv"], day)
    for name in {
        stages.CLUSTERS,
        getattr(stages, "BASE", stages.CLUSTERS),
    }:  # base rows only: they are the whole table here
        table.write_parquet(day_state / name)
    centres = [unit(*np.eye(8)[axis] + 0.05 * np.eye(8)[(axis + 1) % 8]).tolist() for axis in sorted(sizes)]
    pl.DataFrame(
        {"cluster_id": list(range(len(sizes))), "centroid": centres},
        schema={"cluster_id": pl.Int64, "centroid": pl.List(pl.Float64)},
    ).write_parquet(day_state / stages.CENTROIDS)


def run_tracks(state_dir, days):
    """Materialise ``cluster_tracks`` for ``days`` in the given order; each day's flags, sorted."""
    import dagster as dg

    from assets import stages
    from assets.definitions import local_resources

    resources = local_resources(
        input_dir=str(state_dir / "in"), out_dir=str(state_dir / "out"), state_dir=str(state_dir)
    )
    for day in days:
        assert dg.materialize([stages.cluster_tracks], partition_key=day, resources=resources).success
    return {day: pl.read_parquet(state_dir / day / stages.FLAGS).sort("cluster_id") for day in days}


def test_backfill_over_three_partitions_equals_three_single_runs(tmp_path):
    from assets import stages

    # Axis 0: steady benign; axis 1: concerning and growing on day 3; axis 2: new and concerning on day 3.
    plan = {
        "2026-11-02": {0: (40, 1), 1: (3, 4)},
        "2026-11-03": {0: (40, 1), 1: (3, 4)},
        "2026-11-04": {0: (40, 1), 1: (20, 4), 2: (8, 5)},
    }
    for folder in ("single", "backfill"):
        for day, sizes in plan.items():
            write_day_state(tmp_path / folder, day, sizes)
    # A backfill runs days in partition order: cluster_tracks depends on its own previous partition.
    [self_dep] = [
        d
        for d in stages.cluster_tracks.specs_by_key[stages.cluster_tracks.key].deps
        if d.asset_key == stages.cluster_tracks.key
    ]
    assert self_dep.partition_mapping.start_offset == -1

    singles = {day: run_tracks(tmp_path / "single", [day])[day] for day in BACKFILL_DAYS}
    # The backfill state already holds a stale day-3 result computed without history,
    # as when a range is backfilled again after later days ran.
    stale = run_tracks(tmp_path / "backfill", [BACKFILL_DAYS[-1]])[BACKFILL_DAYS[-1]]
    backfilled = run_tracks(tmp_path / "backfill", BACKFILL_DAYS)
    flagged = singles["2026-11-04"].filter(pl.col("flagged"))
    assert len(flagged) == 2 and flagged["reasons"].list.len().min() >= 2
    assert stale["growth_ratio"].is_null().all() and not stale.equals(singles[BACKFILL_DAYS[-1]])
    for day in BACKFILL_DAYS:
        assert backfilled[day].equals(singles[day]), day
