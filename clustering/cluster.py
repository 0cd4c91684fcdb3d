"""Reduce embeddings with UMAP and cluster them with HDBSCAN.

Sub-models are pluggable (the BERTopic pattern): anything with ``fit_transform``
works as a reducer, and anything with ``fit`` and ``labels_`` as a clusterer.
Defaults are built only when one is not given. Noise (label -1) stays noise.

Scaling: UMAP and HDBSCAN on every point do not scale to millions of points on
a few cores. Above ``ClusterParams.max_fit_points`` the reducer and clusterer
are fitted on a seeded subsample of that size; every other point then takes the
label and the reduced coordinates of its most similar point (cosine, in the
input space, computed in chunks) among a seeded reference subset of the fitted
points (``max_reference_points``, which bounds the cost per point). A point
stays noise when that nearest point is noise, or when it is farther from it
than cluster members usually are from their nearest fellow member (beyond
Tukey's fence: the upper quartile of those distances plus ``assign_fence``
times their interquartile range), so outliers are not pulled into clusters. Inputs at or below ``max_fit_points`` take the exact path unchanged.

Consensus: on a small day one UMAP seed moves the clusters (and the levels
above them) a lot. Up to ``consensus_max_points`` points, the default reducer
and clusterer run ``consensus_runs`` times with seeds derived from ``seed``, and
the clusters are those of HDBSCAN over the co-association distance (1 minus the
share of runs that put two points in the same cluster); a point that is noise in
more than half of the runs stays noise. Above that size (and on the subsample
path, which fits ``max_fit_points``) one run is made, so the scale cost is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

NOISE = -1


class Reducer(Protocol):
    """Dimensionality reduction with the scikit-learn API."""

    def fit_transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Fit and reduce."""
        ...


class Clusterer(Protocol):
    """Clustering with the scikit-learn API; -1 marks noise."""

    labels_: np.ndarray

    def fit(self, X: np.ndarray) -> Any:  # noqa: N803
        """Fit and set ``labels_``."""
        ...


@dataclass(frozen=True)
class ClusterParams:
    """How base clusters are found; sizes scale with the day's volume.

    ``min_cluster_size`` is ``min_cluster_fraction`` of the day's conversations
    (at least ``min_cluster_floor``), with HDBSCAN's ``eom`` selection and
    ``min_samples`` 2. These and UMAP's ``n_neighbors`` and ``n_components`` were
    chosen on a tuning split disjoint from the benchmark's mix (labelled mixes of
    155, 297 and 598 conversations, four clustering seeds each, 150 settings;
    ``python -m benchmarks.clustering --parts tune``), by the top level's ARI and
    NMI: ``n_neighbors`` 10 scored best (15 and 30 tried; with this fraction, at
    each size), a fraction of 0.02 beat 0.01-0.04, ``min_samples`` 2 beat 3 and
    ``min_cluster_size`` (more noise), ``eom`` beat ``leaf`` (more noise), and 5
    components beat 10.

    ``consensus_runs`` (1 turns consensus off) and ``consensus_max_points`` bound
    the consensus (see the module docstring). 10 runs were chosen on the same
    tuning split over eight seeds (``consensus`` in the benchmark's tuning part):
    with the hierarchy's average linkage, the top level's worst seed rose and its
    spread over seeds fell against one run, for about the same mean; 5 and 20
    runs were tried.
    """

    n_components: int = 5
    n_neighbors: int = 10
    min_dist: float = 0.0
    min_cluster_size: int | None = None
    min_cluster_fraction: float = 0.02
    min_cluster_floor: int = 3
    min_samples: int | None = 2
    seed: int = 42
    max_fit_points: int | None = 20_000
    max_reference_points: int = 5_000
    assign_fence: float = 3.0
    consensus_runs: int = 10
    consensus_max_points: int = 5_000

    def __post_init__(self) -> None:
        if self.consensus_runs < 1:
            raise ValueError("consensus_runs must be at least 1")

    def cluster_size_for(self, n: int) -> int:
        """``min_cluster_size`` for a day with ``n`` conversations."""
        if self.min_cluster_size is not None:
            return self.min_cluster_size
        return max(self.min_cluster_floor, round(n * self.min_cluster_fraction))


def default_reducer(n: int, params: ClusterParams) -> Reducer:
    """UMAP sized for ``n`` points (seeded, so deterministic)."""
    import umap

    return umap.UMAP(
        n_components=min(params.n_components, max(2, n - 2)),
        n_neighbors=max(2, min(params.n_neighbors, n - 1)),
        min_dist=params.min_dist,
        metric="cosine",
        random_state=params.seed,
        n_jobs=1,
    )


def default_clusterer(n: int, params: ClusterParams) -> Clusterer:
    """scikit-learn's HDBSCAN."""
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(
        min_cluster_size=params.cluster_size_for(n),
        min_samples=params.min_samples,
        copy=True,
    )


@dataclass
class ClusterResult:
    """Labels per point (-1 is noise) and the reduced coordinates."""

    labels: np.ndarray
    reduced: np.ndarray

    @property
    def n_clusters(self) -> int:
        """Number of clusters, noise excluded."""
        return int(len(set(self.labels.tolist()) - {NOISE}))

    @property
    def n_noise(self) -> int:
        """Points left as noise."""
        return int((self.labels == NOISE).sum())


def cluster_embeddings(
    embeddings: np.ndarray,
    params: ClusterParams | None = None,
    *,
    reducer: Reducer | None = None,
    clusterer: Clusterer | None = None,
) -> ClusterResult:
    """Reduce and cluster; labels are renumbered by descending size.

    Too few points to cluster (below ``min_cluster_size``) gives all noise. With
    neither ``reducer`` nor ``clusterer`` given, up to ``consensus_max_points``
    points and ``consensus_runs`` above 1, the labels are the consensus of several
    seeded runs (``consensus_labels``) and ``reduced`` is the run with ``seed``'s.
    """
    params = params or ClusterParams()
    n = len(embeddings)
    if n < max(params.cluster_size_for(n), 4):
        return ClusterResult(np.full(n, NOISE), np.zeros((n, 2), np.float32))
    if params.max_fit_points is not None and n > params.max_fit_points:
        return _cluster_subsample(np.asarray(embeddings, dtype=np.float32), params, reducer, clusterer)
    if (
        reducer is None
        and clusterer is None
        and params.consensus_runs > 1
        and n <= params.consensus_max_points
    ):
        return _cluster_consensus(embeddings, params)
    reducer = reducer or default_reducer(n, params)
    reduced = np.asarray(reducer.fit_transform(embeddings), dtype=np.float32)
    clusterer = clusterer or default_clusterer(n, params)
    clusterer.fit(reduced)
    labels = np.asarray(clusterer.labels_)
    return ClusterResult(_renumber_by_size(labels), reduced)


def consensus_seeds(seed: int, runs: int) -> list[int]:
    """The seeds of a consensus: ``seed`` itself, then ``runs - 1`` derived from it."""
    if runs <= 1:
        return [seed]
    return [seed, *(int(s) for s in np.random.SeedSequence(seed).generate_state(runs - 1))]


def consensus_labels(runs: list[np.ndarray], min_cluster_size: int, min_samples: int | None) -> np.ndarray:
    """One labelling from several of the same points (-1 is noise), renumbered by size.

    The distance between two points is 1 minus the share of runs that put them in
    the same cluster (noise is in no cluster); HDBSCAN over that distance finds
    the clusters. A point that is noise in more than half of the runs, or that the
    consensus HDBSCAN leaves out, is noise.
    """
    stacked = np.stack(runs)
    n = stacked.shape[1]
    together = np.zeros((n, n), dtype=np.float32)
    for labels in stacked:
        member = labels != NOISE
        together += (labels[:, None] == labels[None, :]) & member[:, None] & member[None, :]
    distance = 1 - together.astype(np.float64) / len(stacked)
    np.fill_diagonal(distance, 0)
    if n < max(min_cluster_size, 2):
        return np.full(n, NOISE, dtype=np.int64)
    from sklearn.cluster import HDBSCAN

    labels = np.asarray(
        HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, metric="precomputed", copy=True)
        .fit(distance)
        .labels_
    )
    labels = np.where((stacked == NOISE).mean(axis=0) > 0.5, NOISE, labels)
    return _renumber_by_size(labels)


def _cluster_consensus(embeddings: np.ndarray, params: ClusterParams) -> ClusterResult:
    """``consensus_runs`` default reducer and clusterer runs, one per derived seed, and their consensus."""
    n = len(embeddings)
    first_seed, *other_seeds = consensus_seeds(params.seed, params.consensus_runs)
    first = cluster_embeddings(embeddings, replace(params, seed=first_seed, consensus_runs=1))
    runs = [first.labels]
    for seed in other_seeds:
        runs.append(cluster_embeddings(embeddings, replace(params, seed=seed, consensus_runs=1)).labels)
    labels = consensus_labels(runs, params.cluster_size_for(n), params.min_samples)
    return ClusterResult(labels, first.reduced)


def _renumber_by_size(labels: np.ndarray) -> np.ndarray:
    ids, counts = np.unique(labels[labels != NOISE], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    out = np.full(len(labels), NOISE, dtype=np.int64)
    member = labels != NOISE
    # ids is sorted; argsort(order)[j] is the new number of ids[j].
    out[member] = np.argsort(order)[np.searchsorted(ids, labels[member])]
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _nearest_by_label(
    queries: np.ndarray, reference: np.ndarray, ref_labels: np.ndarray, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For unit-row queries: the nearest reference row, its label and its cosine similarity.

    ``reference`` must be sorted by ``ref_labels``; the nearest row's label comes from
    a per-label maximum (one streaming pass, no sort of the similarity matrix).
    """
    values, starts = np.unique(ref_labels, return_index=True)
    nearest = np.empty(len(queries), dtype=np.int64)
    label = np.empty(len(queries), dtype=np.int64)
    best = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk] @ reference.T
        per_label = np.maximum.reduceat(block, starts, axis=1)
        pick = np.argmax(per_label, axis=1)
        label[start : start + chunk] = values[pick]
        best[start : start + chunk] = per_label[np.arange(len(block)), pick]
        nearest[start : start + chunk] = np.argmax(block, axis=1)
    return nearest, label, best


def _cluster_subsample(
    embeddings: np.ndarray, params: ClusterParams, reducer: Reducer | None, clusterer: Clusterer | None
) -> ClusterResult:
    """Fit on a seeded subsample of ``max_fit_points``; the rest take their nearest fitted point's label."""
    n, m = len(embeddings), int(params.max_fit_points or 0)
    rng = np.random.default_rng(params.seed)
    fit_idx = np.sort(rng.choice(n, size=m, replace=False))
    fitted = cluster_embeddings(
        embeddings[fit_idx], replace(params, consensus_runs=1), reducer=reducer, clusterer=clusterer
    )
    labels = np.full(n, NOISE, dtype=np.int64)
    reduced = np.zeros((n, fitted.reduced.shape[1]), dtype=np.float32)
    labels[fit_idx], reduced[fit_idx] = fitted.labels, fitted.reduced
    # The reference: a seeded subset of the fitted points, sorted by label.
    ref = np.sort(rng.choice(m, size=min(m, params.max_reference_points), replace=False))
    ref = ref[np.argsort(fitted.labels[ref], kind="stable")]
    ref_vectors, ref_labels = _unit_rows(embeddings[fit_idx[ref]]), fitted.labels[ref]
    radius = _join_radius(ref_vectors, ref_labels, params.assign_fence)
    rest = np.setdiff1d(np.arange(n), fit_idx, assume_unique=True)
    for start in range(0, len(rest), 65_536):
        part = rest[start : start + 65_536]
        nearest, label, best = _nearest_by_label(_unit_rows(embeddings[part]), ref_vectors, ref_labels)
        labels[part] = np.where(1 - best <= radius, label, NOISE)
        reduced[part] = fitted.reduced[ref[nearest]]
    return ClusterResult(_renumber_by_size(labels), reduced)


def _join_radius(ref_vectors: np.ndarray, ref_labels: np.ndarray, fence: float) -> float:
    """How far a point may be from its nearest member of a cluster and still join it.

    Tukey's far-out fence over each reference member's cosine distance to its
    nearest fellow member (upper quartile plus ``fence`` interquartile ranges):
    robust to the few outliers HDBSCAN let into clusters. -1 (nobody joins)
    when there are no clusters.
    """
    members = ref_labels != NOISE
    if members.sum() < 2:
        return -1.0
    vectors, own = ref_vectors[members], ref_labels[members]
    distances = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), 2048):
        sims = vectors[start : start + 2048] @ vectors.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf  # not itself
        sims[own[start : start + 2048, None] != own[None, :]] = -np.inf  # fellow members only
        distances[start : start + 2048] = 1 - sims.max(axis=1)
    distances = distances[np.isfinite(distances)]
    if not len(distances):
        return -1.0
    q1, q3 = np.quantile(distances, [0.25, 0.75])
    return float(q3 + fence * (q3 - q1))
