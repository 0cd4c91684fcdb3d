"""The continuous concern score: token probabilities to a score, on both backends."""

from __future__ import annotations

import json
import math
import pickle

import httpx
import numpy as np
import pytest

from summarize.extract import FacetExtractor
from summarize.facets import (
    CONCERN_VALUES,
    SCORE_FROM_INTEGER,
    SCORE_FROM_PROBS,
    concern_at_least,
    concern_expected,
    concern_score,
)
from summarize.llm import (
    JsonRequest,
    ProbedJson,
    VLLMServerLLM,
    normalise_logprobs,
    probs_from_chat_logprobs,
    value_prefix,
)
from tests.conftest import ScriptedLLM

VALID = {
    "summary": "The user asked how to sort a list and got an explanation.",
    "request": "sort a list in Python",
    "task": "coding",
    "topic": "python",
    "concerning": 2,
    "categories": ["none"],
}
CONVERSATION = {
    "conversation_id": "c1",
    "account": "p_abc",
    "timestamp": "2026-11-04T10:00:00Z",
    "messages": [
        {"role": "user", "content": "How do I sort a list of tuples by the second element in Python?"}
    ],
}


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        ({1: 0.0, 2: 0.0}, {1: 0.5, 2: 0.5}),
        ({1: math.log(0.2), 2: math.log(0.6), 3: math.log(0.2)}, {1: 0.2, 2: 0.6, 3: 0.2}),
        ({1: 1000.0, 2: 999.0}, {1: 1 / (1 + math.exp(-1)), 2: math.exp(-1) / (1 + math.exp(-1))}),
        ({1: -math.inf, 2: -3.0, 3: -3.0}, {1: 0.0, 2: 0.5, 3: 0.5}),
    ],
)
def test_normalise_logprobs_is_a_softmax(logprobs, expected):
    out = normalise_logprobs(logprobs)
    assert list(out) == sorted(logprobs)
    assert out == pytest.approx(expected)


def test_normalise_logprobs_needs_a_finite_value():
    with pytest.raises(ValueError, match="no finite"):
        normalise_logprobs({1: -math.inf})


@pytest.mark.parametrize(
    ("probs", "expected", "at_least_3"),
    [
        ({1: 1.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0}, 1.0, 0.0),
        ({1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 1.0}, 5.0, 1.0),
        ({1: 0.2, 2: 0.2, 3: 0.2, 4: 0.2, 5: 0.2}, 3.0, 0.6),
        ({1: 0.5, 2: 0.0, 3: 0.0, 4: 0.5, 5: 0.0}, 2.5, 0.5),
        ({1: 0.1, 2: 0.6, 3: 0.3, 4: 0.0, 5: 0.0}, 2.2, 0.3),
    ],
)
def test_concern_expected_and_tail(probs, expected, at_least_3):
    assert concern_expected(probs) == pytest.approx(expected)
    assert concern_at_least(probs, 3) == pytest.approx(at_least_3)
    assert concern_score(4, probs) == (pytest.approx(expected), SCORE_FROM_PROBS)


def test_concern_expected_rejects_unnormalised():
    with pytest.raises(ValueError, match="sum to"):
        concern_expected({1: 0.5, 2: 0.4})


@pytest.mark.parametrize("concerning", [1, 3, 5])
def test_without_a_distribution_the_integer_is_the_score(concerning):
    assert concern_score(concerning, None) == (float(concerning), SCORE_FROM_INTEGER)


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ('{"a": 1, "concerning": 4, "b": []}', '{"a": 1, "concerning": '),
        ('{"concerning":3}', '{"concerning":'),
        ('{"concerning" :\n  5}', '{"concerning" :\n  '),
        ('{"concerning": 12}', None),  # not one digit
        ('{"concerning": "4"}', None),
        ('{"summary": "x"}', None),
    ],
)
def test_value_prefix(text, prefix):
    assert value_prefix(text, "concerning") == prefix


def test_probed_json_is_text_that_survives_pickling():
    answer = ProbedJson('{"concerning": 2}', {1: 0.25, 2: 0.75})
    assert json.loads(answer) == {"concerning": 2}
    copy = pickle.loads(pickle.dumps(answer))
    assert copy == answer and copy.value_probs == {1: 0.25, 2: 0.75}


def _chat_logprobs(tokens: list[str], at: int, alternatives: dict[str, float]) -> dict:
    """An OpenAI chat ``logprobs`` object: ``alternatives`` at token ``at``, the token itself elsewhere."""
    content = []
    for i, token in enumerate(tokens):
        top = [{"token": t, "logprob": lp} for t, lp in alternatives.items()] if i == at else []
        content.append(
            {"token": token, "logprob": -0.1, "top_logprobs": top or [{"token": token, "logprob": -0.1}]}
        )
    return {"content": content}


@pytest.mark.parametrize(
    ("tokens", "at", "alternatives", "expected"),
    [
        # digit as its own token (Qwen, Llama 3)
        (['{"', "concerning", '":', " ", "4", "}"], 4, {"4": math.log(0.6), "2": math.log(0.3), "x": -1.0, "5": math.log(0.1)},
         {1: 0.0, 2: 0.3, 3: 0.0, 4: 0.6, 5: 0.1}),
        # digit glued to its space (sentencepiece-style " 4"); both spellings of a value add up
        (['{"concerning":', " 4", "}"], 1, {" 4": math.log(0.5), "4": math.log(0.25), " 1": math.log(0.25)},
         {1: 0.25, 2: 0.0, 3: 0.0, 4: 0.75, 5: 0.0}),
    ],
)  # fmt: skip
def test_probs_from_chat_logprobs(tokens, at, alternatives, expected):
    content = "".join(tokens)
    probs = probs_from_chat_logprobs(
        content, _chat_logprobs(tokens, at, alternatives), "concerning", CONCERN_VALUES
    )
    assert probs == pytest.approx(expected)


@pytest.mark.parametrize(
    "logprobs",
    [
        None,  # the server sent none
        {"content": []},
        {"content": [{"token": '{"concerning": 9}', "logprob": -0.1, "top_logprobs": []}]},  # spells other text
        {"content": [{"token": '{"concerning": ', "logprob": 0.0}, {"token": "4", "logprob": 0.0,
                      "top_logprobs": [{"token": "x", "logprob": 0.0}]}, {"token": "}", "logprob": 0.0}]},  # no digit
    ],
)  # fmt: skip
def test_probs_from_chat_logprobs_without_usable_logprobs(logprobs):
    assert probs_from_chat_logprobs('{"concerning": 4}', logprobs, "concerning", CONCERN_VALUES) is None


def _server(with_logprobs: bool, calls: list) -> httpx.MockTransport:
    answer = json.dumps(VALID)
    prefix = value_prefix(answer, "concerning")
    tokens = [prefix, answer[len(prefix)], answer[len(prefix) + 1 :]]
    logprobs = _chat_logprobs(tokens, 1, {"2": math.log(0.5), "1": math.log(0.25), "3": math.log(0.25)})

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        choice = {"message": {"content": answer}, **({"logprobs": logprobs} if with_logprobs else {})}
        return httpx.Response(200, json={"choices": [choice]})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("with_logprobs", "score", "source"),
    [(True, 0.25 * 1 + 0.5 * 2 + 0.25 * 3, SCORE_FROM_PROBS), (False, 2.0, SCORE_FROM_INTEGER)],
)
def test_server_client_concern_score(taxonomy, with_logprobs, score, source):
    calls: list = []
    llm = VLLMServerLLM("http://vllm:8000/v1", "qwen", backoff_s=0, transport=_server(with_logprobs, calls))
    [row] = FacetExtractor(llm, taxonomy).extract_many([CONVERSATION])
    assert calls[0]["logprobs"] is True and calls[0]["top_logprobs"] == VLLMServerLLM.TOP_LOGPROBS
    assert row["concerning"] == 2
    assert (row["concern_score"], row["concern_score_source"]) == (pytest.approx(score), source)


def test_client_asks_for_logprobs_only_when_probing():
    calls: list = []
    llm = VLLMServerLLM("http://vllm:8000/v1", "qwen", backoff_s=0, transport=_server(True, calls))
    out = llm.generate_json(JsonRequest([{"role": "user", "content": "hi"}], {"type": "object"}))
    assert "logprobs" not in calls[0] and not isinstance(out, ProbedJson)


def test_backend_without_capability_records_the_integer(taxonomy):
    llm = ScriptedLLM([json.dumps({**VALID, "concerning": 4})])
    [row] = FacetExtractor(llm, taxonomy).extract_many([CONVERSATION])
    assert llm.requests[0].probe_field == "concerning"  # asked, but this backend cannot answer it
    assert (row["concerning"], row["concern_score"], row["concern_score_source"]) == (
        4,
        4.0,
        SCORE_FROM_INTEGER,
    )


class _Keep:
    """Passes requests to a real LLM and keeps its answers."""

    def __init__(self, llm):
        self.llm, self.model_id, self.answers = llm, llm.model_id, []

    def generate_json_many(self, requests):
        answers = self.llm.generate_json_many(requests)
        self.answers += answers
        return answers


@pytest.mark.slow
def test_embedded_concern_score_matches_its_distribution(embedded_llm, taxonomy):
    """One real extraction: the score is the mean of the distribution read at the value's position."""
    kept = _Keep(embedded_llm)
    [row] = FacetExtractor(kept, taxonomy, max_attempts=1).extract_many([CONVERSATION])  # type: ignore[arg-type]
    assert isinstance(row, dict), row
    [answer] = kept.answers
    probs = answer.value_probs
    assert sorted(probs) == list(CONCERN_VALUES) and sum(probs.values()) == pytest.approx(1.0)
    assert row["concern_score_source"] == SCORE_FROM_PROBS
    assert 1.0 <= row["concern_score"] <= 5.0
    assert row["concern_score"] == pytest.approx(sum(v * p for v, p in probs.items()))
    assert probs[row["concerning"]] > 0.0
    # The probe reused the KV cache; a full evaluation of the same tokens gives the same distribution.
    llama = embedded_llm._llama
    tokens = llama.input_ids[: llama.n_tokens].tolist()
    assert llama.detokenize(tokens[-8:]).decode().endswith('"concerning": ')
    llama.n_tokens = 0
    llama.eval(tokens)
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
    ids = [llama.tokenize(str(v).encode(), add_bos=False, special=False)[0] for v in CONCERN_VALUES]
    full = normalise_logprobs({v: float(logits[i]) for v, i in zip(CONCERN_VALUES, ids, strict=True)})
    assert full == pytest.approx(probs, abs=0.03)  # batch shapes change the float sums a little
