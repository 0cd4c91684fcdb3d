"""Passwords written as ``password=...``, ``pwd: ...``, ``passwd ...`` (the value only)."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "PASSWORD",
        [
            (
                "password_assignment",
                r"(?i)(?<=\b(?:password|passwd|pwd|pass|passcode)\b\s*(?:is\s+|[=:]\s*)[\"']?)[^\s\"',;]{4,}",
                0.85,
            ),
        ],
    )
