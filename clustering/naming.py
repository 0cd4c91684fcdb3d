"""Cluster names from the LLM, with contrastive examples from neighbouring clusters."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, field_validator

from summarize.llm import LLM, JsonRequest, generate_validated

NAMING_PROMPT_VERSION = "names-v2"


GENERIC_TITLE_WORDS = ("group", "cluster", "conversation", "assistant", "ai-assistant", "chat")


class ClusterName(BaseModel):
    """A cluster's title and description, as the LLM returns them."""

    title: str = Field(
        min_length=3,
        max_length=80,
        description="A short imperative title, e.g. 'Debug Python data pipelines'.",
    )
    description: str = Field(
        min_length=10,
        max_length=300,
        description="One sentence describing what the conversations in the group have in common.",
    )

    @field_validator("title")
    @classmethod
    def _specific(cls, value: str) -> str:
        words = value.lower()
        generic = [w for w in GENERIC_TITLE_WORDS if w in words]
        if generic:
            raise ValueError(f"title is generic (mentions {generic[0]!r}); name the shared subject instead")
        return " ".join(value.split())


SCHEMA = {**ClusterName.model_json_schema(), "additionalProperties": False}
SCHEMA["required"] = ["title", "description"]

SYSTEM = """\
You write titles for an aggregate usage report. You see short summaries of requests \
that share a subject and, for contrast, summaries of other requests. Say what the \
shared subject is, specifically enough to tell it apart from the others. Do not quote \
any single summary and do not include names, places, numbers or other specific details. \
Answer with a JSON object with "title" (a short imperative phrase naming the subject, \
2 to 8 words) and "description" (one sentence)."""

EXAMPLE_USER = """\
Summaries that share a subject:
- The user asked why their pandas script fails on missing values and got a fix.
- The user wanted to speed up a Python loop over a large CSV file.
- The user asked how to merge two dataframes without duplicate rows.

Summaries of other requests (not this subject):
- The user asked for a weekly meal plan.

Write the title and description."""
EXAMPLE_ANSWER = json.dumps(
    {
        "title": "Fix and speed up Python data-processing scripts",
        "description": "Users ask for help debugging and optimising Python code that processes tabular data.",
    }
)


@dataclass(frozen=True)
class NamedCluster:
    """A cluster's name and where it came from (``llm`` or ``fallback``)."""

    cluster_id: int
    title: str
    description: str
    source: str


class ClusterNamer:
    """Names clusters with an LLM from member and contrastive summaries."""

    def __init__(
        self, llm: LLM, *, sample_size: int = 6, contrast_size: int = 4, seed: int = 0, max_attempts: int = 3
    ):
        self.llm = llm
        self.sample_size = sample_size
        self.contrast_size = contrast_size
        self.seed = seed
        self.max_attempts = max_attempts

    def _request(self, inside: list[str], outside: list[str]) -> JsonRequest:
        user = "Summaries that share a subject:\n" + "\n".join(f"- {s}" for s in inside)
        if outside:
            user += "\n\nSummaries of other requests (not this subject):\n" + "\n".join(
                f"- {s}" for s in outside
            )
        user += "\n\nWrite the title and description."
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": EXAMPLE_USER},
            {"role": "assistant", "content": EXAMPLE_ANSWER},
            {"role": "user", "content": user},
        ]
        return JsonRequest(messages, SCHEMA, 120)

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
            members = [summaries[i] for i in np.flatnonzero(labels == cid).tolist()]
            inside = rng.sample(members, min(self.sample_size, len(members)))
            nearest = [ids[j] for j in np.argsort(-(centroids @ centroids[k])) if ids[j] != cid][:2]
            pool = [summaries[i] for i in np.flatnonzero(np.isin(labels, nearest)).tolist()]
            outside = rng.sample(pool, min(self.contrast_size, len(pool)))
            requests.append((inside, outside))
        answers = generate_validated(
            self.llm, [self._request(*requests[k]) for k in range(len(ids))], ClusterName, self.max_attempts
        )
        names = {k: answer for k, answer in enumerate(answers) if answer is not None}
        out = []
        for k, cid in enumerate(ids):
            if k in names:
                out.append(NamedCluster(cid, names[k].title, names[k].description, "llm"))
            else:
                member_topics = [topics[i] for i in np.flatnonzero(labels == cid).tolist()]
                top = [t for t, _ in Counter(member_topics).most_common(3)]
                out.append(
                    NamedCluster(
                        cid,
                        f"Conversations about {top[0]}",
                        "Most common topics: " + ", ".join(top) + ".",
                        "fallback",
                    )
                )
        return out


class KeywordNamer:
    """Names clusters by their most distinctive words (class-based TF-IDF, as BERTopic labels topics).

    No LLM: useful where no model is available or as a cheap baseline. Titles
    join the top keywords; they are never a member's sentence.
    """

    def __init__(self, top_words: int = 4):
        self.top_words = top_words

    def name(
        self,
        summaries: Sequence[str],
        topics: Sequence[str],
        labels: np.ndarray,
        embeddings: np.ndarray,
    ) -> list[NamedCluster]:
        """Name every non-noise cluster in ``labels`` from its members' summaries and topics."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        ids = sorted(set(labels.tolist()) - {-1})
        if not ids:
            return []
        documents = [
            " ".join(f"{summaries[i]} {topics[i]}" for i in np.flatnonzero(labels == cid).tolist())
            for cid in ids
        ]
        vectorizer = CountVectorizer(
            stop_words=["user", "asked", "asks", "wanted", "wants", "help", *_STOP_WORDS]
        )
        counts = vectorizer.fit_transform(documents)
        weights = TfidfTransformer().fit_transform(counts).toarray()
        vocabulary = vectorizer.get_feature_names_out()
        out = []
        for k, cid in enumerate(ids):
            order = np.argsort(-weights[k], kind="stable")[: self.top_words]
            words = [str(vocabulary[j]) for j in order if weights[k, j] > 0]
            title = " / ".join(words) if words else f"cluster {cid}"
            out.append(
                NamedCluster(cid, title[:80], f"Most distinctive words: {', '.join(words)}.", "keywords")
            )
        return out


def _english_stop_words() -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(ENGLISH_STOP_WORDS)


_STOP_WORDS = _english_stop_words()

NAMERS = ("llm", "keywords")
