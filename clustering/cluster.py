"""Reduce embeddings with UMAP and cluster them with HDBSCAN.

Sub-models are pluggable (the BERTopic pattern): anything with ``fit_transform``
works as a reducer, and anything with ``fit`` and ``labels_`` as a clusterer.
Defaults are built only when one is not given. Noise (label -1) stays noise.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """How base clusters are found; sizes scale with the day's volume."""

    n_components: int = 5
    n_neighbors: int = 15
    min_dist: float = 0.0
    min_cluster_size: int | None = None
    min_cluster_fraction: float = 0.02
    min_cluster_floor: int = 3
    min_samples: int | None = 2
    seed: int = 42

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

    Too few points to cluster (below ``min_cluster_size``) gives all noise.
    """
    params = params or ClusterParams()
    n = len(embeddings)
    if n < max(params.cluster_size_for(n), 4):
        return ClusterResult(np.full(n, NOISE), np.zeros((n, 2), np.float32))
    reducer = reducer or default_reducer(n, params)
    reduced = np.asarray(reducer.fit_transform(embeddings), dtype=np.float32)
    clusterer = clusterer or default_clusterer(n, params)
    clusterer.fit(reduced)
    labels = np.asarray(clusterer.labels_)
    return ClusterResult(_renumber_by_size(labels), reduced)


def _renumber_by_size(labels: np.ndarray) -> np.ndarray:
    ids, counts = np.unique(labels[labels != NOISE], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(x), NOISE) for x in labels], dtype=np.int64)
