"""Cross-day tracking and emerging-abuse flags (pure functions, synthetic data)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from clustering.tracking import FlagRules, TrackingParams, centroids, flag_clusters, link_tracks

SEVERITY = {"ncr": "high", "ipv": "medium"}


def unit(*v):
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


def history_frame(rows):
    return pl.DataFrame(rows, schema={"day": pl.Utf8, "track_id": pl.Utf8, "conversations": pl.Int64, "centroid": pl.List(pl.Float64)})


def test_centroids_skip_noise_and_are_unit_norm():
    vectors = np.array([[1.0, 0], [3.0, 0], [0, 2.0], [5.0, 5.0]])
    ids, centres = centroids(vectors, np.array([0, 0, 1, -1]))
    assert ids == [0, 1]
    np.testing.assert_allclose(centres, [[1, 0], [0, 1]])


def test_link_reuses_matching_track_and_marks_new():
    history = history_frame(
        [
            {"day": "2026-11-01", "track_id": "2026-11-01/0", "conversations": 5, "centroid": unit(1, 0, 0).tolist()},
            {"day": "2026-11-01", "track_id": "2026-11-01/1", "conversations": 5, "centroid": unit(0, 1, 0).tolist()},
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
    return pl.DataFrame(rows).with_columns(pl.col("cluster_id").cast(pl.Int64), pl.col("conversations").cast(pl.Int64))


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
            {"cluster_id": 0, "conversations": 12, "mean_concern": mean_concern, "share_concerning": share, "cat_ncr": 0, "cat_ipv": 0},
            {"cluster_id": 1, "conversations": 28, "mean_concern": 1.0, "share_concerning": 0.0, "cat_ncr": 0, "cat_ipv": 0},
        ]
    )
    tracks = pl.DataFrame({"cluster_id": [0, 1], "track_id": ["a" if not is_new else "new", "b"], "is_new": [is_new, False], "similarity": [None, 0.9]})
    history = pl.DataFrame(
        {"day": ["2026-11-01"] * 2, "track_id": ["a", "b"], "conversations": [1, 30]}
    ) if history_rows else pl.DataFrame()
    totals = {"2026-11-01": history_rows} if history_rows else {}
    flags = flag_clusters(clusters, tracks, history, 40, totals, SEVERITY, FlagRules())
    row = flags.filter(pl.col("cluster_id") == 0).row(0, named=True)
    assert row["flagged"] is flagged
    assert bool(row["reasons"]) is flagged
    assert not flags.filter(pl.col("cluster_id") == 1)["flagged"][0]


def test_growth_reason_cites_test_and_severity_counts():
    clusters = clusters_frame(
        [{"cluster_id": 0, "conversations": 10, "mean_concern": 2.0, "share_concerning": 0.2, "cat_ncr": 8, "cat_ipv": 0}]
    )
    tracks = pl.DataFrame({"cluster_id": [0], "track_id": ["a"], "is_new": [False], "similarity": [0.9]})
    history = pl.DataFrame({"day": ["2026-11-01", "2026-11-02"], "track_id": ["a", "a"], "conversations": [1, 1]})
    flags = flag_clusters(clusters, tracks, history, 20, {"2026-11-01": 50, "2026-11-02": 50}, SEVERITY, FlagRules())
    row = flags.row(0, named=True)
    assert row["flagged"]
    assert any("high-severity" in r for r in row["reasons"])
    assert any("BH q=" in r for r in row["reasons"])
    assert row["growth_ratio"] > 10
