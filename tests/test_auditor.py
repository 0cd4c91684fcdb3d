"""The LLM privacy auditor: schema, floor, fail-closed retries, the cache, and the audit trail."""

from __future__ import annotations

import json

import polars as pl
import pytest

from privacy.auditor import (
    AUDIT_FAILED,
    BELOW_FLOOR,
    OK,
    PrivacyAuditor,
    RatingError,
    build_prompt,
    cluster_text,
    parse_rating,
    rating_schema,
    split_audited,
)
from privacy.gate import removal_trail
from summarize.llm import LLMError
from tests.conftest import ScriptedLLM


def rating(score, details="none"):
    return json.dumps({"details": details, "score": score})


def clusters(n):
    return pl.DataFrame(
        {
            "cluster_id": list(range(n)),
            "title": [f"Title {i}" for i in range(n)],
            "description": [f"Users asked {i}." for i in range(n)],
        }
    )


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ('{"details": "none", "score": 7}', "score"),
        ('{"details": "none", "score": 0}', "score"),
        ('{"details": "none"}', "score"),
        ('{"details": "", "score": 5}', "details"),
        ("not json", "JSON"),
    ],
)
def test_invalid_ratings_name_the_problem(answer, field):
    with pytest.raises(RatingError, match=field):
        parse_rating(answer)


@pytest.mark.parametrize(
    ("details", "score", "effective"),
    [("none", 5, 5), ("None.", 4, 4), ("Jane Roe, HIV", 5, 2), ("Jane Roe", 1, 1), ("", 3, 3)],
)
def test_listed_details_cap_the_score(details, score, effective):
    from privacy.auditor import PrivacyRating

    assert PrivacyRating.model_construct(details=details, score=score).effective_score == effective


def test_schema_constrains_score_and_prompt_carries_rubric_and_text():
    schema = rating_schema()
    assert schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert schema["required"] == ["details", "score"] and schema["additionalProperties"] is False
    messages = build_prompt(cluster_text("Sorting lists", "Users asked how to sort."))
    assert "1: identifies a specific person" in messages[0]["content"]
    assert messages[-1]["role"] == "user" and "Sorting lists" in messages[-1]["content"]
    for answer in (m for m in messages if m["role"] == "assistant"):  # worked examples validate
        parse_rating(answer["content"])


@pytest.mark.parametrize(
    ("score", "floor", "reason"), [(5, 3, OK), (3, 3, OK), (2, 3, BELOW_FLOOR), (4, 5, BELOW_FLOOR)]
)
def test_floor(score, floor, reason):
    audited = PrivacyAuditor(ScriptedLLM([rating(score)]), floor=floor).audit(clusters(1))
    assert audited["audit_reason"].to_list() == [reason]
    assert audited["privacy_score"].to_list() == [score]


def test_retry_then_fail_closed():
    # Cluster 0: invalid, then valid. Cluster 1: LLM error twice -> withheld.
    llm = ScriptedLLM(['{"score": 9}', LLMError("boom"), rating(5), LLMError("again")])
    audited = PrivacyAuditor(llm, max_attempts=2).audit(clusters(2))
    assert audited["audit_reason"].to_list() == [OK, AUDIT_FAILED]
    assert audited["privacy_score"].to_list() == [5, None]
    assert [r.attempt for r in llm.requests] == [0, 0, 1, 1]
    assert llm.requests[2].temperature > 0
    released, withheld = split_audited(audited)
    assert released["cluster_id"].to_list() == [0] and "privacy_score" not in released.columns
    assert withheld.to_dicts() == [{"cluster_id": 1, "reason": AUDIT_FAILED}]


def test_cache_is_reused_per_text_prompt_and_model(tmp_path):
    cache = tmp_path / "audit_cache.parquet"
    first = ScriptedLLM([rating(5), rating(4, "Jane Roe")])
    assert PrivacyAuditor(first, cache_path=cache).rate(["a", "b"]) == [(5, 5), (2, 4)]
    first = ScriptedLLM([rating(5), rating(4, "Jane Roe")])
    PrivacyAuditor(first, cache_path=cache).audit(clusters(2))
    again = ScriptedLLM([])
    auditor = PrivacyAuditor(again, cache_path=cache)
    audited = auditor.audit(clusters(2))
    assert again.requests == [] and auditor.cache_hits == 2
    assert audited["audit_reason"].to_list() == [OK, BELOW_FLOOR]
    other_model = ScriptedLLM([rating(4), rating(4)], model_id="test:other")
    PrivacyAuditor(other_model, cache_path=cache).audit(clusters(2))
    assert len(other_model.requests) == 2
    assert set(pl.read_parquet(cache).columns) == {
        "cache_key",
        "privacy_score",
        "model_score",
    }  # no text stored


def test_failed_ratings_are_not_cached(tmp_path):
    cache = tmp_path / "audit_cache.parquet"
    PrivacyAuditor(ScriptedLLM([LLMError("x")]), cache_path=cache, max_attempts=1).audit(clusters(1))
    assert not cache.exists()


def test_duplicate_texts_are_rated_once():
    frame = pl.concat([clusters(1), clusters(1).with_columns(pl.lit(7, pl.Int64).alias("cluster_id"))])
    llm = ScriptedLLM([rating(4)])
    audited = PrivacyAuditor(llm).audit(frame)
    assert len(llm.requests) == 1 and audited["privacy_score"].to_list() == [4, 4]


def test_invalid_floor():
    with pytest.raises(ValueError):
        PrivacyAuditor(ScriptedLLM([]), floor=0)


# --- the audit trail --------------------------------------------------------------

HIERARCHY = pl.DataFrame(
    {"cluster_id": [0, 1, 2, 10, 20], "level": [0, 0, 0, 1, 2], "parent_id": [10, 10, 20, 20, None]},
    schema={"cluster_id": pl.Int64, "level": pl.Int64, "parent_id": pl.Int64},
)
# Membership of a 3-level tree: base 0, 1 -> mid 10 -> top 20; base 2 -> top 20 (noise has no rows).
MEMBERS = pl.DataFrame(
    {
        "conversation_id": ["a", "b", "c", "d", "e"] + ["a", "b", "c"] + ["a", "b", "c", "d", "e"],
        "account": ["x", "x", "y", "z", "z"] + ["x", "x", "y"] + ["x", "x", "y", "z", "z"],
        "cluster_id": [0, 0, 1, 2, 2] + [10] * 3 + [20] * 5,
    }
)


def test_removal_trail_counts_each_removed_cluster_once_without_text():
    withheld = {
        "threshold": pl.DataFrame({"cluster_id": [1, 10], "reason": ["fewer than 5 unique accounts"] * 2}),
        "auditor": pl.DataFrame({"cluster_id": [10, 2], "reason": [BELOW_FLOOR, AUDIT_FAILED]}),
    }
    trail = removal_trail("2026-11-04", withheld, HIERARCHY, MEMBERS)
    assert trail.columns == [
        "day",
        "cluster_id",
        "level",
        "layer",
        "reason",
        "conversations",
        "unique_accounts",
    ]
    assert trail.select("cluster_id", "level", "layer", "conversations", "unique_accounts").rows() == [
        (1, 0, "threshold", 1, 1),
        (2, 0, "auditor", 2, 1),
        (10, 1, "threshold", 3, 2),
    ]
    assert removal_trail("d", {}, HIERARCHY, MEMBERS).is_empty()


@pytest.mark.slow
def test_embedded_model_rates_identifying_text_below_general_text(embedded_llm):
    frame = pl.DataFrame(
        {
            "cluster_id": [0, 1, 2],
            "title": [
                "Recipes for high-protein breakfasts",
                "Help writing a cover letter",
                "Choosing GPUs for model training",
            ],
            "description": [
                "Users asked for quick breakfast recipes with at least 30 grams of protein.",
                "Priya Raghunathan of 88 Oak Avenue, Denver, phone 303-555-0199, asked for a cover letter.",
                "Users compared affordable graphics cards for training language models.",
            ],
        }
    )
    audited = PrivacyAuditor(embedded_llm).audit(frame)
    assert audited["audit_reason"].to_list() == [OK, BELOW_FLOOR, OK]
