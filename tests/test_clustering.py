"""Clustering core: UMAP + HDBSCAN on seeded blobs, naming with retries, aggregates."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from clustering.aggregate import assignments_frame, cluster_table
from clustering.cluster import NOISE, ClusterParams, cluster_embeddings
from clustering.naming import ClusterNamer
from summarize.llm import LLM


def blobs(seed=0, sizes=(30, 20, 12), dim=16, outliers=4):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim)) * 10
    points = [c + rng.normal(size=(n, dim)) * 0.3 for c, n in zip(centres, sizes, strict=True)]
    points.append(rng.uniform(-40, 40, size=(outliers, dim)))
    return np.vstack(points), np.repeat(np.arange(len(sizes) + 1), [*sizes, outliers])


def test_finds_blobs_deterministically_and_orders_by_size():
    x, truth = blobs()
    first = cluster_embeddings(x, ClusterParams(seed=7))
    second = cluster_embeddings(x, ClusterParams(seed=7))
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.n_clusters == 3
    sizes = [int((first.labels == c).sum()) for c in range(first.n_clusters)]
    assert sizes == sorted(sizes, reverse=True)
    from sklearn.metrics import adjusted_rand_score

    core = truth < 3
    assert adjusted_rand_score(truth[core], first.labels[core]) > 0.95


def test_too_few_points_are_all_noise():
    result = cluster_embeddings(np.random.default_rng(0).normal(size=(3, 8)))
    assert (result.labels == NOISE).all() and result.n_clusters == 0


class ScriptedLLM(LLM):
    model_id = "test:scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.temperatures = []

    def generate_json(self, request):
        self.temperatures.append(request.temperature)
        return self.answers.pop(0)


def _name(answers, attempts=3):
    llm = ScriptedLLM(answers)
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    vectors = np.eye(7, 4)
    summaries = [f"s{i}" for i in range(7)]
    topics = ["python", "python", "sql", "travel", "travel", "travel", "x"]
    return ClusterNamer(llm, max_attempts=attempts).name(summaries, topics, labels, vectors), llm


def test_generic_titles_are_retried_then_accepted():
    good = json.dumps({"title": "Plan city trips", "description": "Users plan short trips to cities."})
    generic = json.dumps(
        {"title": "Group of AI-assistant Conversations", "description": "A group of conversations."}
    )
    names, llm = _name([good, generic, good.replace("Plan city trips", "Write Python scripts")])
    assert [n.title for n in names] == ["Plan city trips", "Write Python scripts"]
    assert [n.source for n in names] == ["llm", "llm"]
    assert llm.temperatures[-1] > 0  # the retry samples


def test_naming_falls_back_to_topics():
    names, _ = _name(["not json", "{}"], attempts=1)
    assert names[0].source == "fallback" and "python" in names[0].title


def test_cluster_table_counts_and_noise():
    facets = pl.DataFrame(
        {
            "conversation_id": list("abcde"),
            "account": ["p1", "p1", "p2", "p3", "p4"],
            "concern_score": [1.2, 4.6, 3.0, 3.4, 2.0],
            "task": ["coding"] * 5,
            "categories": [[], ["ncr"], ["ncr"], [], []],
        }
    )
    assignments = assignments_frame(facets, np.array([0, 0, 0, 1, -1]), "2026-11-01")
    from clustering.naming import NamedCluster

    table = cluster_table(
        facets,
        assignments,
        [NamedCluster(0, "T0", "d", "llm"), NamedCluster(1, "T1", "d", "llm")],
        ["ncr"],
        "2026-11-01",
    )
    row = table.filter(pl.col("cluster_id") == 0).row(0, named=True)
    assert (row["conversations"], row["unique_accounts"], row["cat_ncr"]) == (3, 2, 2)
    assert row["mean_concern"] == pytest.approx((1.2 + 4.6 + 3.0) / 3)
    assert row["share_concerning"] == pytest.approx(2 / 3)  # 3.0 is the threshold, counted
    assert NOISE not in table["cluster_id"].to_list()


def test_small_inputs_take_the_exact_path_unchanged():
    x, _ = blobs(seed=3)
    exact = cluster_embeddings(x, ClusterParams(seed=5, max_fit_points=None))
    default = cluster_embeddings(x, ClusterParams(seed=5))
    at_limit = cluster_embeddings(x, ClusterParams(seed=5, max_fit_points=len(x)))
    np.testing.assert_array_equal(exact.labels, default.labels)
    np.testing.assert_array_equal(exact.labels, at_limit.labels)
    np.testing.assert_array_equal(exact.reduced, at_limit.reduced)


def sphere_mixture(seed=0, n=3000, components=6, dim=32, outliers=60):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(components, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.integers(0, components, size=n)
    x = centres[truth] + rng.normal(scale=0.15 / np.sqrt(dim), size=(n, dim))
    # Outliers: random directions, far from every centre.
    far = rng.normal(size=(outliers, dim))
    x = np.vstack([x, far])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.concatenate([truth, np.full(outliers, -1)])


@pytest.mark.parametrize("seed", [0, 1])
def test_subsample_path_recovers_a_mixture_and_keeps_outliers_out(seed):
    from sklearn.metrics import adjusted_rand_score

    x, truth = sphere_mixture(seed)
    params = ClusterParams(seed=seed, max_fit_points=600)
    result = cluster_embeddings(x, params)
    assert result.labels.shape == (len(x),) and result.reduced.shape == (len(x), params.n_components)
    core = truth >= 0
    assert adjusted_rand_score(truth[core], result.labels[core]) > 0.9
    assert (result.labels[core] == NOISE).mean() < 0.05
    # Outliers assigned after the fit stay noise (those drawn into the fitted sample
    # keep the exact path's label, and UMAP + HDBSCAN absorbs them on this data).
    assert (result.labels[~core] == NOISE).mean() > 0.7
    np.testing.assert_array_equal(result.labels, cluster_embeddings(x, params).labels)
    sizes = np.bincount(result.labels[result.labels != NOISE])
    assert (np.diff(sizes) <= 0).all()


def test_nearest_by_label_and_join_radius():
    from clustering.cluster import _join_radius, _nearest_by_label

    ref = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    ref_labels = np.array([-1, 0, 1, 1])  # sorted by label
    queries = np.array([[0.99, 0.141], [0.1, 0.995], [0.7, 0.714]], dtype=np.float32)
    nearest, label, best = _nearest_by_label(queries, ref, ref_labels)
    np.testing.assert_array_equal(nearest, [0, 1, 3])
    np.testing.assert_array_equal(label, [-1, 0, 1])
    assert best[1] == pytest.approx(0.995, abs=1e-3)
    # One fellow pair (distance 0.04); a lone member has no fellow and is ignored.
    assert _join_radius(ref, ref_labels, 3.0) == pytest.approx(0.04, abs=1e-3)
    assert _join_radius(ref[:2], ref_labels[:2], 3.0) == -1.0


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            [5, 5, 2, 2, 2, -1, 9, 9, 9, 9, 2, 7],
            [2, 2, 0, 0, 0, -1, 1, 1, 1, 1, 0, 3],
        ),  # ties: lower id first
        ([-1, -1], [-1, -1]),
        ([3, 1, 1], [1, 0, 0]),
    ],
)
def test_renumber_by_descending_size(labels, expected):
    from clustering.cluster import _renumber_by_size

    np.testing.assert_array_equal(_renumber_by_size(np.array(labels)), expected)


FACETS = pl.DataFrame(
    {
        "summary": ["The user asked to fix a loop.", "The user wanted a poem."],
        "request": ["fix a loop", "write a poem"],
        "first_user": ["Why does my loop " + "x" * 2000, None],
    }
)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("summary", ["The user asked to fix a loop.", "The user wanted a poem."]),
        ("request", ["fix a loop", "write a poem"]),
        (
            "summary_request",
            ["The user asked to fix a loop. fix a loop", "The user wanted a poem. write a poem"],
        ),
        ("first_user", [("Why does my loop " + "x" * 2000)[:1000], ""]),
        (
            "summary_first_user",
            [
                "The user asked to fix a loop. " + ("Why does my loop " + "x" * 2000)[:1000],
                "The user wanted a poem.",
            ],
        ),
    ],
)
def test_embed_text_fields(field, expected):
    from clustering.embed import embed_text

    assert embed_text(FACETS, field) == expected


@pytest.mark.parametrize(
    ("field", "frame"), [("topic", FACETS), ("summary_first_user", FACETS.drop("first_user"))]
)
def test_embed_text_rejects_unknown_fields_and_missing_turns(field, frame):
    from clustering.embed import embed_text

    with pytest.raises(ValueError):
        embed_text(frame, field)


def test_with_first_user_takes_the_first_user_turn_by_conversation():
    from clustering.embed import with_first_user

    facets = pl.DataFrame({"conversation_id": ["b", "a", "c"], "summary": ["s1", "s2", "s3"]})
    conversations = pl.DataFrame(
        {
            "conversation_id": ["a", "b", "c"],
            "messages": [
                [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi [NAME]"},
                    {"role": "user", "content": "again"},
                ],
                [{"role": "user", "content": "fix my loop"}],
                [{"role": "assistant", "content": "hello"}],
            ],
        }
    )
    out = with_first_user(facets, conversations)
    assert out["conversation_id"].to_list() == ["b", "a", "c"]
    assert out["first_user"].to_list() == ["fix my loop", "hi [NAME]", None]


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        # The same partition every run: kept, renumbered by size.
        ([[1, 1, 1, 0, 0, 0, 0, -1]] * 3, [1, 1, 1, 0, 0, 0, 0, -1]),
        # Point 6 is noise in two runs of three: noise; point 3 strays once: stays with its group.
        (
            [[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, -1, 1], [0, 0, 0, 0, 1, 1, -1, 1]],
            [0, 0, 0, 0, 1, 1, -1, 1],
        ),
        # Noise in every run stays noise everywhere.
        ([[-1] * 6] * 4, [-1] * 6),
    ],
)
def test_consensus_labels_keep_agreement_and_noise(runs, expected):
    from clustering.cluster import consensus_labels

    out = consensus_labels([np.array(r) for r in runs], min_cluster_size=3, min_samples=2)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(("seed", "runs"), [(0, 1), (7, 5), (42, 10)])
def test_consensus_seeds_start_with_the_seed_and_extend_as_a_prefix(seed, runs):
    from clustering.cluster import consensus_seeds

    seeds = consensus_seeds(seed, runs)
    assert seeds[0] == seed and len(seeds) == runs == len(set(seeds))
    assert consensus_seeds(seed, runs + 3)[:runs] == seeds


def test_consensus_runs_must_be_positive():
    with pytest.raises(ValueError):
        ClusterParams(consensus_runs=0)


# With 20 outliers the smallest blob splits into small clusters (min_cluster_size is 3 here), hence the lower ARI.
@pytest.mark.parametrize(("seed", "outliers", "min_ari"), [(0, 6, 0.95), (3, 20, 0.7)])
def test_consensus_recovers_blobs_keeps_noise_and_is_deterministic(seed, outliers, min_ari):
    from sklearn.metrics import adjusted_rand_score

    from clustering.cluster import consensus_labels, consensus_seeds

    x, truth = blobs(seed=seed, sizes=(40, 30, 20), outliers=outliers)
    params = ClusterParams(seed=seed, consensus_runs=4)
    result = cluster_embeddings(x, params)
    np.testing.assert_array_equal(result.labels, cluster_embeddings(x, params).labels)
    core = truth < 3
    assert adjusted_rand_score(truth[core], result.labels[core]) > min_ari
    # It is the consensus of single runs with the derived seeds; reduced is the first run's.
    singles = [
        cluster_embeddings(x, ClusterParams(seed=s, consensus_runs=1)) for s in consensus_seeds(seed, 4)
    ]
    expected = consensus_labels(
        [s.labels for s in singles], params.cluster_size_for(len(x)), params.min_samples
    )
    np.testing.assert_array_equal(result.labels, expected)
    np.testing.assert_array_equal(result.reduced, singles[0].reduced)
    # Noise in most runs stays noise. How many points that is here depends on UMAP's floating
    # point (numba compiles for the host CPU), so the count is bounded, not pinned: at most
    # the planted outliers. The rule itself is checked on fixed runs in
    # test_consensus_labels_keep_agreement_and_noise.
    noisy = (np.stack([s.labels for s in singles]) == NOISE).mean(axis=0) > 0.5
    assert noisy.sum() <= outliers and (result.labels[noisy] == NOISE).all()


def test_consensus_only_up_to_its_size_and_with_default_sub_models():
    x, _ = blobs(seed=2)
    single = cluster_embeddings(x, ClusterParams(seed=2, consensus_runs=1))
    above = cluster_embeddings(x, ClusterParams(seed=2, consensus_runs=3, consensus_max_points=len(x) - 1))
    np.testing.assert_array_equal(single.labels, above.labels)
    np.testing.assert_array_equal(single.reduced, above.reduced)

    class Fixed:
        """A given reducer: consensus cannot reseed it, so one run is made."""

        calls = 0

        def fit_transform(self, X):  # noqa: N803
            Fixed.calls += 1
            return X[:, :2]

    cluster_embeddings(x, ClusterParams(seed=2, consensus_runs=3), reducer=Fixed())
    assert Fixed.calls == 1
