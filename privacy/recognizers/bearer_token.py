"""Bearer and basic credentials in HTTP ``Authorization`` headers."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "BEARER_TOKEN",
        [("authorization_header", r"(?i)(?<=\b(?:bearer|basic|token)\s)[A-Za-z0-9_\-\.=:+/]{16,}", 0.85)],
    )
