"""Facets: schema, prompt, the embedded engine, retries and the Beam dead-letter path."""

from __future__ import annotations

import json

import httpx
import polars as pl
import pytest

from summarize.extract import FacetExtractor, FacetFailure
from summarize.facets import (
    TRUNCATION_MARKER,
    FacetOutput,
    FacetValidationError,
    build_prompt,
    facet_schema,
    parse_facets,
    render_transcript,
)
from summarize.llm import LLM, JsonRequest, LLMError, LLMSpec, VLLMServerLLM
from tests.conftest import ScriptedLLM

VALID = {
    "summary": "The user asked how to sort a list and got an explanation.",
    "request": "sort a list in Python",
    "task": "coding",
    "topic": "python",
    "concerning": 1,
    "categories": ["none"],
}
CONVERSATION = {
    "conversation_id": "c1",
    "account": "p_abc",
    "timestamp": "2026-11-04T10:00:00Z",
    "messages": [
        {"role": "user", "content": "How do I sort a list of tuples by the second element in Python?"},
        {"role": "assistant", "content": "Use sorted(items, key=lambda t: t[1])."},
    ],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"concerning": 7}, "concerning"),
        ({"concerning": "high"}, "concerning"),
        ({"task": "gardening"}, "task"),
        ({"summary": ""}, "summary"),
        ({"categories": ["xyz"]}, "categories"),
        ({"categories": ["vcr"] * 5}, "categories"),
    ],
)
def test_invalid_facets_name_the_field(taxonomy, change, field):
    with pytest.raises(FacetValidationError, match=field):
        parse_facets(json.dumps({**VALID, **change}), taxonomy)


def test_none_category_means_no_category(taxonomy):
    assert parse_facets(json.dumps(VALID), taxonomy).categories == []
    both = parse_facets(json.dumps({**VALID, "categories": ["none", "ncr", "ncr"]}), taxonomy)
    assert both.categories == ["ncr"]


def test_invalid_json_is_rejected(taxonomy):
    with pytest.raises(FacetValidationError, match="invalid JSON"):
        parse_facets('{"summary": ', taxonomy)


def test_schema_constrains_codes_and_score(taxonomy):
    schema = facet_schema(taxonomy)
    assert schema["properties"]["concerning"]["enum"] == [1, 2, 3, 4, 5]
    assert schema["properties"]["categories"]["items"]["enum"] == ["none", *taxonomy.codes]
    assert set(schema["required"]) == set(FacetOutput.model_fields)


def test_prompt_lists_taxonomy_and_ends_with_the_conversation(taxonomy):
    messages = build_prompt("USER: hello", taxonomy)
    assert all(c.code in messages[0]["content"] for c in taxonomy.categories)
    assert messages[-1]["role"] == "user" and "USER: hello" in messages[-1]["content"]


@pytest.mark.parametrize("limit", [50, 200])
def test_truncation_keeps_both_ends(limit):
    messages = [{"role": "user", "content": "START " + "x" * 1000 + " END"}]
    text = render_transcript(messages, limit)
    assert text.startswith("USER: START") and text.endswith("END")
    assert TRUNCATION_MARKER in text
    assert len(text) <= limit + len(TRUNCATION_MARKER)


def test_retry_then_success(taxonomy):
    llm = ScriptedLLM(["not json", json.dumps(VALID)])
    [row] = FacetExtractor(llm, taxonomy, max_attempts=2).extract_many([CONVERSATION])
    assert isinstance(row, dict) and row["task"] == "coding" and row["language"] == "en"
    assert [r.attempt for r in llm.requests] == [0, 1]
    assert llm.requests[1].temperature > 0


def test_invalid_output_becomes_failure_with_reason(taxonomy):
    llm = ScriptedLLM([json.dumps({**VALID, "concerning": 9}), LLMError("timeout")])
    [failure] = FacetExtractor(llm, taxonomy, max_attempts=2).extract_many([CONVERSATION])
    assert isinstance(failure, FacetFailure)
    assert failure.attempts == 2 and "timeout" in failure.reason


MODEL_CALLS: list[str] = []


class ByConversationLLM(LLM):
    """Test double: valid facets, except for conversations containing BROKEN."""

    model_id = "embedded:qwen2.5-coder-1.5b-instruct-q4_k_m"  # the id LLMSpec() reports, for cache keys

    def generate_json(self, request):
        MODEL_CALLS.append(request.messages[-1]["content"])
        return '{"summary": "x"' if "BROKEN" in request.messages[-1]["content"] else json.dumps(VALID)


class ScriptedHandler:
    """Builds a FacetModelHandler whose model is the test double (no weights loaded)."""

    @staticmethod
    def make():
        from pipelines import summarize as job
        from summarize.taxonomy import load_taxonomy

        class Handler(job.FacetModelHandler):
            def load_model(self):
                return FacetExtractor(ByConversationLLM(), load_taxonomy(), max_attempts=2)

        return Handler(LLMSpec(), categories="llm", share_across_processes=False)


def _redacted_rows():
    import datetime as dt

    ts = dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
    return [
        {**CONVERSATION, "conversation_id": "ok", "timestamp": ts, "entities": [], "dropped_parts": 0},
        {
            **CONVERSATION,
            "conversation_id": "broken",
            "timestamp": ts,
            "messages": [{"role": "user", "content": "BROKEN"}],
            "entities": [],
            "dropped_parts": 0,
        },
    ]


def _run_job(tmp_path, name, cache=None):
    import apache_beam as beam
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines import summarize as job
    from pipelines.common import REDACTED_SCHEMA

    source = tmp_path / "redacted.parquet"
    pq.write_table(pa.Table.from_pylist(_redacted_rows(), schema=REDACTED_SCHEMA), source)
    out, dead = tmp_path / f"{name}.parquet", tmp_path / f"{name}_dead.parquet"
    with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=FnApiRunner"])) as p:
        job.build(p, str(source), str(out), str(dead), ScriptedHandler.make(), str(cache) if cache else None)
    return pl.read_parquet(out), pl.read_parquet(dead)


def test_beam_job_dead_letters_invalid_output(tmp_path):
    """RunInference with a scripted model: one conversation ok, one dead-lettered with its reason."""
    facets, letters = _run_job(tmp_path, "facets")
    assert facets["conversation_id"].to_list() == ["ok"]
    assert letters["conversation_id"].to_list() == ["broken"]
    reason = letters["reason"][0]
    assert reason.startswith("FacetExtractionError: after 2 attempts: invalid model output")
    assert "BROKEN" not in reason and "Traceback" not in reason


def test_facet_cache_skips_the_model_on_rerun(tmp_path):
    first, _ = _run_job(tmp_path, "first")
    MODEL_CALLS.clear()
    second, letters = _run_job(tmp_path, "second", cache=tmp_path / "first.parquet")
    assert second.drop("timestamp").equals(first.drop("timestamp"))
    assert all("BROKEN" in call for call in MODEL_CALLS)  # only the uncached conversation went to the model
    assert letters["conversation_id"].to_list() == ["broken"]


def test_cache_key_changes_with_prompt_model_and_text(taxonomy):
    from summarize import extract

    key = extract.facet_cache_key(CONVERSATION["messages"], "m1", taxonomy, "llm")
    assert key == extract.facet_cache_key(
        json.loads(json.dumps(CONVERSATION["messages"])), "m1", taxonomy, "llm"
    )
    assert key != extract.facet_cache_key(CONVERSATION["messages"], "m2", taxonomy, "llm")
    assert key != extract.facet_cache_key([{"role": "user", "content": "other"}], "m1", taxonomy, "llm")
    assert key != extract.facet_cache_key(
        CONVERSATION["messages"], "m1", taxonomy, "llm", prompt_version="facets-v999"
    )
    assert key != extract.facet_cache_key(
        CONVERSATION["messages"], "m1", taxonomy, "examples:all-MiniLM-L6-v2:0123"
    )


@pytest.mark.parametrize("version", ["facets-v1", "facets-v2", "facets-v999"])
def test_cache_key_of_an_older_prompt_version_is_stable_and_distinct(taxonomy, version):
    from summarize import extract

    current = extract.facet_cache_key(CONVERSATION["messages"], "m1", taxonomy, "llm")
    assert current == extract.facet_cache_key(
        CONVERSATION["messages"], "m1", taxonomy, "llm", prompt_version=extract.PROMPT_VERSION
    )
    older = extract.facet_cache_key(CONVERSATION["messages"], "m1", taxonomy, "llm", prompt_version=version)
    assert older == extract.facet_cache_key(
        CONVERSATION["messages"], "m1", taxonomy, "llm", prompt_version=version
    )
    assert (older == current) == (version == extract.PROMPT_VERSION)


def test_vllm_client_payload_retries_and_auth(monkeypatch):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(503)
        return httpx.Response(200, json={"choices": [{"message": {"content": json.dumps(VALID)}}]})

    llm = VLLMServerLLM(
        "http://vllm:8000/v1", "qwen", api_key="s3cret", backoff_s=0, transport=httpx.MockTransport(handler)
    )
    out = llm.generate_json(JsonRequest([{"role": "user", "content": "hi"}], {"type": "object"}))
    assert json.loads(out) == VALID and len(calls) == 2
    body = json.loads(calls[-1].content)
    assert body["response_format"]["type"] == "json_schema" and body["model"] == "qwen"
    assert calls[-1].headers["authorization"] == "Bearer s3cret"


def test_vllm_client_gives_up_with_llm_error():
    llm = VLLMServerLLM(
        "http://vllm:8000/v1",
        "qwen",
        max_retries=1,
        backoff_s=0,
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
    )
    with pytest.raises(LLMError, match="after 2 attempts"):
        llm.generate_json(JsonRequest([{"role": "user", "content": "hi"}], {"type": "object"}))


def test_llm_spec_reads_api_key_from_named_env(monkeypatch):
    monkeypatch.setenv("MY_KEY", "abc")
    spec = LLMSpec(kind="vllm", base_url="http://x/v1", model="m", api_key_env="MY_KEY")
    assert "abc" not in json.dumps(spec.describe())
    assert spec.build()._client.headers["authorization"] == "Bearer abc"


@pytest.mark.slow
def test_embedded_engine_returns_valid_facets(embedded_llm, taxonomy):
    from tests.conftest import sample_records

    record = next(r for r in sample_records("2026-11-01") if len(json.dumps(r["messages"])) < 1500)
    conversation = {**record, "account": "p_test"}
    [row] = FacetExtractor(embedded_llm, taxonomy).extract_many([conversation])
    assert isinstance(row, dict), row
    FacetOutput.model_validate({k: row[k] for k in FacetOutput.model_fields})
    assert row["model_id"] == "embedded:qwen2.5-coder-0.5b-instruct-q4_k_m"
    assert set(row["categories"]) <= set(taxonomy.codes)


@pytest.mark.slow
def test_default_embedded_model_rates_a_harmful_request_above_a_benign_one(taxonomy):
    """The default model (what the demo and the local deployment run), loaded as they load it."""
    from summarize.embedded import DEFAULT_MODEL, EmbeddedLLM
    from tests.conftest import require_shared

    # XSTest's first contrast pair: the same verb about a program (safe) and about a person (unsafe).
    xstest = pl.read_csv(require_shared("xstest", "xstest_prompts.csv"))
    pairs = {
        label: xstest.filter(pl.col("id") == i).row(0, named=True)["prompt"]
        for label, i in (("safe", 1), ("unsafe", 26))
    }
    conversations = [
        {**CONVERSATION, "conversation_id": label, "messages": [{"role": "user", "content": text}]}
        for label, text in pairs.items()
    ]
    rows = FacetExtractor(EmbeddedLLM(), taxonomy).extract_many(conversations)
    assert all(isinstance(row, dict) for row in rows), rows
    safe, unsafe = rows
    assert safe["model_id"] == unsafe["model_id"] == f"embedded:{DEFAULT_MODEL}"
    assert unsafe["concern_score"] > safe["concern_score"], (safe["concern_score"], unsafe["concern_score"])


@pytest.mark.parametrize("name", ["ailuminate_v1", "llama_guard_3", "aegis_2"])
def test_bundled_taxonomies_load_and_map_to_ailuminate(name):
    from summarize.taxonomy import load_taxonomy

    taxonomy, ailuminate = load_taxonomy(name), load_taxonomy("ailuminate_v1")
    mapping = taxonomy.mapping_to(ailuminate)
    assert set(mapping) == set(taxonomy.codes)
    assert sum(bool(v) for v in mapping.values()) >= len(taxonomy.codes) - 1


def test_invalid_taxonomy_is_a_startup_error(tmp_path):
    from summarize.taxonomy import TaxonomyError, load_taxonomy

    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: x\ntitle: x\ncategories:\n  - {code: a, name: A, definition: d, severity: extreme}\n"
    )
    with pytest.raises(TaxonomyError, match="invalid"):
        load_taxonomy(str(path))


@pytest.mark.parametrize("name", ["ailuminate_v1", "llama_guard_3", "aegis_2"])
def test_few_shot_answers_are_valid_facets_and_fit_the_taxonomy(name):
    from summarize.facets import EXAMPLES
    from summarize.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(name)
    messages = build_prompt("USER: hello", taxonomy)
    answers = [json.loads(m["content"]) for m in messages if m["role"] == "assistant"]
    fitting = [a for _, a in EXAMPLES if set(a["categories"]) <= {"none", *taxonomy.codes}]
    assert answers == fitting and answers  # examples naming codes the taxonomy lacks are left out
    for answer in answers:
        parse_facets(json.dumps(answer), taxonomy)
    assert {a["concerning"] for a in answers} >= {1}  # a benign anchor is always kept


def test_rubric_defines_every_concern_value_in_order():
    from summarize.facets import CONCERN_RUBRIC, CONCERN_VALUES

    levels = [line.split(":")[0] for line in CONCERN_RUBRIC.splitlines() if line[:1].isdigit()]
    assert levels == [str(v) for v in CONCERN_VALUES]
