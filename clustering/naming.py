"""Cluster names from the LLM, with contrastive examples from neighbouring clusters."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from summarize.llm import LLM, JsonRequest, LLMError

NAMING_PROMPT_VERSION = "names-v1"


class ClusterName(BaseModel):
    """A cluster's title and description, as the LLM returns them."""

    title: str = Field(min_length=3, max_length=80, description="A short imperative title, e.g. 'Debug Python data pipelines'.")
    description: str = Field(
        min_length=10,
        max_length=300,
        description="One sentence describing what the conversations in the group have in common.",
    )


SCHEMA = {**ClusterName.model_json_schema(), "additionalProperties": False}
SCHEMA["required"] = ["title", "description"]

SYSTEM = """\
You name groups of AI-assistant conversations for an aggregate usage report. You see \
short summaries of conversations inside the group and, for contrast, from nearby \
groups. Describe what the group has in common that distinguishes it from the others. \
Do not quote any single summary and do not include names, places, numbers or other \
specific details. Answer with a JSON object with "title" (a short imperative phrase) \
and "description" (one sentence)."""


@dataclass(frozen=True)
class NamedCluster:
    """A cluster's name and where it came from (``llm`` or ``fallback``)."""

    cluster_id: int
    title: str
    description: str
    source: str


class ClusterNamer:
    """Names clusters with an LLM from member and contrastive summaries."""

    def __init__(self, llm: LLM, *, sample_size: int = 8, contrast_size: int = 6, seed: int = 0, max_attempts: int = 2):
        self.llm = llm
        self.sample_size = sample_size
        self.contrast_size = contrast_size
        self.seed = seed
        self.max_attempts = max_attempts

    def _request(self, inside: list[str], outside: list[str]) -> JsonRequest:
        user = "Summaries inside the group:\n" + "\n".join(f"- {s}" for s in inside)
        if outside:
            user += "\n\nSummaries from nearby groups (not in this group):\n" + "\n".join(
                f"- {s}" for s in outside
            )
        user += "\n\nName the group."
        return JsonRequest(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}], SCHEMA, 120
        )

    def name(
        self,
        summaries: Sequence[str],
        topics: Sequence[str],
        labels: np.ndarray,
        embeddings: np.ndarray,
    ) -> list[NamedCluster]:
        """Name every non-noise cluster in ``labels``."""
        rng = random.Random(self.seed)
        ids = sorted(set(labels.tolist()) - {-1})
        if not ids:
            return []
        centroids = np.stack([embeddings[labels == c].mean(axis=0) for c in ids])
        requests = []
        for k, cid in enumerate(ids):
            members = [summaries[i] for i in np.flatnonzero(labels == cid)]
            inside = rng.sample(members, min(self.sample_size, len(members)))
            nearest = [ids[j] for j in np.argsort(-(centroids @ centroids[k])) if ids[j] != cid][:2]
            pool = [summaries[i] for i in np.flatnonzero(np.isin(labels, nearest))]
            outside = rng.sample(pool, min(self.contrast_size, len(pool)))
            requests.append(self._request(inside, outside))
        names: dict[int, ClusterName] = {}
        pending = list(range(len(ids)))
        for _ in range(self.max_attempts):
            if not pending:
                break
            answers = self.llm.generate_json_many([requests[k] for k in pending])
            retry = []
            for k, answer in zip(pending, answers, strict=True):
                try:
                    if isinstance(answer, LLMError):
                        raise answer
                    names[k] = ClusterName.model_validate(json.loads(answer))
                except (LLMError, ValidationError, json.JSONDecodeError):
                    retry.append(k)
            pending = retry
        out = []
        for k, cid in enumerate(ids):
            if k in names:
                out.append(NamedCluster(cid, names[k].title, names[k].description, "llm"))
            else:
                member_topics = [topics[i] for i in np.flatnonzero(labels == cid)]
                top = [t for t, _ in Counter(member_topics).most_common(3)]
                out.append(
                    NamedCluster(cid, f"Conversations about {top[0]}", "Most common topics: " + ", ".join(top) + ".", "fallback")
                )
        return out
