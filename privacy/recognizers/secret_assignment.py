"""Values assigned to names that say they are secrets.

``API_KEY=...``, ``"client_secret": "..."``, ``os.environ['TOKEN'] = '...'``,
``auth_token: ...`` (the value only). Values that are code rather than a literal
(``os.environ[...]``, ``get_token()``, ``${VAR}``, ``<your key>``), and
placeholders, are left alone.
"""

from __future__ import annotations

import regex
from presidio_analyzer import Pattern, PatternRecognizer

from privacy.recognizers._patterns import CASE_SENSITIVE

NAME = (
    r"[A-Za-z0-9_.\-]*(?:api[_\-.]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|passphrase|"
    r"credential|auth[_\-.]?key|access[_\-.]?key|private[_\-.]?key|signing[_\-.]?key|client[_\-.]?id)[A-Za-z0-9_.\-]*"
)
# name, closing quote/bracket of a key lookup, the assignment, an opening quote.
ASSIGNMENT = rf"(?i:(?<=\b{NAME}[\"'\]]*\s*(?::=|=>|=|:)\s*[\"'`]?))"
VALUE = r"[^\s\"'`,;)}\]]{8,}"
# Code or placeholders instead of a literal value.
NOT_LITERAL = regex.compile(
    r"^(?:[\$<{%(\[]|os\.|process\.env|env\.|getenv|settings\.|config\.|self\.|none$|null$|true$|false$|undefined$)"
    r"|\(|^x+$|^\*+$|^\.+$|your[_\-]|[_\-]here$|^(?:[a-z]+_)*[a-z]+$|^(?:[A-Z]+_)*[A-Z]+$|^[A-Za-z_]+\.[A-Za-z_.]+$",
    regex.I,
)


class SecretAssignmentRecognizer(PatternRecognizer):
    """Assignment matches, less code and placeholders."""

    def invalidate_result(self, pattern_text: str) -> bool:  # noqa: D102
        return bool(NOT_LITERAL.search(pattern_text))


def build() -> SecretAssignmentRecognizer:
    """The recognizer."""
    return SecretAssignmentRecognizer(
        supported_entity="SECRET",
        name="LookoutSecretAssignmentRecognizer",
        patterns=[Pattern("secret_assignment", ASSIGNMENT + VALUE, 0.8)],
        global_regex_flags=CASE_SENSITIVE,
    )
