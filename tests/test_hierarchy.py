"""The cluster hierarchy: level sizes, Clio-style grouping, tree consistency and aggregation."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from clustering.aggregate import node_table, with_coordinates
from clustering.hierarchy import (
    HierarchyBuilder,
    HierarchyParams,
    ancestors,
    centroid_levels,
    cluster_means,
    distinct_sibling_titles,
    membership,
    top_level_labels,
)
from privacy.release import reattach_to_released
from summarize.llm import LLM, LLMError

TOPICS = {
    "code": [
        "Debug Python list comprehension errors",
        "Fix JavaScript promise chains",
        "Write SQL joins for sales tables",
        "Refactor Java classes for testability",
    ],
    "food": [
        "Plan vegetarian weekly meals",
        "Bake sourdough bread at home",
        "Cook quick pasta dinners",
        "Suggest desserts for a dinner party",
    ],
    "travel": [
        "Plan a budget trip through Europe",
        "Pack luggage for a long flight",
        "Choose hotels near city centres",
        "Book train journeys across countries",
    ],
}
PARENTS = {
    "code": ("Write and debug software", "Help with writing, fixing and improving program code."),
    "food": ("Cook and plan meals", "Help with recipes, baking and planning meals."),
    "travel": ("Plan trips and travel", "Help with planning journeys, bookings and packing."),
}


class TopicLLM(LLM):
    """Test double: proposes the three true parents and names a parent after its children's topic."""

    model_id = "test:topics"

    def __init__(self, fail_proposals: bool = False):
        self.fail_proposals = fail_proposals
        self.calls: list[str] = []

    def generate_json(self, request):
        prompt = request.messages[-1]["content"]
        if "Propose" in prompt:
            self.calls.append("propose")
            if self.fail_proposals:
                raise LLMError("server down")
            return json.dumps({"categories": [{"title": t, "description": d} for t, d in PARENTS.values()]})
        if "Which category" in prompt:
            self.calls.append("assign")
            group = prompt.split("\n")[0]
            topic = next(t for t, titles in TOPICS.items() if any(x in group for x in titles))
            return json.dumps({"category": PARENTS[topic][0]})
        self.calls.append("rename")
        inside = prompt.split("Titles in neighbouring")[0]
        votes = {
            topic: sum(t in inside for t in [*titles, PARENTS[topic][0]]) for topic, titles in TOPICS.items()
        }
        title, description = PARENTS[max(votes, key=votes.get)]
        return json.dumps({"title": title, "description": description})


def base_frame() -> tuple[pl.DataFrame, dict[int, str]]:
    rows, truth = [], {}
    for topic, titles in TOPICS.items():
        for title in titles:
            truth[len(rows)] = topic
            rows.append(
                {
                    "cluster_id": len(rows),
                    "title": title,
                    "description": f"Users ask to {title.lower()}.",
                    "name_source": "llm",
                }
            )
    return pl.DataFrame(rows), truth


@pytest.fixture(scope="module")
def embedder():
    from clustering.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.mark.parametrize(
    ("n_base", "expected"),
    [
        (0, [0, 0, 0]),
        (1, [1, 1, 1]),
        (5, [5, 4, 3]),
        (12, [12, 8, 6]),
        (24, [24, 15, 10]),
        (100, [100, 32, 10]),
        (2000, [2000, 200, 20]),
    ],
)
def test_level_sizes_shrink_to_the_top_target(n_base, expected):
    assert HierarchyParams().level_sizes(n_base) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": 1},
        {"top_min": 0},
        {"top_min": 5, "top_max": 3},
        {"branching": 1.0},
        {"small_day_branching": 1.0},
        {"strategy": "random"},
    ],
)
def test_invalid_params_are_rejected(kwargs):
    with pytest.raises(ValueError):
        HierarchyParams(**kwargs)


def assert_tree(nodes: pl.DataFrame, levels: int) -> None:
    ids = nodes["cluster_id"].to_list()
    assert len(ids) == len(set(ids)), "node ids are unique across levels"
    level_of = dict(zip(ids, nodes["level"].to_list(), strict=True))
    for node, parent, level in nodes.select("cluster_id", "parent_id", "level").iter_rows():
        if level == levels - 1:
            assert parent is None
        else:
            assert level_of[parent] == level + 1, f"node {node} points to a parent one level up"
    assert set(nodes["level"]) == set(range(levels))


@pytest.mark.parametrize("strategy", ["clio", "embedding"])
def test_hierarchy_groups_related_clusters(embedder, strategy):
    base, truth = base_frame()
    llm = TopicLLM()
    params = HierarchyParams(levels=3, top_min=3, top_max=3, branching=2.0, strategy=strategy)
    nodes = HierarchyBuilder(llm, embedder, params).build(base)
    assert_tree(nodes, 3)
    assert nodes.filter(pl.col("level") == 2).height == 3
    links = ancestors(nodes).filter(pl.col("level") == 2)
    top_of = dict(zip(links["base_id"].to_list(), links["cluster_id"].to_list(), strict=True))
    for topic in TOPICS:
        members = [b for b, t in truth.items() if t == topic]
        assert len({top_of[b] for b in members}) == 1, f"all {topic} clusters share one top node"
    assert len(set(top_of.values())) == 3
    mids = nodes.filter(pl.col("level") == 1)
    # Mids of one topic are named alike; siblings among them are then told apart.
    assert all(any(t.startswith(p[0]) for p in PARENTS.values()) for t in mids["title"])
    for _, group in mids.group_by("parent_id"):
        assert group["title"].str.to_lowercase().n_unique() == group.height, "sibling titles are distinct"
    # The double names every parent after its topic, so a top node with several
    # children would copy their title: rejected, it gets a keyword name instead.
    tops = nodes.filter(pl.col("level") == 2).join(
        mids.group_by(pl.col("parent_id").alias("cluster_id")).agg(pl.col("title").alias("children")),
        on="cluster_id",
    )
    for title, source, children in tops.select("title", "name_source", "children").iter_rows():
        if len(children) > 1:
            assert title not in children and source == "keywords"
        else:
            assert source == "llm"
    if strategy == "clio":
        assert "propose" in llm.calls and "assign" in llm.calls
    else:
        assert "propose" not in llm.calls


def test_failed_proposals_fall_back_to_embedding_groups(embedder):
    base, _ = base_frame()
    llm = TopicLLM(fail_proposals=True)
    params = HierarchyParams(top_min=3, top_max=3, branching=2.0, max_attempts=2, strategy="clio")
    nodes = HierarchyBuilder(llm, embedder, params).build(base)
    assert_tree(nodes, 3)
    assert llm.calls.count("propose") >= 2  # retried before falling back
    assert nodes.filter(pl.col("level") == 2).height == 3


def test_embedding_strategy_groups_by_cluster_centroids(embedder):
    """With centroids given, grouping follows the data, not the names."""
    base, truth = base_frame()
    # Centroids that put every cluster with index % 3 == k together, whatever its title says.
    rng = np.random.default_rng(1)
    anchors = rng.normal(size=(3, 16))
    vectors = np.stack([anchors[i % 3] + 0.01 * rng.normal(size=16) for i in range(len(base))])
    params = HierarchyParams(top_min=3, top_max=3, branching=2.0)
    nodes = HierarchyBuilder(TopicLLM(), embedder, params).build(base, vectors)
    assert_tree(nodes, 3)
    links = ancestors(nodes).filter(pl.col("level") == 2)
    top_of = dict(zip(links["base_id"].to_list(), links["cluster_id"].to_list(), strict=True))
    for k in range(3):
        assert len({top_of[i] for i in range(len(base)) if i % 3 == k}) == 1
    with pytest.raises(ValueError, match="base_vectors"):
        HierarchyBuilder(TopicLLM(), embedder, params).build(base, vectors[:5])


def test_small_day_still_has_three_levels(embedder):
    base, _ = base_frame()
    nodes = HierarchyBuilder(TopicLLM(), embedder).build(base.head(1))
    assert_tree(nodes, 3)
    assert nodes.height == 3


def test_same_input_gives_the_same_hierarchy(embedder):
    base, _ = base_frame()
    params = HierarchyParams(top_min=3, top_max=3, branching=2.0)
    first = HierarchyBuilder(TopicLLM(), embedder, params).build(base)
    second = HierarchyBuilder(TopicLLM(), embedder, params).build(base)
    assert first.equals(second)


def test_aggregated_counts_are_consistent_over_the_tree(embedder):
    base, _ = base_frame()
    nodes = HierarchyBuilder(
        TopicLLM(), embedder, HierarchyParams(top_min=3, top_max=3, branching=2.0)
    ).build(base)
    rng = np.random.default_rng(0)
    n = 120
    labels = rng.integers(-1, len(base), n)
    facets = pl.DataFrame(
        {
            "conversation_id": [f"c{i}" for i in range(n)],
            "account": [f"a{rng.integers(0, 30)}" for _ in range(n)],
            "concern_score": rng.uniform(1, 5, n),
            "task": rng.choice(["coding", "writing"], n),
            "categories": [["vcr"] if rng.random() < 0.2 else [] for _ in range(n)],
        }
    )
    assignments = pl.DataFrame(
        {"conversation_id": facets["conversation_id"], "account": facets["account"], "cluster_id": labels}
    )
    members = membership(with_coordinates(assignments, rng.normal(size=(n, 2))), nodes)
    table = node_table(facets, members, nodes, ["vcr"], "2026-11-02")
    clustered = int((labels >= 0).sum())
    for level in range(3):
        level_rows = table.filter(pl.col("level") == level)
        assert level_rows["conversations"].sum() == clustered, (
            "each level partitions the clustered conversations"
        )
        assert (
            level_rows["cat_vcr"].sum()
            == facets.filter(pl.Series(labels >= 0))["categories"].list.contains("vcr").sum()
        )
    children = table.filter(pl.col("level") < 2).group_by("parent_id").agg(pl.col("conversations").sum())
    parents = table.select(
        pl.col("cluster_id").alias("parent_id"), pl.col("conversations").alias("parent_conversations")
    )
    joined = children.join(parents, on="parent_id")
    assert (joined["conversations"] == joined["parent_conversations"]).all()
    for row in table.filter(pl.col("level") == 2).iter_rows(named=True):
        inside = members.filter(pl.col("cluster_id") == row["cluster_id"])
        assert row["unique_accounts"] == inside["account"].n_unique(), (
            "unique accounts are recounted, not summed"
        )
    top = top_level_labels(labels, nodes)
    assert ((top == -1) == (labels == -1)).all(), "noise stays noise at every level"


def test_withheld_parent_children_hang_from_the_next_released_ancestor():
    nodes = pl.DataFrame({"cluster_id": [0, 1, 2, 3], "parent_id": [2, 2, 3, None], "level": [0, 0, 1, 2]})
    released = nodes.filter(pl.col("cluster_id") != 2)
    repaired = reattach_to_released(released, nodes)
    assert dict(zip(repaired["cluster_id"], repaired["parent_id"], strict=True)) == {0: 3, 1: 3, 3: None}


@pytest.mark.slow
def test_real_llm_builds_a_named_hierarchy(embedder, embedded_llm):
    base, _ = base_frame()
    nodes = HierarchyBuilder(
        embedded_llm, embedder, HierarchyParams(top_min=3, top_max=3, branching=2.0)
    ).build(base)
    assert_tree(nodes, 3)
    parents = nodes.filter(pl.col("level") > 0)
    assert (parents["name_source"] == "llm").mean() >= 0.5
    assert all(3 <= len(t) <= 80 for t in parents["title"])


def test_keyword_namer_names_clusters_by_distinctive_words():
    from clustering.naming import KeywordNamer

    summaries = (
        ["The user asked to fix a python error"] * 3
        + ["The user wanted a bread recipe for baking"] * 3
        + ["noise"]
    )
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    names = KeywordNamer().name(summaries, ["python"] * 3 + ["baking"] * 3 + ["x"], labels, np.zeros((7, 2)))
    assert [n.cluster_id for n in names] == [0, 1]
    assert "python" in names[0].title and "bread" in names[1].title
    assert all(n.source == "keywords" and "user" not in n.title for n in names)


class CopyingLLM(LLM):
    """Test double: names a parent after its first child for ``copies`` attempts, then properly."""

    model_id = "test:copying"

    def __init__(self, copies: int):
        self.copies = copies
        self.attempts: list[int] = []

    def generate_json(self, request):
        prompt = request.messages[-1]["content"]
        self.attempts.append(request.attempt)
        first_child = prompt.split("\n")[1].removeprefix("- ")
        if request.attempt < self.copies:
            # Same words, other case and punctuation: still a copy.
            return json.dumps(
                {"title": first_child.upper() + "!", "description": "Help with the things in this category."}
            )
        inside = prompt.split("Titles in neighbouring")[0]
        topic = next(t for t, titles in TOPICS.items() if any(x in inside for x in titles))
        title, description = PARENTS[topic]
        return json.dumps({"title": title, "description": description})


@pytest.mark.parametrize(("copies", "source"), [(0, "llm"), (1, "llm"), (2, "llm"), (3, "keywords")])
def test_parent_title_never_copies_a_child_title(embedder, copies, source):
    base, _ = base_frame()
    llm = CopyingLLM(copies)
    # The double may name two parents alike; the sibling pass (tested below) is off to see the renames alone.
    params = HierarchyParams(
        levels=2, top_min=3, top_max=3, branching=4.0, max_attempts=3, distinct_siblings=False
    )
    nodes = HierarchyBuilder(llm, embedder, params).build(base)
    tops = nodes.filter(pl.col("level") == 1)
    assert tops.height == 3
    assert set(tops["name_source"]) == {source}
    child_titles = {t.lower() for t in base["title"]}
    assert not {t.lower().rstrip("!") for t in tops["title"]} & child_titles
    assert max(llm.attempts) == min(copies, 2), "copies are retried, at most max_attempts times"
    if source == "keywords":
        # The fallback is the parent's distinctive words, not any child's sentence.
        for title in tops["title"]:
            assert " / " in title or len(title.split()) <= 4


def sibling_nodes() -> pl.DataFrame:
    """A 3-level tree: two top nodes titled alike, two base siblings titled alike, one distinct sibling."""
    rows = [
        # cluster_id, level, parent_id, title, description
        (0, 0, 5, "Fix Python errors", "Users debug failing Python scripts."),
        (1, 0, 5, "Fix Python errors", "Users fix slow pandas dataframe joins."),
        (2, 0, 5, "Plan weekly meals", "Users plan vegetarian meals for the week."),
        (3, 0, 6, "Book train trips", "Users book train journeys abroad."),
        (4, 0, 6, "Pack for flights", "Users pack luggage for long flights."),
        (5, 1, 7, "Help with everyday tasks", "Users get help with code and food."),
        (6, 1, 8, "Help with everyday tasks", "Users get help with travel."),
        (7, 2, None, "Support daily life", "Users ask for help with code and food."),
        (8, 2, None, "support daily life!", "Users ask about travel plans."),
    ]
    return pl.DataFrame(
        {
            k: [r[j] for r in rows]
            for j, k in enumerate(["cluster_id", "level", "parent_id", "title", "description"])
        },
        schema={
            "cluster_id": pl.Int64,
            "level": pl.Int64,
            "parent_id": pl.Int64,
            "title": pl.Utf8,
            "description": pl.Utf8,
        },
    ).with_columns(name_source=pl.lit("llm"))


class ContentLLM(LLM):
    """Test double for sibling renames.

    ``mode`` ``ok`` names each node after two words of its own description, ``copy``
    answers with the current title, ``same`` gives every node one title, ``fail`` raises.
    """

    model_id = "test:content"

    def __init__(self, mode: str):
        self.mode = mode
        self.prompts: list[str] = []

    def generate_json(self, request):
        prompt = request.messages[-1]["content"]
        self.prompts.append(prompt)
        current = prompt.split("\n")[0].removeprefix("Current title: ")
        if self.mode == "fail":
            raise LLMError("server down")
        if self.mode == "copy":
            return json.dumps({"title": current, "description": "The same as before, once more."})
        if self.mode == "same":
            return json.dumps({"title": "Assorted requests", "description": "Requests of several kinds."})
        own = prompt.split("The other category")[0].split("This category: ")[1].split()
        return json.dumps(
            {"title": f"Topic {own[2]} {own[3]}", "description": f"Requests about {own[2]} {own[3]}."}
        )


def sibling_keys(nodes: pl.DataFrame) -> None:
    for _, group in nodes.group_by("level", "parent_id"):
        keys = [" ".join(t.lower().replace("!", "").split()) for t in group["title"]]
        assert len(set(keys)) == len(keys), f"sibling titles repeat: {keys}"


@pytest.mark.parametrize(
    ("mode", "sources"),
    [("ok", {"llm"}), ("copy", {"keywords"}), ("fail", {"keywords"}), ("same", {"llm", "keywords"})],
)
def test_sibling_titles_are_made_distinct_without_regrouping(mode, sources):
    nodes = sibling_nodes()
    llm = ContentLLM(mode)
    out = distinct_sibling_titles(nodes, llm, max_attempts=2)
    assert out.select("cluster_id", "level", "parent_id").equals(
        nodes.select("cluster_id", "level", "parent_id")
    )
    sibling_keys(out)
    changed = out.filter(pl.col("title") != nodes["title"])
    assert sorted(changed["cluster_id"]) == [0, 1, 7, 8]
    # Titles nobody shared are kept (5 and 6 are alike but have different parents).
    kept = [2, 3, 4, 5, 6]
    assert out.filter(pl.col("cluster_id").is_in(kept)).equals(nodes.filter(pl.col("cluster_id").is_in(kept)))
    assert set(changed["name_source"]) == sources
    # Each node is asked with the other one of its title as contrast.
    asked = [p for p in llm.prompts if "Current title: Fix Python errors" in p]
    assert any("slow pandas" in p.split("The other category")[1] for p in asked)
    assert len(llm.prompts) == (4 if mode in ("ok", "same") else 8), "rejected and failed answers are retried"
    if mode in ("copy", "fail"):
        # The fallback keeps the title and adds the node's own distinctive words.
        for node in (0, 1):
            title = out.filter(pl.col("cluster_id") == node)["title"][0]
            own, other = (set(nodes["description"][k].lower().rstrip(".").split()) for k in (node, 1 - node))
            words = set(title.removeprefix("Fix Python errors: ").split(", "))
            assert title.startswith("Fix Python errors: ") and words <= own - other


def test_identical_siblings_get_numbers():
    nodes = sibling_nodes().with_columns(description=pl.lit("Users ask for the same thing."))
    out = distinct_sibling_titles(nodes.filter(pl.col("level") == 2), ContentLLM("fail"), max_attempts=1)
    assert out["title"].to_list() == ["Support daily life", "support daily life! (2)"]
    sibling_keys(out)


def test_sibling_pass_never_changes_the_grouping(embedder):
    """Build with and without the pass: same tree; only names differ."""
    base, _ = base_frame()
    base = base.with_columns(title=pl.lit("Help with requests"))  # every base title alike
    rng = np.random.default_rng(1)
    anchors = rng.normal(size=(3, 16))
    vectors = np.stack([anchors[i % 3] + 0.01 * rng.normal(size=16) for i in range(len(base))])
    params = HierarchyParams(top_min=3, top_max=3, branching=2.0)
    with_pass = HierarchyBuilder(TopicLLM(), embedder, params).build(base, vectors)
    without = HierarchyBuilder(
        TopicLLM(), embedder, HierarchyParams(top_min=3, top_max=3, branching=2.0, distinct_siblings=False)
    ).build(base, vectors)
    shape = ["cluster_id", "level", "parent_id"]
    assert with_pass.select(shape).equals(without.select(shape))
    sibling_keys(with_pass)
    repeats = (
        without.filter(pl.col("level") == 0).group_by("parent_id").agg(pl.col("title").n_unique() < pl.len())
    )
    assert repeats["title"].any(), "the case exercises repeated sibling titles"


@pytest.mark.parametrize("linkage", ["average", "ward"])
@pytest.mark.parametrize("seed", [0, 1])
def test_centroid_levels_is_the_embedding_strategys_grouping(embedder, seed, linkage):
    """Scoring levels without names (the benchmark over seeds) sees the tree ``build`` makes."""
    base, _ = base_frame()
    vectors = np.random.default_rng(seed).normal(size=(len(base), 16))
    sizes = np.random.default_rng(seed + 10).integers(1, 30, size=len(base))
    params = HierarchyParams(top_min=3, top_max=3, branching=2.0, linkage=linkage)
    nodes = HierarchyBuilder(TopicLLM(), embedder, params).build(base, vectors, sizes)
    groupings = centroid_levels(vectors, params.level_sizes(len(base)), linkage, sizes)
    assert [len(g) for g in groupings] == [12, 6]
    node = np.arange(len(base))
    links = ancestors(nodes)
    for level, grouping in enumerate(groupings, start=1):
        node = grouping[node]
        built = links.filter(pl.col("level") == level).sort("base_id")["cluster_id"].to_numpy()
        # Same partition of the base clusters at every level (ids differ by an offset).
        assert (
            len(set(zip(node.tolist(), built.tolist(), strict=True)))
            == len(set(built.tolist()))
            == len(set(node.tolist()))
        )


def topic_centroids(seed: int, sizes=(5, 3, 2), dim=24, spread=0.25) -> tuple[np.ndarray, np.ndarray]:
    """Base-cluster centroids around a few topic directions, and each one's topic."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(len(sizes), dim))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    vectors = topics[truth] / np.sqrt(dim) + rng.normal(scale=spread / np.sqrt(dim), size=(len(truth), dim))
    return vectors, truth


@pytest.mark.parametrize("linkage", ["average", "ward"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_centroid_levels_recover_topics_with_either_linkage(linkage, seed):
    from sklearn.metrics import adjusted_rand_score

    vectors, truth = topic_centroids(seed)
    mid, top = centroid_levels(vectors, [10, 5, 3], linkage)
    assert len(set(top.tolist())) == 3 and len(mid) == 10 and len(top) == 5
    assert adjusted_rand_score(truth, top[mid]) == 1.0
    again = centroid_levels(vectors, [10, 5, 3], linkage)
    np.testing.assert_array_equal(again[1][again[0]], top[mid])


def test_average_linkage_tolerates_a_zero_centroid():
    vectors, _ = topic_centroids(0)
    vectors[0] = 0
    (grouping,) = centroid_levels(vectors, [10, 3], "average")
    assert sorted(set(grouping.tolist())) == [0, 1, 2]


def test_unknown_linkage_is_rejected():
    with pytest.raises(ValueError):
        HierarchyParams(linkage="single")


def brute_force_average(points: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Merge the clusters whose members' mean pairwise cosine distance is smallest, down to ``k`` groups."""
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    groups = [[c] for c in sorted(set(labels.tolist()))]
    while len(groups) > k:
        members = [unit[np.isin(labels, g)] for g in groups]
        pairs = [
            (float(np.mean(1 - members[a] @ members[b].T)), a, b)
            for a in range(len(groups))
            for b in range(a + 1, len(groups))
        ]
        _, a, b = min(pairs)
        groups[a] += groups.pop(b)
    out = np.empty(len(set(labels.tolist())), dtype=np.int64)
    for g, clusters in enumerate(groups):
        out[clusters] = g
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_average_linkage_is_the_mean_distance_over_members(seed):
    """Grouping clusters of unequal sizes by their means and sizes equals average linkage over their points."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 25, size=8)
    labels = np.repeat(np.arange(8), counts)
    points = rng.normal(size=(8, 6))[labels] + rng.normal(scale=0.8, size=(len(labels), 6))
    ids, means, sizes = cluster_means(points, labels)
    assert ids == list(range(8)) and sizes.tolist() == counts.tolist()
    (grouping,) = centroid_levels(means, [8, 3], "average", sizes)
    assert adjusted_rand_score(brute_force_average(points, labels, 3), grouping) == 1.0


def test_cluster_means_skip_noise():
    vectors = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0], [5.0, 5.0]])
    ids, means, counts = cluster_means(vectors, np.array([0, 0, -1, 2]))
    assert ids == [0, 2] and counts.tolist() == [2, 1]
    np.testing.assert_allclose(means, [[0.5, 0.5], [2**-0.5, 2**-0.5]])
