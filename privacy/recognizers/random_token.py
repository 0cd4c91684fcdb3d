"""Random-looking standalone tokens: generated passwords and keys with no label or known prefix.

A candidate is a run of 12-200 printable characters between spaces, quotes or
brackets. It is taken as a secret when it

* mixes at least three character classes (upper, lower, digit, symbol; the
  word separators ``_-.`` count as none),
* is not made of words: under half of its letters sit in pronounceable
  camel-case pieces of three or more letters ("getUserById" and
  "MyDataFrame2024" are words, "aB3dE5fG7h!x1y" is not), and
* has a Shannon entropy of at least 3 bits per character.

URLs, e-mail addresses, paths, ``key=value`` pairs and UUIDs (two classes) are
left alone. On seeded random 16-character keys it fires ~80% of the time; the
labelled recognizers (``secret_assignment``, ``password``, ``bearer_token``)
cover the rest where a label names the value.
"""

from __future__ import annotations

import math
from collections import Counter

import regex
from presidio_analyzer import Pattern, PatternRecognizer

from privacy.recognizers._patterns import CASE_SENSITIVE

MIN_LENGTH = 12
MIN_CLASSES = 3
MAX_WORDLIKE_SHARE = 0.5
MIN_ENTROPY_BITS = 3.0
CANDIDATE = r"(?<![^\s\"'`(\[{<=:,])[A-Za-z0-9!@#$%^&*~+/=_\-?]{12,200}(?![^\s\"'`)\]}>.,;:!?])"
# Camel-case pieces: "get", "User", "HTTP", "2", "_".
PIECE = regex.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[^A-Za-z0-9]+")
SEPARATORS = "_-."
VOWELS = set("aeiouy")
MIN_VOWEL_SHARE = 0.2
CONSONANT_CLUSTER = regex.compile(r"[^aeiouy]{5}")
EXCLUDED = regex.compile(r"://|=.|^[\w.+\-]+@[\w\-]+\.[\w.\-]+$|^[./~]|/.*/|^\d+$")


def _char_class(ch: str) -> int:
    """0 upper, 1 lower, 2 digit, 3 symbol, -1 for the word separators ``_-.``."""
    if ch in SEPARATORS:
        return -1
    if ch.isupper():
        return 0
    if ch.islower():
        return 1
    if ch.isdigit():
        return 2
    return 3


def _wordlike(piece: str) -> bool:
    """A pronounceable piece of 3+ letters: enough vowels, no 5-consonant cluster."""
    if len(piece) < 3 or not piece.isalpha():
        return False
    lower = piece.lower()
    vowels = sum(c in VOWELS for c in lower)
    return vowels >= MIN_VOWEL_SHARE * len(lower) and not CONSONANT_CLUSTER.search(lower)


def looks_random(token: str) -> bool:
    """Whether ``token`` reads as a randomly generated secret (see module docstring)."""
    if len(token) < MIN_LENGTH or EXCLUDED.search(token):
        return False
    classes = [_char_class(c) for c in token]
    if len(set(classes) - {-1}) < MIN_CLASSES:
        return False
    letters = sum(c.isalpha() for c in token)
    wordlike = sum(len(p) for p in PIECE.findall(token) if _wordlike(p))
    counts = Counter(token)
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return wordlike < MAX_WORDLIKE_SHARE * letters and entropy >= MIN_ENTROPY_BITS


class RandomTokenRecognizer(PatternRecognizer):
    """Pattern candidates kept only when :func:`looks_random` holds."""

    def validate_result(self, pattern_text: str) -> bool | None:
        """``None`` keeps the pattern's modest score (so typed recognizers win a tie); ``False`` drops it."""
        return None if looks_random(pattern_text) else False


def build() -> RandomTokenRecognizer:
    """The recognizer."""
    return RandomTokenRecognizer(
        supported_entity="SECRET",
        name="LookoutRandomTokenRecognizer",
        patterns=[Pattern("random_token", CANDIDATE, 0.6)],
        global_regex_flags=CASE_SENSITIVE,
    )
