"""Privacy benchmark helpers: the auditor's agreement at a floor and disjoint labelled texts."""

from __future__ import annotations

import pytest

from benchmarks.privacy import agreement_at, labelled_texts
from privacy.auditor import Score
from tests.conftest import require_shared

# Five texts: private, private, general, general, private (rating failed).
SCORES = [Score(1, 1), Score(2, 4), Score(4, 4), Score(3, 3), None]
PRIVATE = [True, True, False, False, True]


@pytest.mark.parametrize(
    ("floor", "raw", "expected"),
    [
        (3, False, {"accuracy": 1.0, "private_released": 0, "general_withheld": 0}),
        (4, False, {"accuracy": 0.8, "private_released": 0, "general_withheld": 1}),
        (3, True, {"accuracy": 0.8, "private_released": 1, "general_withheld": 0}),  # no cap: 4 is released
        (
            1,
            False,
            {"accuracy": 0.6, "private_released": 2, "general_withheld": 0},
        ),  # a failed rating is withheld
    ],
)
def test_agreement_at_a_floor(floor, raw, expected):
    assert agreement_at(SCORES, PRIVATE, floor, raw=raw) == expected


def test_labelled_texts_from_an_offset_continue_the_sequence_and_share_nothing():
    require_shared("arena_hard_prompts")
    require_shared("pii_presidio_synth")
    first, rest = labelled_texts(20), labelled_texts(20, offset=20)
    assert labelled_texts(40) == first + rest
    assert not {t for t, _, _ in first} & {t for t, _, _ in rest}
    assert [p for _, _, p in rest] == [False, True] * 10
