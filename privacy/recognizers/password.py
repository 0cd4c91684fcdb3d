"""Passwords written as ``password=...``, ``pwd: ...``, ``passwd ...`` (the value only)."""

from presidio_analyzer import Pattern, PatternRecognizer

from privacy.recognizers._patterns import CASE_SENSITIVE
from privacy.recognizers.secret_assignment import NOT_LITERAL


class PasswordRecognizer(PatternRecognizer):
    """Password values, less code (``z.string()``, ``request.body.password``) and placeholders."""

    def invalidate_result(self, pattern_text: str) -> bool:  # noqa: D102
        return bool(NOT_LITERAL.search(pattern_text))


def build() -> PasswordRecognizer:
    """The recognizer."""
    return PasswordRecognizer(
        supported_entity="PASSWORD",
        name="LookoutPasswordRecognizer",
        patterns=[
            Pattern(
                "password_assignment",
                r"(?i)(?<=\b(?:password|passwd|pwd|pass|passcode)\b\s*(?:is\s+|[=:]\s*)[\"']?)[^\s\"',;]{4,}",
                0.85,
            ),
        ],
        global_regex_flags=CASE_SENSITIVE,
    )
