"""The LLM privacy auditor: rates each cluster's reportable text on Clio's 1-5 privacy scale.

A cluster's title and description are shown to the LLM with a rubric and worked
examples; the answer is constrained to ``PrivacyRating``'s JSON schema and
validated with it. A cluster is released only when its rating is at least the
configured floor; a rating that stays invalid after the retries withholds the
cluster (fail closed). Ratings are cached in a Parquet file keyed by
``sha256(text, prompt version, model id)``, so reruns only rate new text.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
from pydantic import BaseModel, Field, ValidationError

from summarize.llm import LLM, JsonRequest, LLMError

PROMPT_VERSION = "privacy-audit-v1"  # bump on any change to the prompt, schema or DETAILS_CAP rule
OK, BELOW_FLOOR, AUDIT_FAILED = "ok", "below_floor", "audit_failed"
NO_DETAILS = {"none", "", "n/a", "no", "nothing"}
DETAILS_CAP = 2
CACHE_SCHEMA = {"cache_key": pl.Utf8, "privacy_score": pl.Int64, "model_score": pl.Int64}

PRIVACY_RUBRIC = """\
1: identifies a specific person, or gives private details about someone (a name with a health \
condition, an address, a phone number, an email, an account or ID number, a password).
2: details that narrow it down to a few people (a small named organisation, a rare event with a place and a date).
3: specific details but no way to tell who is involved.
4: general, with only ordinary details.
5: nothing private; a fully general description of what many people ask about."""


class PrivacyRating(BaseModel):
    """What the auditor returns for one cluster text."""

    details: str = Field(
        min_length=1,
        max_length=200,
        description="The names, contact details, addresses, ID numbers, secrets or private facts about "
        'one person that the text contains, comma-separated; "none" if there are none.',
    )
    score: int = Field(ge=1, le=5, description="Privacy score from the rubric, 1 to 5.")

    @property
    def lists_details(self) -> bool:
        """Whether the model named any identifying or private detail."""
        return self.details.strip().lower().strip(".") not in NO_DETAILS

    @property
    def effective_score(self) -> int:
        """The score, capped at ``DETAILS_CAP`` when the model listed details.

        The listed details are the model's own evidence; a small model names
        them reliably but often scores them too high, so its score cannot
        exceed the cap when it found something.
        """
        return min(self.score, DETAILS_CAP) if self.lists_details else self.score


class Score(NamedTuple):
    """A validated rating: the score used for release and the model's own score."""

    score: int
    model_score: int


class RatingError(ValueError):
    """The model's answer is not a valid ``PrivacyRating``."""


def rating_schema() -> dict[str, Any]:
    """The JSON schema the model is constrained to."""
    schema = copy.deepcopy(PrivacyRating.model_json_schema())
    # llama.cpp's grammar ignores integer bounds; an enum constrains decoding everywhere.
    schema["properties"]["score"] = {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    schema["required"] = list(schema["properties"])
    schema["additionalProperties"] = False
    return schema


def parse_rating(text: str) -> PrivacyRating:
    """Validate the model's JSON answer.

    Raises:
        RatingError: Naming the field and the problem.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RatingError(f"invalid JSON: {exc.msg}") from None
    try:
        return PrivacyRating.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "<object>"
        raise RatingError(f"field {field!r}: {first['msg']}") from None


def _output_format() -> str:
    props = PrivacyRating.model_json_schema()["properties"]
    return "\n".join(f'- "{k}": {v.get("description", "")}' for k, v in props.items())


SYSTEM_PROMPT = """\
You are a privacy auditor. Analysts will read the text of a usage-report cluster: a title and \
a description of what a group of users asked an AI assistant. Rate how private the text is, so \
that no analyst can learn anything about one person from it.

Privacy scale for "score":
{rubric}

Placeholders such as <PERSON> or <EMAIL_ADDRESS> mark details that were already removed; they \
are not private. Harmful or sensitive topics are not private by themselves: rate only whether \
the text identifies or exposes someone.

Answer with one JSON object with these fields:
{output_format}"""

# Worked examples, sent before every text (a constant prefix for engines with prefix caching).
EXAMPLES = [
    (
        "Title: Help for Marta Kowalczyk's diabetes\n"
        "Description: Marta Kowalczyk of 14 Elm Street, Leeds asked how to manage her type 1 diabetes; "
        "she gave her phone 07700 900123.",
        {"details": "Marta Kowalczyk, type 1 diabetes, 14 Elm Street Leeds, 07700 900123", "score": 1},
    ),
    (
        "Title: Debugging pandas dataframe merges\n"
        "Description: Users asked why joining two dataframes produced duplicate rows and how to fix the join keys.",
        {"details": "none", "score": 5},
    ),
    (
        "Title: Account recovery requests\n"
        "Description: A user gave the email j.okafor@example.org and password Tulip-7781 and asked to unlock the account.",
        {"details": "j.okafor@example.org, password Tulip-7781", "score": 1},
    ),
    (
        "Title: Complaints about an employer\n"
        "Description: Users described conflicts with managers at <ORGANIZATION> and asked how to file complaints.",
        {"details": "none", "score": 4},
    ),
    (
        "Title: Questions about HIV treatment\n"
        "Description: Daniel Ferreira asked whether his HIV medication interacts with alcohol.",
        {"details": "Daniel Ferreira, HIV", "score": 1},
    ),
    (
        "Title: Questions about managing diabetes\n"
        "Description: Users asked how to adjust insulin doses and plan meals for diabetes.",
        {"details": "none", "score": 5},
    ),
]


def cluster_text(title: str | None, description: str | None) -> str:
    """The reportable text of one cluster, as the auditor sees it."""
    return f"Title: {title or ''}\nDescription: {description or ''}"


def _user_turn(text: str) -> str:
    return f"Cluster text:\n<text>\n{text}\n</text>\n\nReturn the JSON object."


def build_prompt(text: str) -> list[dict[str, str]]:
    """The chat messages asking for one cluster text's privacy rating."""
    system = SYSTEM_PROMPT.format(rubric=PRIVACY_RUBRIC, output_format=_output_format())
    messages = [{"role": "system", "content": system}]
    for example, answer in EXAMPLES:
        messages.append({"role": "user", "content": _user_turn(example)})
        messages.append({"role": "assistant", "content": json.dumps(answer)})
    messages.append({"role": "user", "content": _user_turn(text)})
    return messages


def audit_cache_key(text: str, model_id: str) -> str:
    """Key of one rating: the text, the prompt version and the model."""
    payload = json.dumps(
        {"text": text, "prompt": PROMPT_VERSION, "model": model_id}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    frame.write_parquet(tmp)
    os.replace(tmp, path)


class PrivacyAuditor:
    """Rates cluster texts with an LLM and withholds those below a privacy floor.

    Args:
        llm: The model (anything implementing ``summarize.llm.LLM``).
        floor: Lowest score that is released (Clio's scale, 1-5).
        cache_path: Parquet file of earlier ratings (read if present, updated after each audit).
        max_attempts: Tries per text; later tries sample at ``retry_temperature``.
        max_tokens: Output budget of one rating.
        retry_temperature: Sampling temperature of retries.
    """

    def __init__(
        self,
        llm: LLM,
        floor: int = 3,
        cache_path: Path | str | None = None,
        *,
        max_attempts: int = 2,
        max_tokens: int = 128,
        retry_temperature: float = 0.7,
    ):
        if not 1 <= floor <= 5:
            raise ValueError(f"privacy floor must be 1 to 5, got {floor}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.llm = llm
        self.floor = floor
        self.cache_path = Path(cache_path) if cache_path else None
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens
        self.retry_temperature = retry_temperature
        self.schema = rating_schema()
        self.cache_hits = 0

    def _request(self, text: str, attempt: int) -> JsonRequest:
        return JsonRequest(
            build_prompt(text),
            self.schema,
            self.max_tokens,
            temperature=0.0 if attempt == 0 else self.retry_temperature,
            attempt=attempt,
        )

    def _load_cache(self) -> dict[str, Score]:
        if self.cache_path is None or not self.cache_path.exists():
            return {}
        cached = pl.read_parquet(self.cache_path)
        if set(cached.columns) != set(CACHE_SCHEMA):
            return {}  # an older cache format: rate again (it is rewritten in the current one)
        return {
            k: Score(s, m)
            for k, s, m in zip(
                cached["cache_key"], cached["privacy_score"], cached["model_score"], strict=True
            )
        }

    def rate(self, texts: Sequence[str]) -> list[Score | None]:
        """Scores for ``texts`` in order; ``None`` where every attempt failed.

        Failed ratings are not cached, so a later run tries them again.
        """
        cache = self._load_cache()
        keys = [audit_cache_key(t, self.llm.model_id) for t in texts]
        scores: list[Score | None] = [cache.get(k) for k in keys]
        self.cache_hits = sum(s is not None for s in scores)
        # One request per distinct uncached text.
        first_index: dict[str, int] = {}
        for i, (key, score) in enumerate(zip(keys, scores, strict=True)):
            if score is None:
                first_index.setdefault(key, i)
        pending = list(first_index.values())
        attempt = 0
        while pending and attempt < self.max_attempts:
            answers = self.llm.generate_json_many([self._request(texts[i], attempt) for i in pending])
            retry = []
            for i, answer in zip(pending, answers, strict=True):
                if isinstance(answer, LLMError):
                    retry.append(i)
                    continue
                try:
                    rating = parse_rating(answer)
                except RatingError:
                    retry.append(i)
                    continue
                scores[i] = Score(rating.effective_score, rating.score)
            pending = retry
            attempt += 1
        fresh = {keys[i]: score for i in first_index.values() if (score := scores[i]) is not None}
        scores = [
            scores[first_index[k]] if s is None and k in first_index else s
            for k, s in zip(keys, scores, strict=True)
        ]
        if self.cache_path is not None and fresh:
            merged = {**cache, **fresh}
            _write_atomic(
                pl.DataFrame(
                    {
                        "cache_key": list(merged),
                        "privacy_score": [s.score for s in merged.values()],
                        "model_score": [s.model_score for s in merged.values()],
                    },
                    schema=CACHE_SCHEMA,
                ),
                self.cache_path,
            )
        return scores

    def audit(
        self, frame: pl.DataFrame, title: str = "title", description: str = "description"
    ) -> pl.DataFrame:
        """Rate every row's title and description.

        Returns:
            ``frame`` with ``privacy_score`` (Int64, null when the rating failed)
            and ``audit_reason``: ``ok``, ``below_floor`` or ``audit_failed``.
        """
        texts = [
            cluster_text(t, d)
            for t, d in zip(frame[title].to_list(), frame[description].to_list(), strict=True)
        ]
        scores = self.rate(texts)
        reasons = [
            AUDIT_FAILED if s is None else (OK if s.score >= self.floor else BELOW_FLOOR) for s in scores
        ]
        return frame.with_columns(
            pl.Series("privacy_score", [None if s is None else s.score for s in scores], dtype=pl.Int64),
            pl.Series("audit_reason", reasons, dtype=pl.Utf8),
        )


def split_audited(audited: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(released, withheld)`` from an audited frame; ``withheld`` keeps only ``cluster_id`` and ``reason``."""
    released = audited.filter(pl.col("audit_reason") == OK).drop("privacy_score", "audit_reason")
    withheld = audited.filter(pl.col("audit_reason") != OK).select(
        "cluster_id", pl.col("audit_reason").alias("reason")
    )
    return released, withheld
