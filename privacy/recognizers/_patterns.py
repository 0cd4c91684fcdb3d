"""Helpers shared by the pattern recognizers."""

from __future__ import annotations

import regex
from presidio_analyzer import Pattern, PatternRecognizer

CASE_SENSITIVE = regex.M | regex.S


def pattern_recognizer(
    entity: str,
    patterns: list[tuple[str, str, float]],
    *,
    case_sensitive: bool = True,
    context: list[str] | None = None,
    name: str | None = None,
) -> PatternRecognizer:
    """A recognizer for ``entity`` from ``(name, regex, score)`` triples.

    ``name`` (CamelCase, default from the entity) must differ between recognizers of one entity.
    """
    return PatternRecognizer(
        supported_entity=entity,
        name=f"Lookout{name or entity.title().replace('_', '')}Recognizer",
        patterns=[Pattern(name, rx, score) for name, rx, score in patterns],
        context=context,  # type: ignore[arg-type]  # presidio annotates it List[str] = None
        global_regex_flags=CASE_SENSITIVE if case_sensitive else regex.I | regex.M | regex.S,
    )
