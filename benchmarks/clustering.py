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
  -> ``build_hierarchy``; the top level is the hierarchy's highest level. LLM
  answers (names, parents) are cached by the full request, so reruns are cheap.
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

Scale: ``cluster_embeddings`` on seeded Gaussian mixtures of 384 dimensions at
each ``--scale`` size, each in a fresh process (peak RSS from ``ru_maxrss``),
with a wall-clock limit per size.

    python -m benchmarks.clustering [--n 240] [--seed 0] [--field summary_first_user]
        [--scale 10000,100000,1000000] [--parts quality,scale] [--facets-only] [--no-clio]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
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
        out.append({"id": r["release_prompt_id"], "coarse": "hazard", "fine": hazard, "messages": [{"role": "user", "content": r["prompt_text"]}]})
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
        out.append({"id": r["uid"], "coarse": coarse, "fine": fine, "messages": [{"role": "user", "content": r["prompt"]}]})
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
            messages.append({"role": "user" if node["role"] == "prompter" else "assistant", "content": node["text"]})
            replies = [r for r in node.get("replies") or [] if not r.get("deleted")]
            node = min(replies, key=lambda r: (r.get("rank") is None, r.get("rank") or 0)) if replies else None
        out.append({"id": tree["message_tree_id"], "coarse": "general", "fine": "oasst", "messages": messages})
    return out


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def _hh_rlhf() -> list[dict]:
    out = []
    with gzip.open(DATA / "hh_rlhf_harmless_test" / "harmless-base_test.jsonl.gz", "rt", encoding="utf-8") as f:
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
            "first_user": [next(m["content"] for m in r["messages"] if m["role"] == "user") for _, _, r in picked],
        }
    )


# ---------------------------------------------------------------- facets (cached)

FACET_COLUMNS = ("summary", "request", "task", "topic", "concerning", "categories")


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
    keys = [facet_cache_key(m, model_id, taxonomy) for m in mix["messages"].to_list()]
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
                {"conversation_id": rows[i]["conversation_id"], "account": rows[i]["source"], "timestamp": TIMESTAMP, "messages": rows[i]["messages"]}
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
            print(f"facets {min(start + chunk, len(todo))}/{len(todo)} ({per:.1f} s each)", file=sys.stderr, flush=True)
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


def name_accuracy(name_vectors: np.ndarray, name_ids: list[int], vectors: np.ndarray, labels: np.ndarray) -> float | None:
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
                [self.model_id, request.messages, request.schema, request.max_tokens, request.temperature, request.attempt],
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
    names = ClusterNamer(cached.proxy).name(facets["summary"].to_list(), facets["topic"].to_list(), result.labels, vectors)
    base = pl.DataFrame(
        {
            "cluster_id": [n.cluster_id for n in names],
            "title": [n.title for n in names],
            "description": [n.description for n in names],
            "name_source": [n.source for n in names],
        },
        schema={"cluster_id": pl.Int64, "title": pl.Utf8, "description": pl.Utf8, "name_source": pl.Utf8},
    )
    nodes, top = build_levels(base, result.labels, vectors, cached.proxy, embedder, seed)
    measured = time.perf_counter() - started
    clio_all = None
    if with_clio:
        # The Clio strategy (LLM proposes and assigns parents), scored on the same base clusters.
        _, clio_top = build_levels(base, result.labels, vectors, cached.proxy, embedder, seed, strategy="clio")
        clio_all = np.full(len(mix), -1, dtype=np.int64)
        clio_all[ok] = clio_top
    name_vectors = embedder.encode([f"{t}: {d}" for t, d in zip(base["title"], base["description"], strict=True)])
    # Conversations without facets count as noise.
    base_all = np.full(len(mix), -1, dtype=np.int64)
    base_all[ok] = result.labels
    top_all = np.full(len(mix), -1, dtype=np.int64)
    top_all[ok] = top
    out = {
        **_scores(mix, base_all, top_all),
        "name_accuracy": name_accuracy(name_vectors, base["cluster_id"].to_list(), vectors, result.labels),
        "seconds": measured + cached.cached_seconds,
        "seconds_measured": measured,
        "facet_seconds": facet_seconds,
        "facet_failures": int((~ok).sum()),
        "levels": int(nodes["level"].max()) + 1 if len(nodes) else 0,
        "names_by_llm": int((nodes["name_source"] == "llm").sum()),
        "names_fallback": int((nodes["name_source"] != "llm").sum()),
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
    return out, top_all


def compare_fields(mix: pl.DataFrame, facets: pl.DataFrame, ok: np.ndarray, embedder, seed: int) -> dict[str, dict]:
    """Base clusters from each facet text: ARI/NMI against the fine and the coarse labels (no LLM)."""
    from clustering.cluster import ClusterParams, cluster_embeddings
    from clustering.embed import EMBED_FIELDS, embed_text

    out = {}
    for field in EMBED_FIELDS:
        labels = np.full(len(mix), -1, dtype=np.int64)
        labels[ok] = cluster_embeddings(embedder.encode(embed_text(facets, field)), ClusterParams(seed=seed)).labels
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


def build_levels(
    base: pl.DataFrame, labels: np.ndarray, vectors: np.ndarray, llm, embedder, seed: int, strategy: str = "embedding"
) -> tuple[pl.DataFrame, np.ndarray]:
    """The hierarchy over the named base clusters (as the asset builds it), and each item's top-level node."""
    from clustering.hierarchy import HierarchyParams, build_hierarchy, top_level_labels
    from clustering.tracking import centroids

    _, centres = centroids(vectors, labels)
    nodes = build_hierarchy(base, llm, embedder, HierarchyParams(seed=seed, strategy=strategy), centres)
    return nodes, top_level_labels(labels, nodes)


def run_bertopic(mix: pl.DataFrame, n_top: int, seed: int) -> dict:
    """BERTopic defaults, same embedding model, on the raw first user turn."""
    from bertopic import BERTopic
    from umap import UMAP

    from clustering.embed import SentenceTransformerEmbedder

    docs = mix["first_user"].to_list()
    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    vectors = embedder.encode(docs)
    # BERTopic's default UMAP, seeded so the run is reproducible.
    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed)
    model = BERTopic(embedding_model=embedder.model, umap_model=umap_model)
    topics = np.asarray(model.fit_transform(docs, vectors)[0], dtype=np.int64)
    base_seconds = time.perf_counter() - started
    ids = sorted(set(topics.tolist()) - {-1})
    keywords = [" ".join(w for w, _ in model.get_topic(t)) for t in ids]
    reduce_started = time.perf_counter()
    model.reduce_topics(docs, nr_topics=n_top + (1 if -1 in topics else 0))
    top = np.asarray(model.topics_, dtype=np.int64)
    seconds = base_seconds + time.perf_counter() - reduce_started
    name_vectors = embedder.encode(keywords) if keywords else np.zeros((0, vectors.shape[1]))
    return {
        **_scores(mix, topics, top),
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
    return {"error": "kura is importable but needs a hosted LLM (instructor/openai) that this machine cannot reach"}


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
            out.append({"n": n, "seconds": None, "peak_rss_mb": None, "error": f"exit {done.returncode}: {tail[0][:200]}"})
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
    rows = [
        [system, *[_fmt(results[system].get(m)) for m in metrics], results[system].get("error", "")[:60]]
        for system in ("lookout", "bertopic", "kura")
        if system in results
    ]
    rows += [
        [
            f"scale n={s['n']}", "", "", "", "", _fmt(s.get("noise_share")), "", _fmt(s.get("seconds")),
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
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=240, help="conversations in the labelled mix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--field", default="summary_first_user", help="text embedded by Lookout (clustering.embed.EMBED_FIELDS)")
    parser.add_argument("--no-clio", action="store_true", help="skip scoring the clio hierarchy strategy (saves its LLM calls)")
    parser.add_argument("--scale", default="10000,100000,1000000", help="synthetic sizes for the scale run")
    parser.add_argument("--scale-limit-s", type=int, default=600, help="wall-clock limit per scale size")
    parser.add_argument("--parts", default="quality,scale", help="quality, scale or both; one part keeps the other's last results")
    parser.add_argument("--llm-threads", type=int, default=2, help="llama.cpp threads (1 is faster on a busy machine)")
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
    results: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() and parts != {"quality", "scale"} else {}
    results.update({"commit": _commit(), "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}})
    if "quality" in parts:
        results["data"] = {
            "n": len(mix),
            "seed": args.seed,
            "by_source": dict(zip(*mix["source"].value_counts(sort=True).to_dict(as_series=False).values(), strict=True)),
            "coarse_labels": sorted(mix["coarse"].unique().to_list()),
            "fine_labels": mix["fine"].n_unique(),
        }
        lookout, _ = run_lookout(mix, args.field, args.seed, args.llm_threads, with_clio=not args.no_clio)
        results["lookout"] = lookout
        try:
            results["bertopic"] = run_bertopic(mix, max(1, lookout["top_nodes"]), args.seed)
        except Exception as exc:  # a baseline that cannot run is reported, not fatal
            results["bertopic"] = {"error": f"{type(exc).__name__}: {exc}"}
        results["kura"] = run_kura()
    if "scale" in parts:
        results["scale"] = run_scale([int(s) for s in args.scale.split(",") if s], args.seed, args.scale_limit_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)


if __name__ == "__main__":
    main()
