"""Multi-level cluster hierarchy built the way Clio builds it.

From the base clusters' names, each level up is made by:

1. embedding the children's names and grouping them into neighbourhoods (k-means),
2. asking the LLM to propose parent categories for each neighbourhood,
3. deduplicating the proposals across neighbourhoods down to the level's target
   size (Ward clustering of the proposals' embeddings, one representative each),
4. assigning every child to a parent: the LLM chooses among the
   ``assign_candidates`` most similar proposals (constrained to their titles),
   with the most similar one where the LLM fails, and
5. renaming each parent from the children it actually received, with its
   nearest sibling parents as contrast. A title that copies one of the
   children's titles is rejected and retried; a parent whose every attempt
   failed or copied gets its distinctive words among its siblings (c-TF-IDF)
   as a contrastive keyword name (a parent with a single child may keep the
   child's name: it is the same group).

This repeats until the top level has ``top_min``..``top_max`` nodes (fewer when
the day has few base clusters). That is the ``clio`` strategy. The default,
``embedding``, skips steps 2-4 and groups children by agglomerative clustering
of the base clusters' vectors (``linkage``: by default average linkage, the mean
cosine distance over the members of two groups, computed from each cluster's
mean member vector and size; or Ward of unit centroids; without vectors, Ward
over the names' embeddings), then names each
parent with the LLM as in step 5: with a small CPU model the LLM's proposals and
assignments scored worse against labelled data than grouping by the data itself
(see ``benchmarks/clustering.py``). Grouping by centroids is also the fallback
for a level whose proposals all failed. Names come only from cluster names, never
from conversations.

Last, once every level's grouping is final, siblings that got the same title
(case and punctuation ignored) are renamed contrastively
(``distinct_sibling_titles``); this pass only renames, so no grouping depends on it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from pydantic import BaseModel, Field, ValidationError

from clustering.embed import Embedder
from clustering.naming import ClusterName
from summarize.llm import LLM, JsonRequest, LLMError, M, generate_validated

HIERARCHY_PROMPT_VERSION = "hierarchy-v2"
STRATEGIES = ("clio", "embedding")
LINKAGES = ("average", "ward")


@dataclass(frozen=True)
class HierarchyParams:
    """Shape of the hierarchy: how many levels and how wide each is.

    ``linkage`` is how the ``embedding`` strategy groups the base clusters:
    ``average`` (mean cosine distance over members, see ``centroid_levels``) or
    ``ward`` (of unit centroids); without vectors it groups the names'
    embeddings by Ward. Average was chosen on the benchmark's tuning split
    (disjoint from its reported mix; ``--parts consensus``): over eight seeds it
    scored the top level's ARI and NMI above Ward, and its worst seed was the
    best of the options tried (Ward, size-weighted Ward, complete linkage,
    average linkage of unit centroids, of nearest-neighbour affinity).

    The top level has ``top_min``..``top_max`` nodes, but on a day with few base
    clusters at most one per ``small_day_branching`` of them (a day of 24 base
    clusters gets a top of 10, one of 12 a top of 6). On the same tuning split a
    top of 10 over 20-27 base clusters scored above ``ceil(n_base / branching)``
    (6-7 nodes) on the worst seed's top-level ARI and NMI and on mean NMI.
    """

    levels: int = 3
    top_min: int = 10
    top_max: int = 20
    branching: float = 4.0
    small_day_branching: float = 2.0
    neighbourhood_size: int = 40
    strategy: str = "embedding"
    assign_candidates: int = 4
    max_attempts: int = 3
    distinct_siblings: bool = True
    linkage: str = "average"
    seed: int = 42

    def __post_init__(self) -> None:
        if self.levels < 2:
            raise ValueError("a hierarchy needs at least 2 levels (base and top)")
        if not 1 <= self.top_min <= self.top_max:
            raise ValueError("need 1 <= top_min <= top_max")
        if self.branching <= 1 or self.small_day_branching <= 1:
            raise ValueError("branching and small_day_branching must be above 1")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown hierarchy strategy {self.strategy!r}; choose one of {STRATEGIES}")
        if self.linkage not in LINKAGES:
            raise ValueError(f"unknown linkage {self.linkage!r}; choose one of {LINKAGES}")

    def level_sizes(self, n_base: int) -> list[int]:
        """Target node count per level, base first, shrinking geometrically to the top."""
        if n_base == 0:
            return [0] * self.levels
        top = round(n_base / self.branching ** (self.levels - 1))
        top = min(
            self.top_max, max(min(self.top_min, math.ceil(n_base / self.small_day_branching)), top), n_base
        )
        sizes = [n_base]
        for level in range(1, self.levels):
            size = round(n_base * (top / n_base) ** (level / (self.levels - 1)))
            sizes.append(max(top, min(size, sizes[-1])))
        return sizes


class ParentCategory(BaseModel):
    """A proposed parent category."""

    title: str = Field(min_length=3, max_length=80)
    description: str = Field(min_length=10, max_length=200)


def _proposal_schema(count: int) -> dict:
    item = {
        **ParentCategory.model_json_schema(),
        "additionalProperties": False,
        "required": ["title", "description"],
    }
    return {
        "type": "object",
        "properties": {"categories": {"type": "array", "items": item, "minItems": 1, "maxItems": count}},
        "required": ["categories"],
        "additionalProperties": False,
    }


class Proposals(BaseModel):
    """The LLM's answer to a proposal request."""

    categories: list[ParentCategory] = Field(min_length=1)


PROPOSE_SYSTEM = """\
You organise an aggregate usage report into a hierarchy. You see the titles of \
groups of requests. Propose broader parent categories that together cover all of \
them; each parent should cover several of the titles. Parent titles are short \
imperative phrases, broader than the titles they cover, with no names, places or \
other specific details. Answer with a JSON object {"categories": [{"title": ..., \
"description": ...}, ...]}."""

PROPOSE_EXAMPLE_USER = """\
Titles:
- Debug React state updates
- Fix Python pandas merge errors
- Write SQL queries for sales reports
- Plan a week of vegetarian meals
- Suggest recipes for a dinner party

Propose 2 parent categories."""
PROPOSE_EXAMPLE_ANSWER = json.dumps(
    {
        "categories": [
            {
                "title": "Write and debug software and queries",
                "description": "Help with writing, fixing and optimising code and database queries.",
            },
            {
                "title": "Plan meals and cooking",
                "description": "Help with meal planning, recipes and cooking for events.",
            },
        ]
    }
)

RENAME_SYSTEM = """\
You name a category in an aggregate usage report. You see the titles of the groups \
it contains and, for contrast, titles from neighbouring categories. Write a title \
that is broader than every contained title yet specific enough to tell it apart \
from its neighbours, and a one-sentence description. Never reuse a contained \
title. No names, places or other specific details. Answer with a JSON object with "title" (2 to 8 words) and "description"."""

RENAME_EXAMPLE_USER = """\
Titles in this category:
- Debug React state updates
- Fix CSS layout problems in web pages

Titles in neighbouring categories (not this one):
- Write SQL queries for sales reports

Write the title and description."""
RENAME_EXAMPLE_ANSWER = json.dumps(
    {
        "title": "Build and debug web front ends",
        "description": "Help with writing and fixing web page code, styling and interactive components.",
    }
)

ASSIGN_SYSTEM = """\
You sort groups of requests into categories of an aggregate usage report. You see \
one group's title and description and a list of categories. Choose the category \
that fits the group best. Answer with a JSON object {"category": ...}."""


class Assignment(BaseModel):
    """The LLM's choice of parent for one child."""

    category: str


NAME_SCHEMA = {
    **ClusterName.model_json_schema(),
    "additionalProperties": False,
    "required": ["title", "description"],
}


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _ward_groups(vectors: np.ndarray, k: int) -> np.ndarray:
    """Group unit vectors into ``k`` groups (Ward linkage); labels 0..k-1."""
    if k >= len(vectors):
        return np.arange(len(vectors))
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(vectors)


def cluster_means(vectors: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Per non-noise cluster: its id, the mean of its members' unit vectors (not normalised) and its size.

    These are what ``average`` linkage reads: the mean's dot product with another
    cluster's is their members' mean cosine similarity, pair by pair.
    """
    ids = sorted(int(c) for c in set(np.asarray(labels).tolist()) - {-1})
    if not ids:
        return [], np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0)), np.zeros(0, dtype=np.int64)
    unit = _unit(np.asarray(vectors, dtype=float))
    means = np.stack([unit[labels == c].mean(axis=0) for c in ids])
    counts = np.array([int((labels == c).sum()) for c in ids], dtype=np.int64)
    return ids, means, counts


def _average_groups(means: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Average linkage over members: group rows into ``k`` groups; labels 0..k-1 by first row.

    The distance between two groups is 1 minus the dot product of their
    weight-averaged means: with each row the mean of a cluster's unit member
    vectors and its size as weight, that is the mean cosine distance over every
    pair of members (UPGMA over points, computed on clusters). Ties merge the
    lowest indices first, so the result is deterministic.
    """
    n = len(means)
    if k >= n:
        return np.arange(n)
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    distance = 1 - means @ means.T
    np.fill_diagonal(distance, np.inf)
    weight = np.asarray(weights, dtype=float).copy()
    owner = np.arange(n)  # each row's current group (the index of its first member)
    for _ in range(n - k):
        flat = int(np.argmin(distance))
        a, b = divmod(flat, n)
        a, b = min(a, b), max(a, b)
        # Lance-Williams for average linkage: the merged group's distance is the weighted mean.
        merged = (weight[a] * distance[a] + weight[b] * distance[b]) / (weight[a] + weight[b])
        distance[a], distance[:, a] = merged, merged
        distance[a, a] = np.inf
        distance[b], distance[:, b] = np.inf, np.inf
        weight[a] += weight[b]
        owner[owner == b] = a
    _, dense = np.unique(owner, return_inverse=True)
    return dense.astype(np.int64)


def _centroid_groups(
    vectors: np.ndarray, k: int, linkage: str, weights: np.ndarray | None = None
) -> np.ndarray:
    """Group rows into ``k`` groups by ``linkage``: ``average`` (``_average_groups``) or ``ward`` (of unit rows)."""
    if linkage == "ward":
        return _ward_groups(_unit(vectors), k)
    return _average_groups(vectors, np.ones(len(vectors)) if weights is None else weights, k)


def _parent_vectors(
    vectors: np.ndarray, weights: np.ndarray, grouping: np.ndarray, linkage: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each parent's vector and weight: the weighted mean (``average``) or the unit mean (``ward``)."""
    groups = range(int(grouping.max()) + 1)
    total = np.array([weights[grouping == g].sum() for g in groups])
    if linkage == "ward":
        return _unit(np.stack([vectors[grouping == g].mean(axis=0) for g in groups])), total
    return np.stack(
        [(vectors[grouping == g] * weights[grouping == g, None]).sum(axis=0) / total[g] for g in groups]
    ), total


def centroid_levels(
    base_vectors: np.ndarray,
    sizes: Sequence[int],
    linkage: str = HierarchyParams.linkage,
    weights: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The ``embedding`` strategy's grouping, level by level, from base clusters' vectors alone.

    ``sizes`` are the target node counts per level, base first (``HierarchyParams.level_sizes``).
    Each level up groups the level below by agglomerative clustering
    (``linkage``, as ``HierarchyParams.linkage``). With ``average``, pass each
    base cluster's mean of unit member vectors and its size as ``weights``
    (``cluster_means``): groups are then merged by the mean cosine distance over
    their members, and a parent's vector is its children's weighted mean
    (without ``weights`` every cluster weighs the same). With ``ward``, vectors
    are unit-normalised and a parent's vector is the unit mean of its children's.
    Returns one array per level but the top: each of that level's nodes' parent
    index. Names play no part: this is the grouping ``HierarchyBuilder.build``
    makes with the ``embedding`` strategy and the same vectors, so its levels
    can be scored without naming anything.
    """
    vectors = np.asarray(base_vectors, dtype=float)
    if not len(vectors):
        return [np.zeros(0, dtype=np.int64) for _ in sizes[1:]]
    if linkage == "ward":
        vectors = _unit(vectors)
    weight = np.ones(len(vectors)) if weights is None else np.asarray(weights, dtype=float)
    out = []
    for target in sizes[1:]:
        grouping = _centroid_groups(vectors, target, linkage, weight)
        out.append(grouping)
        vectors, weight = _parent_vectors(vectors, weight, grouping, linkage)
    return out


def _neighbourhoods(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Split children into neighbourhoods of about ``size`` by k-means."""
    k = math.ceil(len(vectors) / size)
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, random_state=seed, n_init=4).fit_predict(vectors)


def _name_text(titles: Sequence[str], descriptions: Sequence[str]) -> list[str]:
    return [f"{t}: {d}" for t, d in zip(titles, descriptions, strict=True)]


def _title_key(title: str) -> str:
    """A title compared loosely: lower case, letters and digits only."""
    return " ".join(re.findall(r"[a-z0-9]+", title.lower()))


def _generate_accepted(
    llm: LLM, requests: list[JsonRequest], model: type[M], max_attempts: int, accept: Callable[[int, M], bool]
) -> list[M | None]:
    """``generate_validated``, where an answer must also pass ``accept(index, answer)``.

    A valid answer that is not accepted is retried like an invalid one (at
    temperature 0.7 with a new seed); None where no attempt was accepted.
    """
    out: list[M | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(max_attempts):
        if not pending:
            break
        batch = [
            replace(
                requests[k], temperature=requests[k].temperature if attempt == 0 else 0.7, attempt=attempt
            )
            for k in pending
        ]
        retry = []
        for k, answer in zip(pending, llm.generate_json_many(batch), strict=True):
            try:
                if isinstance(answer, LLMError):
                    raise answer
                parsed = model.model_validate(json.loads(answer))
            except (LLMError, ValidationError, json.JSONDecodeError):
                retry.append(k)
                continue
            if accept(k, parsed):
                out[k] = parsed
            else:
                retry.append(k)
        pending = retry
    return out


def _keyword_parent_names(titles: list[str], parent: np.ndarray, ids: list[int]) -> list[tuple[str, str]]:
    """Contrastive fallback names: each parent's most distinctive words among its siblings (c-TF-IDF)."""
    from clustering.naming import KeywordNamer

    names = KeywordNamer(top_words=4).name(titles, [""] * len(titles), parent, np.zeros((len(titles), 1)))
    by_id = {n.cluster_id: n.title for n in names}
    out = []
    for p in ids:
        inside = [titles[i] for i in np.flatnonzero(parent == p)]
        out.append((by_id[p], f"Groups such as: {'; '.join(inside[:3])}."[:300]))
    return out


DISTINCT_SYSTEM = """\
You rename a category in an aggregate usage report. Another category under the same \
parent has the same title, so this title must change. You see what this category \
covers and, for contrast, what the other category with that title covers. Write a \
new title that fits this category and tells it apart from the other one, and a \
one-sentence description. No names, places or other specific details. Answer with \
a JSON object with "title" (2 to 8 words) and "description"."""


def _sibling_request(
    title: str, description: str, inside: list[str], others: list[tuple[str, list[str]]]
) -> JsonRequest:
    """The contrastive rename request for one node whose title a sibling shares."""
    user = f"Current title: {title}\nThis category: {description}"
    if inside:
        user += "\nIt contains:\n" + "\n".join(f"- {t}" for t in inside[:8])
    user += "\n\nThe other category with this title (not this one):"
    for other_description, other_inside in others[:3]:
        user += f"\n- {other_description}"
        if other_inside:
            user += " It contains: " + "; ".join(other_inside[:4]) + "."
    user += "\n\nWrite the new title and description."
    messages = [{"role": "system", "content": DISTINCT_SYSTEM}, {"role": "user", "content": user}]
    return JsonRequest(messages, NAME_SCHEMA, 120)


def _distinct_keywords(documents: list[str], title: str, count: int = 2) -> list[list[str]]:
    """Per document, its ``count`` most distinctive words among ``documents`` (c-TF-IDF) not already in ``title``."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    from clustering.naming import _STOP_WORDS

    in_title = set(re.findall(r"[a-z0-9]+", title.lower()))
    vectorizer = CountVectorizer(
        stop_words=["user", "users", "ask", "asked", "asks", "help", *_STOP_WORDS, *in_title]
    )
    try:
        weights = TfidfTransformer().fit_transform(vectorizer.fit_transform(documents)).toarray()
    except ValueError:  # nothing but stop words
        return [[] for _ in documents]
    vocabulary = vectorizer.get_feature_names_out()
    # A word every document shares does not tell them apart.
    shared = (weights > 0).all(axis=0)
    out = []
    for row in weights:
        order = np.argsort(-row, kind="stable")
        out.append([str(vocabulary[j]) for j in order if row[j] > 0 and not shared[j]][:count])
    return out


def distinct_sibling_titles(nodes: pl.DataFrame, llm: LLM, max_attempts: int = 3) -> pl.DataFrame:
    """Rename nodes whose title a sibling shares, without changing any grouping.

    Siblings are nodes with the same parent (top-level nodes are siblings of each
    other). Titles are compared loosely (case and punctuation ignored). Every node
    of a set of siblings sharing a title is renamed by the LLM, with the others of
    the set as contrast: what each covers is its description and its children's
    titles. An answer is accepted only if its title differs from every sibling's
    current title and from its own children's; retried otherwise. Where no attempt
    is accepted, or two answers collide, the node keeps its title followed by its
    most distinctive words among the set (c-TF-IDF over description and children's
    titles), source ``keywords``; where even those words are the same, the first
    keeps its title and the others get a number. Only ``title``, ``description``
    and ``name_source`` change.

    Args:
        nodes: the hierarchy's nodes (``HierarchyBuilder.build`` output).
        llm: the namer's LLM.
        max_attempts: attempts per rename request.

    Returns:
        ``nodes`` with sibling titles distinct, rows and order unchanged.
    """
    if not len(nodes):
        return nodes
    ids = nodes["cluster_id"].to_list()
    parents = nodes["parent_id"].to_list()
    levels = nodes["level"].to_list()
    titles = nodes["title"].to_list()
    descriptions = nodes["description"].to_list()
    sources = nodes["name_source"].to_list()
    children: dict[int, list[str]] = {}
    for parent, title in zip(parents, titles, strict=True):
        if parent is not None:
            children.setdefault(parent, []).append(title)
    siblings: dict[tuple[int, int | None], list[int]] = {}
    for i, (level, parent) in enumerate(zip(levels, parents, strict=True)):
        siblings.setdefault((level, parent), []).append(i)
    duplicates: list[tuple[list[int], list[int]]] = []  # (all siblings, those sharing one title)
    for members in siblings.values():
        by_key: dict[str, list[int]] = {}
        for i in members:
            by_key.setdefault(_title_key(titles[i]), []).append(i)
        duplicates += [(members, same) for same in by_key.values() if len(same) > 1]
    if not duplicates:
        return nodes
    targets, requests, forbidden = [], [], []
    for members, same in duplicates:
        for i in same:
            inside = children.get(ids[i], [])
            others = [(descriptions[j], children.get(ids[j], [])) for j in same if j != i]
            requests.append(_sibling_request(titles[i], descriptions[i], inside, others))
            targets.append(i)
            taken = {_title_key(titles[j]) for j in members}
            forbidden.append(taken | ({_title_key(t) for t in inside} if len(inside) > 1 else set()))
    answers = _generate_accepted(
        llm, requests, ClusterName, max_attempts, lambda k, name: _title_key(name.title) not in forbidden[k]
    )
    answer_of = dict(zip(targets, answers, strict=True))
    new_titles, new_descriptions, new_sources = list(titles), list(descriptions), list(sources)
    renamed: set[int] = set()
    for members, same in duplicates:
        # Titles to avoid: siblings that are not renamed, and those renamed already.
        used = {_title_key(new_titles[j]) for j in members if j not in answer_of or j in renamed}
        documents = [" ".join([descriptions[i], *children.get(ids[i], [])]) for i in same]
        keywords = _distinct_keywords(documents, titles[same[0]])
        for i, words in zip(same, keywords, strict=True):
            answer = answer_of[i]
            if isinstance(answer, ClusterName) and _title_key(answer.title) not in used:
                new_titles[i], new_descriptions[i], new_sources[i] = answer.title, answer.description, "llm"
            else:
                title = f"{titles[i]}: {', '.join(words)}" if words else titles[i]
                number = 2
                while _title_key(title) in used:
                    title, number = f"{titles[i]} ({number})", number + 1
                if title != titles[i]:
                    new_titles[i], new_sources[i] = title, "keywords"
            used.add(_title_key(new_titles[i]))
            renamed.add(i)
    return nodes.with_columns(
        pl.Series("title", new_titles, dtype=pl.Utf8),
        pl.Series("description", new_descriptions, dtype=pl.Utf8),
        pl.Series("name_source", new_sources, dtype=pl.Utf8),
    )


class HierarchyBuilder:
    """Builds parent levels over named base clusters with an LLM and an embedder."""

    def __init__(self, llm: LLM, embedder: Embedder, params: HierarchyParams | None = None):
        self.llm = llm
        self.embedder = embedder
        self.params = params or HierarchyParams()

    def _ask(self, requests: list[JsonRequest], model: type[M]) -> list[M | None]:
        return generate_validated(self.llm, requests, model, self.params.max_attempts)

    def _propose(self, titles: list[str], groups: np.ndarray, target: int) -> list[ParentCategory]:
        """Parent proposals from each neighbourhood, about ``target`` in all."""
        requests = []
        for g in sorted(set(groups.tolist())):
            members = [titles[i] for i in np.flatnonzero(groups == g)]
            want = max(1, round(len(members) * target / len(titles)))
            user = (
                "Titles:\n" + "\n".join(f"- {t}" for t in members) + f"\n\nPropose {want} parent categories."
            )
            messages = [
                {"role": "system", "content": PROPOSE_SYSTEM},
                {"role": "user", "content": PROPOSE_EXAMPLE_USER},
                {"role": "assistant", "content": PROPOSE_EXAMPLE_ANSWER},
                {"role": "user", "content": user},
            ]
            requests.append(JsonRequest(messages, _proposal_schema(want), 60 + 70 * want))
        proposals: list[ParentCategory] = []
        for answer in self._ask(requests, Proposals):
            if isinstance(answer, Proposals):
                proposals.extend(answer.categories)
        return proposals

    def _group_clio(
        self, titles: list[str], descriptions: list[str], vectors: np.ndarray, target: int
    ) -> np.ndarray | None:
        """Children's parent index by LLM proposals, dedupe and best-parent assignment."""
        groups = _neighbourhoods(vectors, self.params.neighbourhood_size, self.params.seed)
        proposals = self._propose(titles, groups, target)
        if not proposals:
            return None
        candidates = _unit(
            self.embedder.encode(_name_text([p.title for p in proposals], [p.description for p in proposals]))
        )
        keep = list(range(len(proposals)))
        if len(candidates) > target:
            merged = _ward_groups(candidates, target)
            keep = []
            for g in sorted(set(merged.tolist())):
                idx = np.flatnonzero(merged == g)
                centre = candidates[idx].mean(axis=0)
                keep.append(int(idx[np.argmax(candidates[idx] @ centre)]))
        chosen = [proposals[k] for k in keep]
        candidates = candidates[keep]
        parent = self._assign(titles, descriptions, vectors, [c.title for c in chosen], candidates)
        _, dense = np.unique(parent, return_inverse=True)
        return dense.astype(np.int64)

    def _assign(
        self,
        titles: list[str],
        descriptions: list[str],
        vectors: np.ndarray,
        parent_titles: list[str],
        parent_vectors: np.ndarray,
    ) -> np.ndarray:
        """Each child's parent: the LLM picks among the most similar candidates (embedding argmax if it fails)."""
        similarity = vectors @ parent_vectors.T
        parent = np.argmax(similarity, axis=1)
        k = min(self.params.assign_candidates, len(parent_titles))
        if k < 2:
            return parent
        shortlists = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        requests = []
        for i, shortlist in enumerate(shortlists):
            options = list(dict.fromkeys(parent_titles[j] for j in shortlist))
            user = (
                f"Group: {titles[i]}\nDescription: {descriptions[i]}\n\nCategories:\n"
                + "\n".join(f"- {o}" for o in options)
                + "\n\nWhich category fits the group best?"
            )
            schema = {
                "type": "object",
                "properties": {"category": {"type": "string", "enum": options}},
                "required": ["category"],
                "additionalProperties": False,
            }
            messages = [{"role": "system", "content": ASSIGN_SYSTEM}, {"role": "user", "content": user}]
            requests.append(JsonRequest(messages, schema, 40))
        for i, (shortlist, answer) in enumerate(
            zip(shortlists, self._ask(requests, Assignment), strict=True)
        ):
            if isinstance(answer, Assignment):
                picked = [j for j in shortlist if parent_titles[j] == answer.category]
                if picked:
                    parent[i] = picked[0]
        return parent

    def _rename(
        self,
        titles: list[str],
        descriptions: list[str],
        sources: list[str],
        parent: np.ndarray,
        vectors: np.ndarray,
    ) -> list[tuple[str, str, str]]:
        """(title, description, source) per parent, from its children's titles.

        A parent's title must differ from each of its children's titles (a small
        model often copies one): such answers are retried, and where every attempt
        copies or fails the parent gets a contrastive keyword name. A parent with a
        single child is the same group: it may keep the child's title, and keeps
        the child's name where the LLM fails.
        """
        ids = sorted(set(parent.tolist()))
        centres = _unit(np.stack([vectors[parent == p].mean(axis=0) for p in ids]))
        requests, taken = [], []
        for k, p in enumerate(ids):
            inside = [titles[i] for i in np.flatnonzero(parent == p)]
            nearest = [ids[j] for j in np.argsort(-(centres @ centres[k])) if ids[j] != p][:2]
            outside = [titles[i] for i in np.flatnonzero(np.isin(parent, nearest))][:4]
            user = "Titles in this category:\n" + "\n".join(f"- {t}" for t in inside[:12])
            if outside:
                user += "\n\nTitles in neighbouring categories (not this one):\n" + "\n".join(
                    f"- {t}" for t in outside
                )
            user += "\n\nWrite the title and description."
            messages = [
                {"role": "system", "content": RENAME_SYSTEM},
                {"role": "user", "content": RENAME_EXAMPLE_USER},
                {"role": "assistant", "content": RENAME_EXAMPLE_ANSWER},
                {"role": "user", "content": user},
            ]
            requests.append(JsonRequest(messages, NAME_SCHEMA, 120))
            taken.append({_title_key(t) for t in inside} if len(inside) > 1 else set())
        answers = _generate_accepted(
            self.llm,
            requests,
            ClusterName,
            self.params.max_attempts,
            lambda j, name: _title_key(name.title) not in taken[j],
        )
        fallback = _keyword_parent_names(titles, parent, ids)
        names = []
        for k, (p, answer) in enumerate(zip(ids, answers, strict=True)):
            children = np.flatnonzero(parent == p)
            if isinstance(answer, ClusterName):
                names.append((answer.title, answer.description, "llm"))
            elif len(children) == 1:
                names.append((titles[children[0]], descriptions[children[0]], sources[children[0]]))
            else:
                names.append((*fallback[k], "keywords"))
        return names

    def build(
        self, base: pl.DataFrame, base_vectors: np.ndarray | None = None, base_sizes: np.ndarray | None = None
    ) -> pl.DataFrame:
        """All nodes of the hierarchy: the base clusters plus every parent level.

        Args:
            base: one row per base cluster with ``cluster_id``, ``title``, ``description``.
            base_vectors: each base cluster's vector in the conversation embedding
                space, in ``cluster_id`` order: the mean of its members' unit
                vectors (``cluster_means``; a unit centroid also works). The
                ``embedding`` strategy groups by these as ``centroid_levels`` does;
                without them it groups by the embeddings of the names (Ward).
            base_sizes: each base cluster's member count, in the same order (the
                weights of ``average`` linkage; all equal when not given).

        Returns:
            ``cluster_id, level, parent_id, title, description, name_source`` for
            every node; ids of parents continue after the largest base id, and
            ``parent_id`` is null at the top level.
        """
        base = base.sort("cluster_id")
        sizes = self.params.level_sizes(len(base))
        level_ids = base["cluster_id"].to_list()
        titles = base["title"].to_list()
        descriptions = base["description"].to_list()
        sources = base["name_source"].to_list() if "name_source" in base.columns else ["llm"] * len(base)
        rows: dict[str, list[int | str | None]] = {
            "cluster_id": [],
            "level": [],
            "parent_id": [],
            "title": [],
            "description": [],
            "name_source": [],
        }
        next_id = (max(level_ids) + 1) if level_ids else 0
        data_vectors = (
            np.asarray(base_vectors, dtype=float) if base_vectors is not None and len(base) else None
        )
        if data_vectors is not None and len(data_vectors) != len(base):
            raise ValueError(f"base_vectors has {len(data_vectors)} rows for {len(base)} base clusters")
        if data_vectors is not None and self.params.linkage == "ward":
            data_vectors = _unit(data_vectors)
        weights = np.ones(len(base)) if base_sizes is None else np.asarray(base_sizes, dtype=float)
        if len(weights) != len(base):
            raise ValueError(f"base_sizes has {len(weights)} rows for {len(base)} base clusters")
        for level in range(1, self.params.levels + 1):
            parents: list[int | None]
            if level == self.params.levels or not level_ids:
                parents = [None] * len(level_ids)
                parent_names: list[tuple[str, str, str]] = []
            else:
                vectors = _unit(self.embedder.encode(_name_text(titles, descriptions)))
                target = sizes[level]
                grouping = None
                if self.params.strategy == "clio" and target < len(level_ids):
                    grouping = self._group_clio(titles, descriptions, vectors, target)
                if grouping is None:
                    # One step of centroid_levels (the whole grouping when no level used the LLM's).
                    if data_vectors is not None:
                        grouping = _centroid_groups(data_vectors, target, self.params.linkage, weights)
                    else:  # the names' embeddings: Ward (``linkage`` was measured on data centroids only)
                        grouping = _ward_groups(vectors, target)
                parent_names = self._rename(titles, descriptions, sources, grouping, vectors)
                parents = [next_id + int(g) for g in grouping]
                if data_vectors is not None:
                    data_vectors, weights = _parent_vectors(
                        data_vectors, weights, grouping, self.params.linkage
                    )
            for node, parent, t, d, s in zip(level_ids, parents, titles, descriptions, sources, strict=True):
                rows["cluster_id"].append(int(node))
                rows["level"].append(level - 1)
                rows["parent_id"].append(parent)
                rows["title"].append(t)
                rows["description"].append(d)
                rows["name_source"].append(s)
            if not parent_names:
                break
            level_ids = [next_id + k for k in range(len(parent_names))]
            titles = [n[0] for n in parent_names]
            descriptions = [n[1] for n in parent_names]
            sources = [n[2] for n in parent_names]
            next_id += len(parent_names)
        nodes = pl.DataFrame(
            rows,
            schema={
                "cluster_id": pl.Int64,
                "level": pl.Int64,
                "parent_id": pl.Int64,
                "title": pl.Utf8,
                "description": pl.Utf8,
                "name_source": pl.Utf8,
            },
        )
        # Grouping is final here: the pass below only renames.
        if self.params.distinct_siblings:
            nodes = distinct_sibling_titles(nodes, self.llm, self.params.max_attempts)
        return nodes


def build_hierarchy(
    base: pl.DataFrame,
    llm: LLM,
    embedder: Embedder,
    params: HierarchyParams | None = None,
    base_vectors: np.ndarray | None = None,
    base_sizes: np.ndarray | None = None,
) -> pl.DataFrame:
    """Nodes of every level over the named base clusters (see ``HierarchyBuilder.build``)."""
    return HierarchyBuilder(llm, embedder, params).build(base, base_vectors, base_sizes)


def ancestors(nodes: pl.DataFrame) -> pl.DataFrame:
    """Each base cluster's node at every level: ``base_id, level, cluster_id`` (level 0 is itself)."""
    parent = dict(zip(nodes["cluster_id"].to_list(), nodes["parent_id"].to_list(), strict=True))
    base_ids = nodes.filter(pl.col("level") == 0)["cluster_id"].to_list()
    rows: dict[str, list[int]] = {"base_id": [], "level": [], "cluster_id": []}
    for base_id in base_ids:
        node: int | None = base_id
        level = 0
        while node is not None:
            rows["base_id"].append(base_id)
            rows["level"].append(level)
            rows["cluster_id"].append(node)
            node = parent.get(node)
            level += 1
    return pl.DataFrame(rows, schema={"base_id": pl.Int64, "level": pl.Int64, "cluster_id": pl.Int64})


def membership(assignments: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """Assignments expanded to every level: one row per conversation and node it belongs to.

    Noise (-1) belongs to no node and is dropped. Columns of ``assignments`` are
    kept, with ``cluster_id`` replaced by the node id and ``level`` added.
    """
    links = ancestors(nodes)
    return (
        assignments.filter(pl.col("cluster_id") >= 0)
        .rename({"cluster_id": "base_id"})
        .join(links, on="base_id")
        .drop("base_id")
    )


def top_level_labels(base_labels: np.ndarray, nodes: pl.DataFrame) -> np.ndarray:
    """Each conversation's top-level node id (-1 stays -1), from its base label."""
    links = ancestors(nodes)
    top = links.sort("level").group_by("base_id", maintain_order=True).last()
    mapping = dict(zip(top["base_id"].to_list(), top["cluster_id"].to_list(), strict=True))
    return np.array([mapping.get(int(x), -1) if x >= 0 else -1 for x in base_labels], dtype=np.int64)
