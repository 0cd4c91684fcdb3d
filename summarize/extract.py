"""Facet extraction: prompt the LLM, validate, retry, and report failures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from summarize.categories import (
    MIN_CONCERN_FOR_CATEGORY,
    CategoryMatcher,
    blend_concern,
    gated_category,
    user_text,
)
from summarize.facets import (
    CONCERN_FIELD,
    CONCERN_VALUES,
    PROMPT_VERSION,
    FacetOutput,
    FacetValidationError,
    build_prompt,
    concern_score,
    facet_schema,
    parse_facets,
    render_transcript,
)
from summarize.llm import LLM, JsonRequest, LLMError, ProbedJson
from summarize.taxonomy import Taxonomy


def facet_cache_key(
    messages: Sequence[dict[str, Any]],
    model_id: str,
    taxonomy: Taxonomy,
    categorizer: str,
    *,
    prompt_version: str = PROMPT_VERSION,
) -> str:
    """Key of a conversation's facets: its redacted text, the prompt version, the model, taxonomy and categorizer.

    Any change to the prompt, the model, the taxonomy or what picks categories
    (``summarize.categories.categorizer_id``) gives new keys, so stale facets are
    never reused. ``prompt_version`` defaults to the current prompt; an older
    version gives the keys its rows were cached under (for deliberate reuse, e.g.
    in benchmarks).
    """
    payload = json.dumps(
        {
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "prompt": prompt_version,
            "model": model_id,
            "taxonomy": taxonomy.prompt_block(),
            "categorizer": categorizer,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FacetFailure:
    """Why a conversation got no facets after all attempts."""

    conversation_id: str
    reason: str
    attempts: int


@lru_cache(maxsize=1)
def _language_detector():
    from lingua import LanguageDetectorBuilder

    # High-accuracy models load lazily, per language seen; unsure answers become "und".
    return LanguageDetectorBuilder.from_all_spoken_languages().with_minimum_relative_distance(0.1).build()


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, or ``und`` when unknown."""
    if len(text.strip()) < 3:
        return "und"
    language = _language_detector().detect_language_of(text[:2000])
    return language.iso_code_639_1.name.lower() if language else "und"


class FacetExtractor:
    """Extracts validated facets from redacted conversations with an LLM.

    Every row has the validated integer ``concerning`` and a float
    ``concern_score`` in [1, 5]: the expected concern under the model's
    next-token distribution over 1-5 where the value is written, when the
    backend can read it (``concern_score_source = "token_probs"``); else
    ``float(concerning)`` (``"integer"``). With a ``matcher``, that is blended
    with how close the user's turns are to the taxonomy's categories
    (``category_match``, the best category score; ``summarize.categories.blend_concern``).
    The float ranks conversations without the integer's ties.

    ``categories``: with a ``matcher``, the nearest category of the user's turns
    where ``concern_score`` reaches ``summarize.categories.MIN_SCORE_FOR_CATEGORY``;
    without one, the model's own codes where it rated the conversation
    ``MIN_CONCERN_FOR_CATEGORY`` or more.
    """

    def __init__(
        self,
        llm: LLM,
        taxonomy: Taxonomy,
        *,
        matcher: CategoryMatcher | None = None,
        max_transcript_chars: int = 2000,
        max_attempts: int = 2,
        max_tokens: int = 200,
        retry_temperature: float = 0.7,
    ):
        self.llm = llm
        self.taxonomy = taxonomy
        self.matcher = matcher
        self.categorizer = matcher.id if matcher else "llm"
        self.max_transcript_chars = max_transcript_chars
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens
        self.retry_temperature = retry_temperature
        self.schema = facet_schema(taxonomy)

    def _request(self, conversation: dict[str, Any], attempt: int) -> JsonRequest:
        transcript = render_transcript(conversation["messages"], self.max_transcript_chars)
        return JsonRequest(
            build_prompt(transcript, self.taxonomy),
            self.schema,
            self.max_tokens,
            temperature=0.0 if attempt == 0 else self.retry_temperature,
            attempt=attempt,
            probe_field=CONCERN_FIELD,  # ignored by backends without value probabilities
            probe_values=CONCERN_VALUES,
        )

    def extract_many(self, conversations: Sequence[dict[str, Any]]) -> list[dict[str, Any] | FacetFailure]:
        """Facet rows (or failures) for redacted conversation rows, in order."""
        results: list[FacetOutput | None] = [None] * len(conversations)
        probs: list[dict[int, float] | None] = [None] * len(conversations)
        errors: list[str] = [""] * len(conversations)
        pending = list(range(len(conversations)))
        attempt = 0
        while pending and attempt < self.max_attempts:
            attempt += 1
            answers = self.llm.generate_json_many(
                [self._request(conversations[i], attempt - 1) for i in pending]
            )
            retry = []
            for i, answer in zip(pending, answers, strict=True):
                if isinstance(answer, LLMError):
                    errors[i] = f"llm error: {answer}"
                    retry.append(i)
                    continue
                try:
                    results[i] = parse_facets(answer, self.taxonomy)
                    probs[i] = answer.value_probs if isinstance(answer, ProbedJson) else None
                except FacetValidationError as exc:
                    errors[i] = f"invalid model output: {exc}"
                    retry.append(i)
            pending = retry
        valid = [(i, facets) for i, facets in enumerate(results) if facets is not None]
        matches: list[float | None] = [None] * len(results)
        codes: list[str | None] = [None] * len(results)
        if self.matcher is not None and valid:
            best, top = self.matcher.match([user_text(conversations[i]["messages"]) for i, _ in valid])
            for (i, _), code, score in zip(valid, best, top, strict=True):
                codes[i], matches[i] = code, score
        out: list[dict[str, Any] | FacetFailure] = []
        for i, (conversation, facets) in enumerate(zip(conversations, results, strict=True)):
            if facets is None:
                out.append(FacetFailure(conversation["conversation_id"], errors[i], attempt))
                continue
            score, source = concern_score(facets.concerning, probs[i])
            if (match := matches[i]) is not None:
                score = blend_concern(score, match)
                facets.categories = gated_category(codes[i], score)
            elif facets.concerning < MIN_CONCERN_FOR_CATEGORY:
                facets.categories = []
            out.append(self._row(conversation, facets, score, source, match))
        return out

    def _row(
        self,
        conversation: dict[str, Any],
        facets: FacetOutput,
        score: float,
        source: str,
        match: float | None,
    ) -> dict[str, Any]:
        return {
            "conversation_id": conversation["conversation_id"],
            "account": conversation["account"],
            "timestamp": conversation["timestamp"],
            **facets.model_dump(),
            "concern_score": score,
            "concern_score_source": source,
            "category_match": match,
            "language": detect_language(user_text(conversation["messages"], limit=None)),
            "turns": sum(1 for m in conversation["messages"] if m["role"] == "user"),
            "model_id": self.llm.model_id,
            "prompt_version": PROMPT_VERSION,
            "cache_key": facet_cache_key(
                conversation["messages"], self.llm.model_id, self.taxonomy, self.categorizer
            ),
        }
