"""Cluster hierarchy quality against third-party labels, vs BERTopic and Kura, and clustering scale.

Data: a seeded, stratified mix from ``../shared/data`` (labels nobody here wrote):

========================  ==========  ==============  ==================================
source                    share       coarse label    fine label
========================  ==========  ==============  ==================================
AILuminate demo prompts   40 %        ``hazard``      hazard code (12: the ``spc_*`` codes
                                                      count as one, ``spc``)
Arena-Hard v2.0           30 %        subcategory     subcategory (``coding``, ``math``,
                                                      ``creative_writing``)
Arena-Hard v0.1           10 %        ``arena_v01``   its topic cluster (pairs of prompts)
OASST (root-to-leaf)      10 %        ``general``     ``oasst``
HH-RLHF harmless (chosen) 10 %        ``general``     ``hh_rlhf``
========================  ==========  ==============  ==================================

The coarse label is the source (Arena-Hard v2.0 split by its own subcategory);
it is what a top level ought to separate (harmful requests, coding, maths,
writing, general use). Arena-Hard v0.1 has no coarse topic of its own, so it
keeps its source as coarse label. Conversations are not redacted first (the
benchmark measures clustering, not redaction).

Systems, all on the same conversations in one run:

* ``lookout``: LLM facets (``summarize.extract.FacetExtractor`` with the embedded
  LLM; cached under ``.lookout/bench-cache`` by the facet cache key) -> embed
  ``clustering.embed.embed_text`` (``--field``; default ``summary_first_user``:
  the summary followed by the first user turn, chosen on the seed-0 n=140 mix
  over five clustering seeds before the reported run; ``field_comparison`` gives
  every field on the reported mix) -> ``cluster_embeddings`` -> ``ClusterNamer``
  -> ``build_hierarchy`` (its last step, ``distinct_sibling_titles``, is run and
  counted apart: ``sibling_title_repeats_before`` / ``sibling_title_repeats``);
  the top level is the hierarchy's highest level. LLM answers (names, parents)
  are cached by the full request, so reruns are cheap. Clustering parameters
  are ``ClusterParams``' defaults, chosen on a tuning split disjoint from this
  mix (see ``ClusterParams``), never on this mix.
* ``bertopic``: BERTopic with its defaults and the same embedding model on the
  raw first user turn (its UMAP seeded for reproducibility); its top level is
  ``reduce_topics`` to the number of Lookout's top nodes.
* ``kura``: run when the package is importable and can reach an LLM; otherwise
  its ``error`` says why.

Metrics: adjusted Rand index and NMI (scikit-learn) of the base level against the
fine labels and of the top level against the coarse labels, over every item with
noise (-1) counted as one group of its own; ``noise_share``; ``name_accuracy``:
the share of base clusters whose name embedding (title and description, or
BERTopic's keywords) is more similar to its own cluster's centroid than to any
other cluster's, in the space that was clustered. ``seconds`` is the clustering
wall time from texts (embedding, clustering, naming, hierarchy); Lookout's facet
extraction is reported apart as ``facet_seconds`` (summed from the cache).

Over seeds: on a mix this small one clustering seed can move the top-level
scores by more than the gap between the systems (Lookout's consensus of
``ClusterParams.consensus_runs`` seeded runs per clustering seed damps this), so
``over_seeds`` repeats the clustering (no names needed: the default hierarchy groups by centroids only,
``centroid_levels``) and BERTopic for each of ``--seeds`` and gives the mean,
standard deviation and per-seed scores; BERTopic's top level is reduced to
Lookout's top node count of the same seed. The named single run above uses
``--seed``.

Consensus (``--parts consensus``): on the tuning split (the mixes of ``--parts
tune``, disjoint from the reported mix), the number of consensus runs
(``ClusterParams.consensus_runs``) and the hierarchy's linkage
(``HierarchyParams.linkage``) over ``CONSENSUS_SEEDS``, with BERTopic on the same
mixes and seeds; ``consensus_tuning`` keeps every (mix, seed) score. The
defaults were chosen there, by the worst (mix, seed) top-level ARI and NMI.

Facets: rows are cached by ``facet_cache_key``; rows cached under an earlier
prompt version in ``REUSED_PROMPT_VERSIONS`` are reused where the current
version has none (the facet fields read here did not change).

Scale: ``cluster_embeddings`` on seeded Gaussian mixtures of 384 dimensions at
each ``--scale`` size, each in a fresh process (peak RSS from ``ru_maxrss``),
with a wall-clock limit per size.

    python -m benchmarks.clustering [--n 240] [--seed 0] [--seeds 0,1,2,3,4] [--field summary_first_user]
        [--scale 10000,100000,1000000] [--parts quality,scale,tune,consensus] [--facets-only] [--no-clio]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import itertools
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
CACHE = REPO / ".lookout" / "bench-cache"
OUT = REPO / "benchmarks" / "results" / "clustering.json"

SHARES = {"ailuminate": 0.4, "arena_v2": 0.3, "arena_v01": 0.1, "oasst": 0.1, "hh_rlhf": 0.1}
TIMESTAMP = "2026-11-01T12:00:00+00:00"


# ---------------------------------------------------------------- data


def _ailuminate() -> list[dict]:
    path = DATA / "ailuminate_demo" / "airr_official_1.0_demo_en_us_prompt_set_release.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        hazard = "spc" if r["hazard"].startswith("spc_") else r["hazard"]
        out.append(
            {
                "id": r["release_prompt_id"],
                "coarse": "hazard",
                "fine": hazard,
                "messages": [{"role": "user", "content": r["prompt_text"]}],
            }
        )
    return out


def _arena(version: str) -> list[dict]:
    path = DATA / "arena_hard_prompts" / f"arena-hard-{version}_question.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        r = json.loads(line)
        if version == "v2.0":
            coarse = fine = r["subcategory"]
        else:
            coarse, fine = "arena_v01", r["cluster"]
        out.append(
            {
                "id": r["uid"],
                "coarse": coarse,
                "fine": fine,
                "messages": [{"role": "user", "content": r["prompt"]}],
            }
        )
    return out


def _oasst() -> list[dict]:
    """One linear chat per tree: from the root, always the best-ranked reply."""
    out = []
    for line in (DATA / "oasst_en100" / "en_100_tree.jsonl").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        tree = json.loads(line)
        node, messages = tree["prompt"], []
        while node is not None and len(messages) < 6:
            messages.append(
                {"role": "user" if node["role"] == "prompter" else "assistant", "content": node["text"]}
            )
            replies = [r for r in node.get("replies") or [] if not r.get("deleted")]
            node = (
                min(replies, key=lambda r: (r.get("rank") is None, r.get("rank") or 0)) if replies else None
            )
        out.append(
            {"id": tree["message_tree_id"], "coarse": "general", "fine": "oasst", "messages": messages}
        )
    return out


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def _hh_rlhf() -> list[dict]:
    out = []
    with gzip.open(
        DATA / "hh_rlhf_harmless_test" / "harmless-base_test.jsonl.gz", "rt", encoding="utf-8"
    ) as f:
        for k, line in enumerate(f):
            parts = _HH_TURN.split(json.loads(line)["chosen"])
            messages = [
                {"role": "user" if who == "Human" else "assistant", "content": text.strip()}
                for who, text in zip(parts[1::2], parts[2::2], strict=True)
                if text.strip()
            ]
            if any(m["role"] == "user" for m in messages):
                out.append({"id": f"hh-{k}", "coarse": "general", "fine": "hh_rlhf", "messages": messages})
    return out


def _stratified(rows: list[dict], k: int, rng: random.Random) -> list[dict]:
    """``k`` rows, as even as possible over the fine labels (shuffled within each)."""
    by_label: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_label[r["fine"]].append(r)
    for members in by_label.values():
        rng.shuffle(members)
    labels = sorted(by_label)
    rng.shuffle(labels)
    out: list[dict] = []
    depth = 0
    while len(out) < k and any(len(m) > depth for m in by_label.values()):
        for label in labels:
            if len(out) < k and len(by_label[label]) > depth:
                out.append(by_label[label][depth])
        depth += 1
    return out


def _ordered_source(source: str, rng: random.Random) -> list[dict]:
    """Every usable row of one source in a seeded order; any prefix is a fair sample.

    AILuminate and Arena-Hard v2.0 go round-robin over their fine labels; Arena-Hard
    v0.1 goes by whole topic clusters (both prompts), so fine labels have members.
    """
    if source == "ailuminate":
        return _stratified(_ailuminate(), 10**9, rng)
    if source == "arena_v2":
        return _stratified(_arena("v2.0"), 10**9, rng)
    if source == "arena_v01":
        rows = _arena("v0.1")
        clusters = sorted({r["fine"] for r in rows})
        rng.shuffle(clusters)
        by_cluster = defaultdict(list)
        for r in rows:
            by_cluster[r["fine"]].append(r)
        return [r for c in clusters for r in by_cluster[c]]
    rows = _oasst() if source == "oasst" else _hh_rlhf()
    rng.shuffle(rows)
    return rows


def load_mix(n: int, seed: int) -> pl.DataFrame:
    """The labelled mix: ``conversation_id, source, coarse, fine, messages, first_user``.

    Each source contributes its share of ``n`` as a prefix of its seeded order, so
    a smaller ``n`` with the same seed is a subset of a larger one (and reuses its
    cached facets). Rows are interleaved by their relative position in each source.
    """
    rng = random.Random(seed)
    counts = {s: int(round(n * share)) for s, share in SHARES.items()}
    counts["ailuminate"] += n - sum(counts.values())
    picked: list[tuple[float, str, dict]] = []
    for source in SHARES:
        rows = _ordered_source(source, rng)[: counts[source]]
        picked += [((k + 0.5) / len(rows), source, r) for k, r in enumerate(rows)]
    picked.sort(key=lambda p: (p[0], list(SHARES).index(p[1])))
    return pl.DataFrame(
        {
            "conversation_id": [f"{s}:{r['id']}" for _, s, r in picked],
            "source": [s for _, s, _ in picked],
            "coarse": [r["coarse"] for _, _, r in picked],
            "fine": [r["fine"] for _, _, r in picked],
            "messages": [r["messages"] for _, _, r in picked],
            "first_user": [
                next(m["content"] for m in r["messages"] if m["role"] == "user") for _, _, r in picked
            ],
        }
    )


# ---------------------------------------------------------------- facets (cached)

FACET_COLUMNS = ("summary", "request", "task", "topic", "concerning", "categories")
# Cached facet rows of these prompt versions are reused when the current version has
# none: facets-v3 changed no prompt text, it only added concern_score columns, which
# clustering does not read.
REUSED_PROMPT_VERSIONS = ("facets-v2",)


def _facet_cache_path(model_id: str) -> Path:
    return CACHE / f"facets-{re.sub(r'[^A-Za-z0-9._-]', '_', model_id)}.jsonl"


def facets_for(mix: pl.DataFrame, *, chunk: int = 4, llm_threads: int = 2) -> tuple[pl.DataFrame, float]:
    """Facets for every conversation, from the cache or the embedded LLM.

    Rows are cached by ``facet_cache_key`` (text, prompt version, model, taxonomy),
    appended chunk by chunk so an interrupted run keeps its progress. Returns the
    mix with the facet columns (null where extraction failed) and the summed
    extraction seconds of the rows used.
    """
    from summarize.extract import FacetExtractor, FacetFailure, facet_cache_key
    from summarize.llm import LLMSpec
    from summarize.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    model_id = LLMSpec().model_id
    path = _facet_cache_path(model_id)
    cached: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            row = json.loads(line)
            cached[row["cache_key"]] = row
    # Clustering reads no categories: the extractor keeps the LLM's own (categorizer "llm").
    keys = [facet_cache_key(m, model_id, taxonomy, "llm") for m in mix["messages"].to_list()]
    for version in REUSED_PROMPT_VERSIONS:
        # Rows of an earlier prompt version whose facets this benchmark reads are unchanged.
        older = [
            facet_cache_key(m, model_id, taxonomy, "llm", prompt_version=version)
            for m in mix["messages"].to_list()
        ]
        keys = [k if k in cached or o not in cached else o for k, o in zip(keys, older, strict=True)]
    todo = [i for i, k in enumerate(keys) if k not in cached]
    if todo:
        from summarize.embedded import EmbeddedLLM

        extractor = FacetExtractor(EmbeddedLLM(n_threads=llm_threads), taxonomy)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = mix.to_dicts()
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            began = time.perf_counter()
            convs = [
                {
                    "conversation_id": rows[i]["conversation_id"],
                    "account": rows[i]["source"],
                    "timestamp": TIMESTAMP,
                    "messages": rows[i]["messages"],
                }
                for i in part
            ]
            results = extractor.extract_many(convs)
            per = (time.perf_counter() - began) / len(part)
            with open(path, "a", encoding="utf-8") as sink:
                for i, result in zip(part, results, strict=True):
                    row: dict[str, Any] = {"cache_key": keys[i], "seconds": per}
                    if isinstance(result, FacetFailure):
                        row["error"] = result.reason
                    else:
                        row.update({c: result[c] for c in FACET_COLUMNS})
                    cached[keys[i]] = row
                    sink.write(json.dumps(row) + "\n")
            print(
                f"facets {min(start + chunk, len(todo))}/{len(todo)} ({per:.1f} s each)",
                file=sys.stderr,
                flush=True,
            )
    got = [cached[k] for k in keys]
    facets = pl.DataFrame(
        {
            **{c: [g.get(c) for g in got] for c in FACET_COLUMNS if c != "categories"},
            "categories": [g.get("categories") or [] for g in got],
        },
        schema_overrides={"concerning": pl.Int64, "categories": pl.List(pl.Utf8)},
    )
    return pl.concat([mix, facets], how="horizontal"), float(sum(g["seconds"] for g in got))


# ---------------------------------------------------------------- metrics


def label_scores(truth: list[str], labels: np.ndarray) -> tuple[float, float]:
    """ARI and NMI over every item; noise (-1) counts as one group of its own."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return float(adjusted_rand_score(truth, labels)), float(normalized_mutual_info_score(truth, labels))


def name_accuracy(
    name_vectors: np.ndarray, name_ids: list[int], vectors: np.ndarray, labels: np.ndarray
) -> float | None:
    """Share of clusters whose name vector is most similar to its own cluster's centroid."""
    ids = sorted(set(labels.tolist()) - {-1})
    if not ids or not name_ids:
        return None
    centroids = np.stack([vectors[labels == c].mean(axis=0) for c in ids])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    names = name_vectors / np.linalg.norm(name_vectors, axis=1, keepdims=True)
    best = np.argmax(names @ centroids.T, axis=1)
    return float(np.mean([ids[b] == c for b, c in zip(best, name_ids, strict=True)]))


def _scores(mix: pl.DataFrame, base: np.ndarray, top: np.ndarray) -> dict[str, float]:
    base_ari, base_nmi = label_scores(mix["fine"].to_list(), base)
    top_ari, top_nmi = label_scores(mix["coarse"].to_list(), top)
    return {
        "top_ari": top_ari,
        "top_nmi": top_nmi,
        "base_ari": base_ari,
        "base_nmi": base_nmi,
        "noise_share": float(np.mean(base == -1)),
        "base_clusters": int(len(set(base.tolist()) - {-1})),
        "top_nodes": int(len(set(top.tolist()) - {-1})),
    }


# ---------------------------------------------------------------- systems


class CachedLLM:
    """Wraps an LLM and keeps its answers on disk, keyed by model and full request.

    Reruns of the benchmark then skip LLM calls they already made; the result
    records how many calls were answered from the cache and adds the seconds
    those answers took when they were made to the reported time.
    """

    def __init__(self, make_llm, model_id: str, directory: Path):
        import diskcache

        from summarize.llm import LLM

        self._make, self._llm = make_llm, None
        self.model_id = model_id
        self.cache = diskcache.Cache(str(directory))
        self.hits = self.misses = 0
        self.cached_seconds = 0.0  # what the cached answers took when they were made
        outer = self

        class _Proxy(LLM):
            model_id = outer.model_id

            def generate_json(self, request):
                return outer._one(request)

        self.proxy = _Proxy()

    def _one(self, request) -> str:
        key = hashlib.sha256(
            json.dumps(
                [
                    self.model_id,
                    request.messages,
                    request.schema,
                    request.max_tokens,
                    request.temperature,
                    request.attempt,
                ],
                sort_keys=True,
            ).encode()
        ).hexdigest()
        if key in self.cache:
            self.hits += 1
            answer, seconds = self.cache[key]
            self.cached_seconds += seconds
            return answer
        if self._llm is None:
            self._llm = self._make()
        self.misses += 1
        started = time.perf_counter()
        answer = self._llm.generate_json(request)  # an LLMError propagates and is not cached
        self.cache[key] = (answer, time.perf_counter() - started)
        return answer


def run_lookout(
    mix: pl.DataFrame, field: str, seed: int, llm_threads: int = 2, with_clio: bool = True
) -> tuple[dict, np.ndarray]:
    """Lookout on facets; returns its scores and its top-level labels."""
    from clustering.cluster import ClusterParams, cluster_embeddings
    from clustering.embed import SentenceTransformerEmbedder, embed_text
    from clustering.hierarchy import HierarchyParams, distinct_sibling_titles
    from clustering.naming import ClusterNamer
    from summarize.embedded import EmbeddedLLM
    from summarize.llm import LLMSpec

    with_facets, facet_seconds = facets_for(mix, llm_threads=llm_threads)
    ok = with_facets["summary"].is_not_null().to_numpy()
    facets = with_facets.filter(pl.Series(ok))
    cached = CachedLLM(lambda: EmbeddedLLM(n_threads=llm_threads), LLMSpec().model_id, CACHE / "llm")
    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    vectors = embedder.encode(embed_text(facets, field))
    result = cluster_embeddings(vectors, ClusterParams(seed=seed))
    names = ClusterNamer(cached.proxy).name(
        facets["summary"].to_list(), facets["topic"].to_list(), result.labels, vectors
    )
    base = pl.DataFrame(
        {
            "cluster_id": [n.cluster_id for n in names],
            "title": [n.title for n in names],
            "description": [n.description for n in names],
            "name_source": [n.source for n in names],
        },
        schema={"cluster_id": pl.Int64, "title": pl.Utf8, "description": pl.Utf8, "name_source": pl.Utf8},
    )
    raw_nodes, top = build_levels(
        base, result.labels, vectors, cached.proxy, embedder, seed, distinct_siblings=False
    )
    # The sibling-title pass, as build_hierarchy runs it last (grouping is final before it).
    nodes = distinct_sibling_titles(raw_nodes, cached.proxy, HierarchyParams().max_attempts)
    measured = time.perf_counter() - started
    clio_all = None
    if with_clio:
        # The Clio strategy (LLM proposes and assigns parents), scored on the same base clusters.
        _, clio_top = build_levels(
            base, result.labels, vectors, cached.proxy, embedder, seed, strategy="clio"
        )
        clio_all = np.full(len(mix), -1, dtype=np.int64)
        clio_all[ok] = clio_top
    named = nodes.filter(pl.col("level") == 0).sort("cluster_id")
    name_vectors = embedder.encode(
        [f"{t}: {d}" for t, d in zip(named["title"], named["description"], strict=True)]
    )
    # Conversations without facets count as noise.
    base_all = np.full(len(mix), -1, dtype=np.int64)
    base_all[ok] = result.labels
    top_all = np.full(len(mix), -1, dtype=np.int64)
    top_all[ok] = top
    out = {
        **_scores(mix, base_all, top_all),
        "name_accuracy": name_accuracy(name_vectors, named["cluster_id"].to_list(), vectors, result.labels),
        "seconds": measured + cached.cached_seconds,
        "seconds_measured": measured,
        "facet_seconds": facet_seconds,
        "facet_failures": int((~ok).sum()),
        "levels": int(nodes["level"].max()) + 1 if len(nodes) else 0,
        "names_by_llm": int((nodes["name_source"] == "llm").sum()),
        "names_fallback": int((nodes["name_source"] != "llm").sum()),
        "sibling_title_repeats_before": sibling_repeats(raw_nodes),
        "sibling_title_repeats": sibling_repeats(nodes),
        "sibling_titles_changed": int((nodes["title"] != raw_nodes["title"]).sum()),
        "field_comparison": compare_fields(mix, facets, ok, embedder, seed),
        "hierarchy_strategy": "embedding",
        "clio_strategy": (
            {k: v for k, v in _scores(mix, base_all, clio_all).items() if k.startswith("top_")}
            if clio_all is not None
            else {"error": "not run (--no-clio)"}
        ),
        "llm_calls": cached.misses,
        "llm_calls_cached": cached.hits,
        "embed_field": field,
    }
    return out, top_all, vectors, ok


def sibling_repeats(nodes: pl.DataFrame) -> int:
    """Nodes whose title (case and punctuation ignored) an earlier sibling already has."""
    from clustering.hierarchy import _title_key

    keys = nodes.select(
        "level", "parent_id", pl.col("title").map_elements(_title_key, return_dtype=pl.Utf8).alias("key")
    )
    return int(keys.height - keys.unique().height)


def lookout_structure(mix: pl.DataFrame, vectors: np.ndarray, ok: np.ndarray, seed: int) -> tuple[dict, int]:
    """Base clusters (default parameters) and the default hierarchy for one clustering seed, scored without names."""
    from clustering.cluster import ClusterParams, cluster_embeddings

    return structure_scores(mix, vectors, ok, cluster_embeddings(vectors, ClusterParams(seed=seed)).labels)


def structure_scores(
    mix: pl.DataFrame,
    vectors: np.ndarray,
    ok: np.ndarray,
    labels: np.ndarray,
    top_nodes: int | None = None,
    linkage: str | None = None,
) -> tuple[dict, int]:
    """Scores of base labels and of the default hierarchy's top level over them, and the top node count.

    The ``embedding`` strategy groups by centroids only (``centroid_levels``), so no LLM call is needed.
    ``top_nodes`` fixes the top level's size instead of ``HierarchyParams``' rule; ``linkage``
    replaces ``HierarchyParams.linkage``.
    """
    from clustering.hierarchy import HierarchyParams, centroid_levels, cluster_means

    ids, means, counts = cluster_means(vectors, labels)
    # A branching just above 1 makes the rule's top exactly min(top_nodes, base clusters).
    params = (
        HierarchyParams()
        if top_nodes is None
        else HierarchyParams(top_min=top_nodes, top_max=top_nodes, branching=1.001)
    )
    node = np.arange(len(ids))
    for grouping in centroid_levels(means, params.level_sizes(len(ids)), linkage or params.linkage, counts):
        node = grouping[node]
    index = {c: k for k, c in enumerate(ids)}
    top = np.array([node[index[int(x)]] if x >= 0 else -1 for x in labels], dtype=np.int64)
    base_all = np.full(len(mix), -1, dtype=np.int64)
    base_all[ok] = labels
    top_all = np.full(len(mix), -1, dtype=np.int64)
    top_all[ok] = top
    scores = _scores(mix, base_all, top_all)
    return scores, scores["top_nodes"]


def over_seeds(mix: pl.DataFrame, vectors: np.ndarray, ok: np.ndarray, seeds: list[int]) -> dict[str, dict]:
    """Lookout's and BERTopic's structure scores over several clustering seeds (mean, sd, per seed).

    One seed's top-level scores swing by more than the gap between systems on a
    mix this small; the mean over seeds is the comparison to read. BERTopic's top
    level is reduced to Lookout's top node count of the same seed.
    """
    from clustering.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    first_user = embedder.encode(mix["first_user"].to_list())
    runs: dict[str, list[dict]] = {"lookout": [], "bertopic": []}
    for seed in seeds:
        scores, n_top = lookout_structure(mix, vectors, ok, seed)
        runs["lookout"].append({"seed": seed, **scores})
        runs["bertopic"].append(
            {"seed": seed, **bertopic_fit(mix, first_user, max(1, n_top), seed, embedder.model)[0]}
        )
    out = {}
    for system, rows in runs.items():
        summary: dict[str, Any] = {"seeds": seeds}
        for metric in (
            "top_ari",
            "top_nmi",
            "base_ari",
            "base_nmi",
            "noise_share",
            "top_nodes",
            "base_clusters",
        ):
            values = np.array([r[metric] for r in rows], dtype=float)
            summary[f"{metric}_mean"], summary[f"{metric}_sd"] = float(values.mean()), float(values.std())
        summary["per_seed"] = rows
        out[system] = summary
    return out


def compare_fields(
    mix: pl.DataFrame, facets: pl.DataFrame, ok: np.ndarray, embedder, seed: int
) -> dict[str, dict]:
    """Base clusters from each facet text: ARI/NMI against the fine and the coarse labels (no LLM)."""
    from clustering.cluster import ClusterParams, cluster_embeddings
    from clustering.embed import EMBED_FIELDS, embed_text

    out = {}
    for field in EMBED_FIELDS:
        labels = np.full(len(mix), -1, dtype=np.int64)
        labels[ok] = cluster_embeddings(
            embedder.encode(embed_text(facets, field)), ClusterParams(seed=seed)
        ).labels
        fine = label_scores(mix["fine"].to_list(), labels)
        coarse = label_scores(mix["coarse"].to_list(), labels)
        out[field] = {
            "base_ari_fine": fine[0],
            "base_nmi_fine": fine[1],
            "base_ari_coarse": coarse[0],
            "base_nmi_coarse": coarse[1],
            "noise_share": float(np.mean(labels == -1)),
        }
    return out


# Tuning split: mixes drawn with other seeds, minus every conversation of the reported mix.
TUNE_MIXES = ((170, 1), (330, 1), (660, 2))
TUNE_SEEDS = (0, 1, 2, 3)
TUNE_REDUCERS = ((10, 5), (15, 5), (30, 5), (10, 10), (15, 10))  # UMAP (n_neighbors, n_components)
TUNE_FRACTIONS = (0.01, 0.015, 0.02, 0.03, 0.04)
TUNE_MIN_SAMPLES = (2, 3, None)  # None: HDBSCAN's min_samples = min_cluster_size
TUNE_METHODS = ("eom", "leaf")
TUNE_TOP_NODES = (2, 3, 4, 6, 8, 10)  # fixed top-level sizes compared with the hierarchy's rule


class _Precomputed:
    """A reducer that returns coordinates computed once (one UMAP fit serves many HDBSCAN settings)."""

    def __init__(self, reduced: np.ndarray):
        self.reduced = reduced

    def fit_transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.reduced


def run_tuning(exclude: list[str]) -> dict:
    """Base-clustering parameters scored on the tuning split (never on the reported mix).

    Every UMAP setting in ``TUNE_REDUCERS`` and HDBSCAN setting (fraction of the
    day for ``min_cluster_size``, ``min_samples``, selection method), over
    ``TUNE_SEEDS``, on each tuning mix. The tuning split is embedded on the first
    user turn: its facets would take hours of LLM time. Settings are ranked by the
    mean over mixes and seeds of the top level's (ARI + NMI) / 2, the score the
    issue asks Lookout to win on. For the best setting, ``top_count`` scores the
    hierarchy's rule for the top level's size against fixed sizes.
    """
    from sklearn.cluster import HDBSCAN

    from clustering.cluster import ClusterParams, cluster_embeddings, default_reducer
    from clustering.embed import SentenceTransformerEmbedder, embed_text

    embedder = SentenceTransformerEmbedder()
    rows = []
    sizes = []
    runs: dict[tuple, list[tuple[pl.DataFrame, np.ndarray, np.ndarray]]] = defaultdict(list)
    for n, mix_seed in TUNE_MIXES:
        mix = load_mix(n, mix_seed).filter(~pl.col("conversation_id").is_in(exclude))
        sizes.append(len(mix))
        vectors = embedder.encode(embed_text(mix, "first_user"))
        ok = np.ones(len(mix), dtype=bool)
        for (neighbors, components), seed in itertools.product(TUNE_REDUCERS, TUNE_SEEDS):
            base = ClusterParams(n_neighbors=neighbors, n_components=components, seed=seed)
            reduced = _Precomputed(np.asarray(default_reducer(len(vectors), base).fit_transform(vectors)))
            for fraction, min_samples, method in itertools.product(
                TUNE_FRACTIONS, TUNE_MIN_SAMPLES, TUNE_METHODS
            ):
                params = replace(base, min_cluster_fraction=fraction, min_samples=min_samples)
                clusterer = HDBSCAN(
                    min_cluster_size=params.cluster_size_for(len(vectors)),
                    min_samples=min_samples,
                    cluster_selection_method=method,
                    copy=True,
                )
                labels = cluster_embeddings(vectors, params, reducer=reduced, clusterer=clusterer).labels
                scores, _ = structure_scores(mix, vectors, ok, labels)
                runs[(neighbors, components, fraction, min_samples, method)].append((mix, vectors, labels))
                rows.append(
                    {
                        "mix": f"n{len(mix)}-seed{mix_seed}",
                        "n_neighbors": neighbors,
                        "n_components": components,
                        "min_cluster_fraction": fraction,
                        "min_samples": min_samples,
                        "method": method,
                        "seed": seed,
                        **scores,
                    }
                )
    keys = ["n_neighbors", "n_components", "min_cluster_fraction", "min_samples", "method"]
    table = (
        pl.DataFrame(rows)
        .with_columns(top=(pl.col("top_ari") + pl.col("top_nmi")) / 2)
        .group_by([*keys, "mix"])
        .agg(pl.col("top", "top_ari", "top_nmi", "base_ari", "base_nmi", "noise_share", "top_nodes").mean())
        .group_by(keys)
        .agg(
            pl.col("top", "top_ari", "top_nmi", "base_ari", "base_nmi", "noise_share", "top_nodes").mean(),
            pl.struct("mix", "top").alias("by_mix"),
        )
        .sort("top", *keys, descending=[True] + [False] * len(keys), nulls_last=True)
    )
    defaults = ClusterParams()
    default_row = table.filter(
        (pl.col("n_neighbors") == defaults.n_neighbors)
        & (pl.col("n_components") == defaults.n_components)
        & (pl.col("min_cluster_fraction") == defaults.min_cluster_fraction)
        & (pl.col("min_samples") == defaults.min_samples)
        & (pl.col("method") == "eom")
    )
    # The top level's size for the best setting: the hierarchy's rule against fixed counts.
    best = table.row(0, named=True)
    top_count: dict[str, float] = {}
    for top_nodes in (None, *TUNE_TOP_NODES):
        per_mix: dict[int, list[float]] = defaultdict(list)
        for mix, vectors, labels in runs[tuple(best[k] for k in keys)]:
            scores, _ = structure_scores(mix, vectors, np.ones(len(mix), dtype=bool), labels, top_nodes)
            per_mix[len(mix)].append((scores["top_ari"] + scores["top_nmi"]) / 2)
        top_count["rule" if top_nodes is None else str(top_nodes)] = float(
            np.mean([np.mean(v) for v in per_mix.values()])
        )
    return {
        "field": "first_user",
        "mix_sizes": sizes,
        "top_count": top_count,
        "seeds": list(TUNE_SEEDS),
        "settings": table.height,
        "best": table.head(10).to_dicts(),
        "defaults": default_row.to_dicts(),
        "defaults_rank": int(table.with_row_index().join(default_row.select(keys), on=keys)["index"][0]) + 1
        if default_row.height
        else None,
    }


CONSENSUS_RUNS = (1, 5, 10, 20)
CONSENSUS_SEEDS = tuple(range(8))
CONSENSUS_LINKAGES = ("average", "ward")


def run_consensus_tuning(exclude: list[str]) -> dict:
    """Consensus runs and the hierarchy's linkage, scored on the tuning split (never on the reported mix).

    For each tuning mix (first user turn, as ``run_tuning``) and seed in
    ``CONSENSUS_SEEDS``, the default clustering is run once per seed of
    ``consensus_seeds(seed, max(CONSENSUS_RUNS))``; the consensus of the first R
    runs is what ``cluster_embeddings`` gives with ``consensus_runs=R`` (the
    derived seeds of a smaller R are a prefix). Each (R, linkage) is scored by
    the top level's ARI and NMI: the mean over mixes and seeds, the standard
    deviation over seeds of the per-seed mean over mixes, and the worst
    (mix, seed). BERTopic (defaults, as in ``over_seeds``, top reduced to the
    default's top node count) is scored on the same mixes and seeds for reference.
    """
    from clustering.cluster import ClusterParams, cluster_embeddings, consensus_labels, consensus_seeds
    from clustering.embed import SentenceTransformerEmbedder, embed_text

    embedder = SentenceTransformerEmbedder()
    defaults = ClusterParams()
    rows, bertopic_rows = [], []
    for n, mix_seed in TUNE_MIXES:
        mix = load_mix(n, mix_seed).filter(~pl.col("conversation_id").is_in(exclude))
        name = f"n{len(mix)}-seed{mix_seed}"
        vectors = embedder.encode(embed_text(mix, "first_user"))
        ok = np.ones(len(mix), dtype=bool)
        size = defaults.cluster_size_for(len(mix))
        for seed in CONSENSUS_SEEDS:
            runs = [
                cluster_embeddings(vectors, ClusterParams(seed=s, consensus_runs=1)).labels
                for s in consensus_seeds(seed, max(CONSENSUS_RUNS))
            ]
            default_top = None
            for runs_used, linkage in itertools.product(CONSENSUS_RUNS, CONSENSUS_LINKAGES):
                labels = (
                    runs[0]
                    if runs_used == 1
                    else consensus_labels(runs[:runs_used], size, defaults.min_samples)
                )
                scores, n_top = structure_scores(mix, vectors, ok, labels, linkage=linkage)
                rows.append({"mix": name, "seed": seed, "runs": runs_used, "linkage": linkage, **scores})
                if runs_used == defaults.consensus_runs and linkage == "average":
                    default_top = n_top
            scores = bertopic_fit(mix, vectors, max(1, default_top or 1), seed, embedder.model)[0]
            bertopic_rows.append({"mix": name, "seed": seed, **scores})
    metrics = ("top_ari", "top_nmi", "base_ari", "base_nmi", "noise_share", "top_nodes", "base_clusters")

    def summarise(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
        per_seed = frame.group_by([*keys, "seed"]).agg(pl.col(*metrics).mean())
        worst = frame.group_by(keys).agg(
            pl.col("top_ari").min().alias("top_ari_worst"), pl.col("top_nmi").min().alias("top_nmi_worst")
        )
        return (
            per_seed.group_by(keys)
            .agg(
                *[pl.col(m).mean().alias(f"{m}_mean") for m in metrics],
                pl.col("top_ari").std(ddof=0).alias("top_ari_sd"),
                pl.col("top_nmi").std(ddof=0).alias("top_nmi_sd"),
            )
            .join(worst, on=keys)
            .sort(keys)
        )

    table = pl.DataFrame(rows)
    return {
        "field": "first_user",
        "seeds": list(CONSENSUS_SEEDS),
        "mixes": sorted(set(table["mix"].to_list())),
        "defaults": {"consensus_runs": defaults.consensus_runs, "linkage": "average"},
        "settings": summarise(table, ["runs", "linkage"]).to_dicts(),
        "bertopic": summarise(pl.DataFrame(bertopic_rows).with_columns(k=pl.lit("bertopic")), ["k"])
        .drop("k")
        .to_dicts()[0],
        "per_run": rows,
        "bertopic_per_run": bertopic_rows,
    }


def build_levels(
    base: pl.DataFrame,
    labels: np.ndarray,
    vectors: np.ndarray,
    llm,
    embedder,
    seed: int,
    strategy: str = "embedding",
    distinct_siblings: bool = True,
) -> tuple[pl.DataFrame, np.ndarray]:
    """The hierarchy over the named base clusters (as the asset builds it), and each item's top-level node."""
    from clustering.hierarchy import HierarchyParams, build_hierarchy, cluster_means, top_level_labels

    _, means, counts = cluster_means(vectors, labels)
    params = HierarchyParams(seed=seed, strategy=strategy, distinct_siblings=distinct_siblings)
    nodes = build_hierarchy(base, llm, embedder, params, means, counts)
    return nodes, top_level_labels(labels, nodes)


def bertopic_fit(
    mix: pl.DataFrame, vectors: np.ndarray, n_top: int, seed: int, embedding_model: Any
) -> tuple[dict, list[str], np.ndarray]:
    """BERTopic defaults on the first user turns with their embeddings: scores, keyword labels, topics."""
    from bertopic import BERTopic
    from umap import UMAP

    docs = mix["first_user"].to_list()
    # BERTopic's default UMAP, seeded so the run is reproducible; the embeddings are given.
    umap_model = UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed
    )
    model = BERTopic(embedding_model=embedding_model, umap_model=umap_model)
    topics = np.asarray(model.fit_transform(docs, vectors)[0], dtype=np.int64)
    keywords = [" ".join(w for w, _ in model.get_topic(t)) for t in sorted(set(topics.tolist()) - {-1})]
    model.reduce_topics(docs, nr_topics=n_top + (1 if -1 in topics else 0))
    return _scores(mix, topics, np.asarray(model.topics_, dtype=np.int64)), keywords, topics


def run_bertopic(mix: pl.DataFrame, n_top: int, seed: int) -> dict:
    """BERTopic defaults, same embedding model, on the raw first user turn."""
    from clustering.embed import SentenceTransformerEmbedder

    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    vectors = embedder.encode(mix["first_user"].to_list())
    scores, keywords, topics = bertopic_fit(mix, vectors, n_top, seed, embedder.model)
    seconds = time.perf_counter() - started
    ids = sorted(set(topics.tolist()) - {-1})
    name_vectors = embedder.encode(keywords) if keywords else np.zeros((0, vectors.shape[1]))
    return {
        **scores,
        "name_accuracy": name_accuracy(name_vectors, ids, vectors, topics),
        "seconds": seconds,
        "top_level": f"reduce_topics(nr_topics={n_top} + the outlier topic)",
    }


def run_kura() -> dict:
    """Kura needs its package and an LLM it can reach; say which is missing."""
    try:
        import kura  # noqa: F401
    except ImportError:
        return {
            "error": "kura is not installed: kura 0.5.4 resolves with our pins (it downgrades rich 15.0.0 -> 14.3.4 "
            "and adds openai, instructor, fastapi, datasets) but its summary, cluster-naming and meta-clustering "
            "models call a hosted LLM through instructor/openai (default openai/gpt-4o-mini); this machine has no "
            "network access to one, so it cannot run here"
        }
    return {
        "error": "kura is importable but needs a hosted LLM (instructor/openai) that this machine cannot reach"
    }


# ---------------------------------------------------------------- scale


def _mixture(n: int, seed: int, dim: int = 384, components: int = 50) -> np.ndarray:
    """Seeded Gaussian mixture on the unit sphere, like sentence embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(components, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = rng.dirichlet(np.full(components, 5.0))
    which = rng.choice(components, size=n, p=sizes)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        part = which[start : start + 100_000]
        noise = rng.normal(scale=0.6 / np.sqrt(dim), size=(len(part), dim)).astype(np.float32)
        out[start : start + 100_000] = centres[part] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def scale_child(n: int, seed: int) -> None:
    """Cluster one synthetic size and print seconds and peak RSS as JSON (run in a fresh process)."""
    from clustering.cluster import ClusterParams, cluster_embeddings

    x = _mixture(n, seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = cluster_embeddings(x, ClusterParams(seed=seed))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "n": n,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "clusters": result.n_clusters,
                "noise_share": result.n_noise / n,
            }
        )
    )


def run_scale(sizes: list[int], seed: int, limit_s: int) -> list[dict]:
    out = []
    for n in sizes:
        cmd = [sys.executable, "-m", "benchmarks.clustering", "--scale-child", str(n), "--seed", str(seed)]
        started = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, cwd=REPO, check=False)
        except subprocess.TimeoutExpired:
            out.append({"n": n, "seconds": None, "peak_rss_mb": None, "error": f"timeout after {limit_s} s"})
            continue
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:] or [""]
            out.append(
                {
                    "n": n,
                    "seconds": None,
                    "peak_rss_mb": None,
                    "error": f"exit {done.returncode}: {tail[0][:200]}",
                }
            )
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["process_seconds"] = time.perf_counter() - started
        out.append(row)
    return out


# ---------------------------------------------------------------- report


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def print_table(results: dict) -> None:
    metrics = ["top_ari", "top_nmi", "base_ari", "base_nmi", "noise_share", "name_accuracy", "seconds"]
    seed = results.get("data", {}).get("seed")
    rows = [
        [
            system if system == "kura" else f"{system} (seed {seed})",
            *[_fmt(results[system].get(m)) for m in metrics],
            results[system].get("error", "")[:60],
        ]
        for system in ("lookout", "bertopic", "kura")
        if system in results
    ]
    for system, summary in results.get("over_seeds", {}).items():
        seeds = summary["seeds"]
        rows.append(
            [f"{system} ({len(seeds)} seeds)"]
            + [_fmt(summary.get(f"{m}_mean")) for m in metrics[:5]]
            + [
                "",
                "",
                f"mean over seeds {','.join(map(str, seeds))}; top_ari sd {_fmt(summary['top_ari_sd'])}",
            ]
        )
    tuning = results.get("consensus_tuning")
    if tuning:
        default = tuning["defaults"]
        picked = [("lookout", default["consensus_runs"], default["linkage"]), ("lookout", 1, "ward")]
        for system, runs, linkage in picked:
            row = next(r for r in tuning["settings"] if r["runs"] == runs and r["linkage"] == linkage)
            rows.append(
                [f"tune: {system} {runs} run(s), {linkage}"]
                + [_fmt(row.get(f"{m}_mean")) for m in metrics[:5]]
                + [
                    "",
                    "",
                    f"worst top_ari {_fmt(row['top_ari_worst'])}, top_nmi {_fmt(row['top_nmi_worst'])}",
                ]
            )
        bt = tuning["bertopic"]
        rows.append(
            ["tune: bertopic"]
            + [_fmt(bt.get(f"{m}_mean")) for m in metrics[:5]]
            + ["", "", f"worst top_ari {_fmt(bt['top_ari_worst'])}, top_nmi {_fmt(bt['top_nmi_worst'])}"]
        )
    rows += [
        [
            f"scale n={s['n']}",
            "",
            "",
            "",
            "",
            _fmt(s.get("noise_share")),
            "",
            _fmt(s.get("seconds")),
            f"cpu {_fmt(s.get('cpu_seconds'))} s, peak {_fmt(s.get('peak_rss_mb'))} MB {s.get('error', '')}".rstrip(),
        ]
        for s in results.get("scale", [])
    ]
    header = ["system", *metrics, "note"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False
        ).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=240, help="conversations in the labelled mix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--field",
        default="summary_first_user",
        help="text embedded by Lookout (clustering.embed.EMBED_FIELDS)",
    )
    parser.add_argument(
        "--seeds", default="0,1,2,3,4", help="clustering seeds for the structure scores over seeds"
    )
    parser.add_argument(
        "--no-clio",
        action="store_true",
        help="skip scoring the clio hierarchy strategy (saves its LLM calls)",
    )
    parser.add_argument("--scale", default="10000,100000,1000000", help="synthetic sizes for the scale run")
    parser.add_argument("--scale-limit-s", type=int, default=600, help="wall-clock limit per scale size")
    parser.add_argument(
        "--parts",
        default="quality,scale",
        help="quality, scale, tune (the parameter search), consensus (consensus runs and linkage on the tuning split); "
        "parts not run keep their last results",
    )
    parser.add_argument(
        "--llm-threads", type=int, default=2, help="llama.cpp threads (1 is faster on a busy machine)"
    )
    parser.add_argument("--facets-only", action="store_true", help="only fill the facet cache")
    parser.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.scale_child:
        scale_child(args.scale_child, args.seed)
        return
    mix = load_mix(args.n, args.seed)
    if args.facets_only:
        facets_for(mix, llm_threads=args.llm_threads)
        return
    parts = set(args.parts.split(","))
    # A run of one part keeps the other part's results from the previous run.
    results: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    results.update(
        {"commit": _commit(), "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    )
    if "quality" in parts:
        results["data"] = {
            "n": len(mix),
            "seed": args.seed,
            "by_source": dict(
                zip(*mix["source"].value_counts(sort=True).to_dict(as_series=False).values(), strict=True)
            ),
            "coarse_labels": sorted(mix["coarse"].unique().to_list()),
            "fine_labels": mix["fine"].n_unique(),
        }
        lookout, _, vectors, ok = run_lookout(
            mix, args.field, args.seed, args.llm_threads, with_clio=not args.no_clio
        )
        results["lookout"] = lookout
        try:
            results["bertopic"] = run_bertopic(mix, max(1, lookout["top_nodes"]), args.seed)
        except Exception as exc:  # a baseline that cannot run is reported, not fatal
            results["bertopic"] = {"error": f"{type(exc).__name__}: {exc}"}
        results["kura"] = run_kura()
        results["over_seeds"] = over_seeds(mix, vectors, ok, [int(s) for s in args.seeds.split(",")])
    if "consensus" in parts:
        results["consensus_tuning"] = run_consensus_tuning(mix["conversation_id"].to_list())
    if "tune" in parts:
        results["tuning"] = run_tuning(mix["conversation_id"].to_list())
        best = results["tuning"]["best"][0]
        print(
            f"tuning: best {best}; defaults rank {results['tuning']['defaults_rank']} of {results['tuning']['settings']}"
        )
    if "scale" in parts:
        results["scale"] = run_scale(
            [int(s) for s in args.scale.split(",") if s], args.seed, args.scale_limit_s
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)


if __name__ == "__main__":
    main()
