"""Which safety category a conversation falls under, by similarity to each category's examples.

Whether a conversation falls under any safety category is decided by its
``concern_score`` (``MIN_SCORE_FOR_CATEGORY``); ``CategoryMatcher`` decides which. A small model is near chance at picking among a dozen hazards
(AILuminate macro-F1 0.09 with the 1.5B), while the nearest category by sentence
embedding of the user's request, against each category's definition and the
example requests written in the taxonomy file, reaches about 0.6 (see
``benchmarks/facets.py``). The best category score (``category_match``) also
feeds ``concern_score`` (``blend_concern``): how close a request is to the taxonomy's
harmful examples ranks conversations beside the model's own concern.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from summarize.taxonomy import Taxonomy

CategoryMethod = Literal["examples", "llm"]
CATEGORY_METHODS: tuple[CategoryMethod, ...] = ("examples", "llm")
DEFAULT_CATEGORY_METHOD: CategoryMethod = "examples"
# Without a matcher (method "llm"), the model's own codes are kept only where it rated the
# conversation above 1 ("benign; nothing harmful or sensitive").
MIN_CONCERN_FOR_CATEGORY = 2
# With the matcher, a conversation gets its nearest category where its concern_score reaches
# this. Chosen on disjoint items (120 moderation, 48 AILuminate; 1.5B) by a rule fixed
# beforehand: of the thresholds 2.25..3.25 that beat the model's own gate (it named a category
# and rated 2+) on both safe and unsafe moderation prompts, the best AILuminate macro-F1:
# 2.75 (macro-F1 0.525 vs 0.461; safe prompts with a category 0.22 vs 0.24, unsafe 0.89 vs 0.76).
MIN_SCORE_FOR_CATEGORY = 2.75
TOP_PROTOTYPES = 2  # a category's score: the mean similarity of its closest prototypes
# Below this best score the matcher names no category. Chosen off the facet benchmark's
# sets: at 0.20 it keeps 95% of HarmBench and StrongREJECT requests, 22% of Arena-Hard prompts.
MIN_MATCH_SCORE = 0.20
MATCH_CHARS = 1000  # user text matched (the embedder reads about 256 word pieces)
# concern_score blends the model's expected concern with the best category score on the
# same 1-5 scale (1 at a score of 0, 5 at MATCH_FULL_SCORE and above). The weight was
# chosen on 120 moderation prompts disjoint from the facet benchmark's sample (1.5B):
# AUPRC 0.79 for the model alone, 0.84 at 0.4 (the smallest weight within 0.01 of the best).
CONCERN_MATCH_WEIGHT = 0.4
MATCH_FULL_SCORE = 0.6  # fixed before tuning


def prototypes(taxonomy: Taxonomy) -> tuple[list[str], list[str]]:
    """``(texts, codes)``: each category's ``name: definition`` and its example requests."""
    texts, codes = [], []
    for category in taxonomy.categories:
        for text in [f"{category.name}: {category.definition}", *category.examples]:
            texts.append(text)
            codes.append(category.code)
    return texts, codes


def categorizer_id(taxonomy: Taxonomy, method: CategoryMethod, embedder_name: str) -> str:
    """What decides a row's categories: part of the facet cache key.

    Raises:
        ValueError: An unknown method.
    """
    if method not in CATEGORY_METHODS:
        raise ValueError(f"unknown category method {method!r}; choose one of {CATEGORY_METHODS}")
    if method == "llm":
        return "llm"
    settings = [
        prototypes(taxonomy),
        TOP_PROTOTYPES,
        MIN_MATCH_SCORE,
        CONCERN_MATCH_WEIGHT,
        MATCH_FULL_SCORE,
        MIN_SCORE_FOR_CATEGORY,
    ]
    digest = hashlib.sha256(json.dumps(settings).encode("utf-8")).hexdigest()[:16]
    return f"examples:{embedder_name}:{digest}"


def match_concern(score: float, full: float = MATCH_FULL_SCORE) -> float:
    """A best category score on the 1-5 concern scale: 1 at 0 or below, 5 at ``full`` and above."""
    return 1.0 + 4.0 * min(max(score / full, 0.0), 1.0)


def blend_concern(model_score: float, match: float, weight: float = CONCERN_MATCH_WEIGHT) -> float:
    """``concern_score`` from the model's expected concern (1-5) and the best category similarity ``match``.

    ``match`` is put on the 1-5 scale by ``match_concern`` before the weighted mean.
    """
    return (1.0 - weight) * model_score + weight * match_concern(match)


def gated_category(code: str | None, concern: float) -> list[str]:
    """The matcher's ``code`` as a conversation's categories where its ``concern_score`` reaches the gate."""
    return [code] if code and concern >= MIN_SCORE_FOR_CATEGORY else []


def user_text(messages: Sequence[dict[str, Any]], limit: int | None = MATCH_CHARS) -> str:
    """The user's turns, joined and cut to ``limit`` characters (``None``: whole)."""
    return "\n".join(m["content"] for m in messages if m["role"] == "user")[:limit]


class CategoryMatcher:
    """Nearest taxonomy category of a text by embedding similarity to the category's prototypes."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        embedder: Any,
        *,
        top_prototypes: int = TOP_PROTOTYPES,
        min_score: float = MIN_MATCH_SCORE,
    ):
        """Embed the prototypes once.

        Args:
            taxonomy: Categories with definitions and optional ``examples``.
            embedder: A ``clustering.embed.Embedder`` (unit-norm vectors, ``name``).
            top_prototypes: How many of a category's closest prototypes are averaged.
            min_score: Best scores below this name no category.
        """
        texts, codes = prototypes(taxonomy)
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.codes = list(taxonomy.codes)
        self.id = categorizer_id(taxonomy, "examples", embedder.name)
        self._vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
        self._owner = np.array([self.codes.index(c) for c in codes])
        self.top_prototypes = top_prototypes
        self.min_score = min_score

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), len(codes))`` category scores: mean cosine of the closest prototypes."""
        if not texts:
            return np.zeros((0, len(self.codes)), np.float32)
        sims = np.asarray(self.embedder.encode(list(texts)), dtype=np.float32) @ self._vectors.T
        out = np.empty((len(texts), len(self.codes)), np.float32)
        for j in range(len(self.codes)):
            own = np.sort(sims[:, self._owner == j], axis=1)[:, -self.top_prototypes :]
            out[:, j] = own.mean(axis=1)
        return out

    def match(self, texts: Sequence[str]) -> tuple[list[str | None], list[float]]:
        """Each text's best-scoring category code (``None`` below ``min_score``) and its score."""
        scores = self.scores(texts)
        if not len(scores):
            return [], []
        best = scores.argmax(axis=1)
        top = [float(row[j]) for row, j in zip(scores, best, strict=True)]
        codes = [self.codes[int(j)] if s >= self.min_score else None for j, s in zip(best, top, strict=True)]
        return codes, top

    def best(self, texts: Sequence[str]) -> list[str | None]:
        """The best-scoring category code of each text, or ``None`` below ``min_score``."""
        return self.match(texts)[0]
