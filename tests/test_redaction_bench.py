"""Redaction benchmark plumbing: over-redaction counts, echo replies and placeholder alignment."""

from __future__ import annotations

import pytest

from benchmarks.redaction import _echo_replies, over_redaction, spans_from_redaction


@pytest.mark.parametrize(
    ("text", "redacted", "per_1k", "share"),
    [
        ("a" * 1000, "a" * 1000, 0.0, 0.0),
        ("Call Ana now" + "." * 988, "Call <PERSON> now" + "." * 988, 1.0, 0.003),
        ("my <PERSON> tag" + "." * 985, "my <PERSON> tag" + "." * 985, 0.0, 0.0),  # the text's own
    ],
)
def test_over_redaction_counts_placeholders_and_replaced_characters(text, redacted, per_1k, share):
    result = over_redaction([text], [redacted])
    assert result["placeholders_per_1k_chars"] == per_1k
    assert result["replaced_char_share"] == share


def test_echo_replies_repeat_each_value_and_names_in_three_cases():
    record = {
        "full_text": "I am Ana Pereira, ana@x.org, on 3 May.",
        "spans": [
            {"entity_type": "PERSON", "entity_value": "Ana Pereira"},
            {"entity_type": "EMAIL_ADDRESS", "entity_value": "ana@x.org"},
            {"entity_type": "DATE_TIME", "entity_value": "3 May"},  # dates are not echoed
        ],
    }
    replies = _echo_replies([record])
    assert sorted(value for _, _, _, value in replies) == ["Ana Pereira", "ana pereira", "ana@x.org"]
    assert all(value in reply for _, reply, _, value in replies)


def test_spans_from_redaction_align_placeholders_to_the_original():
    assert spans_from_redaction("Hi Ana, mail a@b.org", "Hi <PERSON>, mail <EMAIL_ADDRESS>") == [
        (3, 6, "PERSON"),
        (13, 20, "EMAIL_ADDRESS"),
    ]
