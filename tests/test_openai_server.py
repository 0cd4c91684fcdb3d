"""The vLLM client against a real OpenAI-compatible HTTP server on loopback.

The server is llama-cpp-python's own (``python -m llama_cpp.server``, the
``llama-cpp-python[server]`` extra) serving the embedded model's GGUF file. It
accepts ``response_format: {"type": "json_object", "schema": ...}`` but rejects
OpenAI's ``json_schema`` form (HTTP 500, a request validation error), so the
facet requests here use the client's ``json_object`` dialect; vLLM takes the
default ``json_schema`` one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from summarize.extract import FacetExtractor
from summarize.facets import FacetOutput, facet_schema, parse_facets
from summarize.llm import JsonRequest, LLMError, ProbedJson, VLLMServerLLM

SERVER_PACKAGES = ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
ALIAS = "lookout-test"
STARTUP_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a llama-cpp-python server on a free loopback port, stopped after the module."""
    for name in SERVER_PACKAGES:
        pytest.importorskip(name, reason="llama-cpp-python[server] packages are not installed")
    from summarize.embedded import SMALL_MODEL, resolve_model_path

    try:
        _, model_path = resolve_model_path(SMALL_MODEL)
    except LLMError as exc:
        pytest.skip(f"embedded model unavailable: {exc}")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096", "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    # One thread: llama.cpp's spinning threads slow down badly on shared, busy cores.
    with open(log, "wb") as sink:  # a file, not a pipe: the model load writes more than a pipe buffers
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S}s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _conversation(cid: str, text: str) -> dict:
    return {
        "conversation_id": cid,
        "account": "p_test",
        "timestamp": "2026-11-04T10:00:00Z",
        "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": "Sure, here is how."},
        ],
    }


@pytest.mark.slow
def test_facets_over_http_are_schema_valid(server, taxonomy):
    llm = VLLMServerLLM(server, ALIAS, max_concurrency=2, timeout_s=300, structured_output="json_object")
    conversations = [
        _conversation("py", "How do I sort a list of tuples by the second element in Python?"),
        _conversation("cv", "Can you help me write a short cover letter for a bakery job?"),
    ]
    rows = FacetExtractor(llm, taxonomy).extract_many(conversations)
    assert all(isinstance(r, dict) for r in rows), rows  # a FacetFailure carries the reason
    assert [r["conversation_id"] for r in rows] == ["py", "cv"]
    for row in rows:
        FacetOutput.model_validate({k: row[k] for k in FacetOutput.model_fields})
        assert row["model_id"] == f"vllm:{ALIAS}" and row["language"] == "en"
        assert set(row["categories"]) <= set(taxonomy.codes)
        # The server returns top_logprobs (its default logits_all=True), so the score is continuous.
        assert row["concern_score_source"] == "token_probs"
        assert 1.0 <= row["concern_score"] <= 5.0


@pytest.mark.slow
def test_raw_answer_is_constrained_json(server, taxonomy):
    """One request straight through the client: parseable facets and the concern distribution."""
    from summarize.facets import CONCERN_VALUES, build_prompt

    llm = VLLMServerLLM(server, ALIAS, timeout_s=300, structured_output="json_object")
    request = JsonRequest(
        build_prompt("USER: what is the capital of France?", taxonomy),
        facet_schema(taxonomy),
        200,
        probe_field="concerning",
    )
    answer = llm.generate_json(request)
    facets = parse_facets(answer, taxonomy)
    assert 1 <= facets.concerning <= 5
    assert isinstance(answer, ProbedJson) and answer.value_probs is not None
    assert sorted(answer.value_probs) == list(CONCERN_VALUES)
    assert sum(answer.value_probs.values()) == pytest.approx(1.0)
    assert answer.value_probs[facets.concerning] > 0.0  # the written value had probability mass


@pytest.mark.slow
def test_server_rejects_openai_json_schema_form(server, taxonomy):
    """llama-cpp-python's server has no ``json_schema`` response format: an LLMError, not a crash."""
    llm = VLLMServerLLM(server, ALIAS, max_retries=1, backoff_s=0)
    request = JsonRequest([{"role": "user", "content": "hi"}], facet_schema(taxonomy), 8)
    with pytest.raises(LLMError, match="after 2 attempts: vLLM server answered HTTP 500"):
        llm.generate_json(request)


@pytest.mark.slow
def test_read_timeout_is_retried_then_an_llm_error(server, taxonomy):
    llm = VLLMServerLLM(
        server, ALIAS, timeout_s=0.05, max_retries=1, backoff_s=0, structured_output="json_object"
    )
    request = JsonRequest([{"role": "user", "content": "Count from one to ten."}], facet_schema(taxonomy), 4)
    with pytest.raises(LLMError, match="after 2 attempts.*timed out"):
        llm.generate_json(request)


def test_closed_port_fails_after_retries_with_backoff():
    port = _free_port()  # nothing listens there once the probe socket is closed
    llm = VLLMServerLLM(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, backoff_s=0.1, timeout_s=5)
    started = time.monotonic()
    [answer] = llm.generate_json_many([JsonRequest([{"role": "user", "content": "hi"}], {"type": "object"})])
    assert isinstance(answer, LLMError) and "after 3 attempts" in str(answer)
    assert time.monotonic() - started >= 0.1 + 0.2  # backoff doubled between the attempts
