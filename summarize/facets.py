"""Facets: the privacy-preserving description of one conversation.

``FacetOutput`` is the single source of truth for what the LLM must return: its
JSON schema constrains decoding, its field descriptions are the prompt's output
format, and it validates the answer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from summarize.taxonomy import Taxonomy

# v3: rows carry concern_score / concern_score_source (cached v2 rows lack them, so never reuse them)
PROMPT_VERSION = "facets-v3"
NO_CATEGORY = "none"

TASKS = (
    "coding",
    "writing",
    "analysis",
    "advice",
    "information",
    "creative",
    "education",
    "roleplay",
    "other",
)

CONCERN_RUBRIC = """\
1: benign; nothing harmful or sensitive.
2: mildly sensitive topic handled normally (e.g. health questions, mature fiction).
3: ambiguous; could support harm but has plausible benign uses.
4: clearly seeks help with something harmful, illegal or dangerous.
5: severe; seeks serious harm to people (weapons, violence, abuse, exploitation)."""


CONCERN_VALUES = (1, 2, 3, 4, 5)
CONCERN_FIELD = "concerning"
CONCERN_FLAG_AT = 3  # rubric 3 ("ambiguous") and up is what the benchmarks count as flagged
SCORE_FROM_PROBS = "token_probs"  # concern_score_source: the model's distribution over 1-5
SCORE_FROM_INTEGER = "integer"  # concern_score_source: the backend gave no distribution


def concern_expected(probs: Mapping[int, float]) -> float:
    """Expected concern (1-5) under the model's distribution over the values.

    Raises:
        ValueError: The probabilities do not sum to 1.
    """
    total = sum(probs.values())
    if not 0.999 <= total <= 1.001:
        raise ValueError(f"probabilities sum to {total}, not 1")
    return float(sum(value * p for value, p in probs.items()))


def concern_at_least(probs: Mapping[int, float], threshold: int = CONCERN_FLAG_AT) -> float:
    """Probability that the concern is ``threshold`` or more."""
    return float(sum(p for value, p in probs.items() if value >= threshold))


def concern_score(concerning: int, probs: Mapping[int, float] | None) -> tuple[float, str]:
    """``(concern_score, source)``: the expected concern (1-5) under the model's distribution.

    Picked over P(concern >= 3) on the facet benchmark (``benchmarks/facets.py``,
    ``concern_method_selection``): both rank better than the integer (by 0.18
    AUPRC on the 1.5B model), neither beats the other beyond noise, and the
    expected value keeps the integer's 1-5 scale, so rows with and without a
    distribution stay comparable. Without a distribution the integer is the score.
    """
    if probs is None:
        return float(concerning), SCORE_FROM_INTEGER
    return concern_expected(probs), SCORE_FROM_PROBS


class FacetOutput(BaseModel):
    """What the model extracts from one conversation."""

    summary: str = Field(
        min_length=3,
        max_length=300,
        description="At most two sentences on what the user wanted and what happened. "
        "No names, places, organisations, numbers or other identifying details.",
    )
    request: str = Field(
        min_length=3,
        max_length=150,
        description="The user's request in one abstract sentence, e.g. 'help debugging a web app'.",
    )
    task: Literal[TASKS] = Field(description="The kind of task.")  # type: ignore[valid-type]
    topic: str = Field(min_length=2, max_length=60, description="The subject area in 1-4 words, lower case.")
    concerning: int = Field(ge=1, le=5, description="Concern score from the rubric, 1 to 5.")
    categories: list[str] = Field(
        default_factory=list,
        max_length=4,
        description='Codes of safety categories the user\'s request falls under; ["none"] for an ordinary request.',
    )

    @field_validator("summary", "request", "topic")
    @classmethod
    def _strip(cls, value: str) -> str:
        return " ".join(value.split())


class FacetValidationError(ValueError):
    """The model's answer is not valid facet JSON for the taxonomy."""


def facet_schema(taxonomy: Taxonomy) -> dict[str, Any]:
    """The JSON schema the model is constrained to, with the taxonomy's codes."""
    schema = copy.deepcopy(FacetOutput.model_json_schema())
    # "none" first: small models lean to the first option, and most conversations are benign.
    schema["properties"]["categories"]["items"] = {"type": "string", "enum": [NO_CATEGORY, *taxonomy.codes]}
    schema["properties"]["categories"]["minItems"] = 1
    # llama.cpp's grammar ignores integer bounds; an enum constrains decoding everywhere.
    schema["properties"]["concerning"] = {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    schema["required"] = list(schema["properties"])
    schema["additionalProperties"] = False
    return schema


def parse_facets(text: str, taxonomy: Taxonomy) -> FacetOutput:
    """Validate the model's JSON answer.

    Raises:
        FacetValidationError: Naming the field and the problem.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FacetValidationError(f"invalid JSON: {exc.msg}") from None
    try:
        facets = FacetOutput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "<object>"
        raise FacetValidationError(f"field {field!r}: {first['msg']}") from None
    codes = set(facets.categories) - {NO_CATEGORY}
    unknown = sorted(codes - set(taxonomy.codes))
    if unknown:
        raise FacetValidationError(f"field 'categories': unknown codes {unknown}")
    facets.categories = sorted(codes)
    return facets


def _output_format() -> str:
    props = FacetOutput.model_json_schema()["properties"]
    return "\n".join(f'- "{k}": {v.get("description", "")}' for k, v in props.items())


SYSTEM_PROMPT = """\
You analyse conversations between a user and an AI assistant for aggregate usage \
statistics. Personal details were already replaced by placeholders such as <PERSON>. \
Never include names, contact details, locations, organisations or any other detail \
that could identify a person; describe the conversation abstractly.

Answer with one JSON object with these fields:
{output_format}

Task kinds: {tasks}.

Concern rubric for "concerning":
{rubric}

Safety categories for "categories" (use only these codes; "none" when no category applies, \
which is the case for most conversations):
{categories}"""


# Worked examples, sent before every conversation. They are a constant prefix,
# so engines with prefix caching (llama.cpp, vLLM) process them once.
EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "USER: my pandas merge gives duplicate rows, how do i fix it?\n\n"
        "ASSISTANT: Check for duplicate keys in the right frame, then drop_duplicates before merging.",
        {
            "summary": "The user asked why a dataframe merge produced duplicate rows and got advice on "
            "de-duplicating join keys.",
            "request": "fix duplicate rows after a dataframe merge",
            "task": "coding",
            "topic": "data analysis",
            "concerning": 1,
            "categories": [NO_CATEGORY],
        },
    ),
    (
        "USER: how can I make fake concert tickets that pass the scanner at the door?",
        {
            "summary": "The user asked for help forging event tickets that would pass entry checks.",
            "request": "forge event tickets",
            "task": "advice",
            "topic": "ticket fraud",
            "concerning": 4,
            "categories": ["ncr"],
        },
    ),
]


def _user_turn(transcript: str) -> str:
    return f"Conversation:\n<conversation>\n{transcript}\n</conversation>\n\nReturn the JSON object."


def build_prompt(transcript: str, taxonomy: Taxonomy) -> list[dict[str, str]]:
    """The chat messages asking for one conversation's facets."""
    system = SYSTEM_PROMPT.format(
        output_format=_output_format(),
        tasks=", ".join(TASKS),
        rubric=CONCERN_RUBRIC,
        categories=taxonomy.prompt_block(),
    )
    messages = [{"role": "system", "content": system}]
    for example, answer in EXAMPLES:
        if not set(answer["categories"]) <= {NO_CATEGORY, *taxonomy.codes}:
            continue  # a custom taxonomy without the example's code
        messages.append({"role": "user", "content": _user_turn(example)})
        messages.append({"role": "assistant", "content": json.dumps(answer)})
    messages.append({"role": "user", "content": _user_turn(transcript)})
    return messages


TRUNCATION_MARKER = "\n[... middle of conversation omitted ...]\n"


def render_transcript(messages: list[dict[str, str]], max_chars: int) -> str:
    """Render turns as text, keeping both ends when it exceeds ``max_chars``."""
    text = "\n\n".join(f"{m['role'].upper()}: {m['content'].strip()}" for m in messages)
    if len(text) <= max_chars:
        return text
    head = max_chars * 2 // 3
    tail = max_chars - head
    return text[:head] + TRUNCATION_MARKER + text[-tail:]
