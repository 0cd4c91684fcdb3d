"""Credentials in HTTP ``Authorization`` headers (bearer, basic, token schemes), any characters up to a quote or space."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "BEARER_TOKEN",
        [
            (
                "authorization_header",
                r"(?i)(?<=\b(?:bearer|basic|token)\s)(?=[^\s\"'<>`]*\d)[^\s\"'<>`]{8,}",
                0.85,
            )
        ],
    )
