"""Passwords inside connection URLs: ``postgres://user:PASSWORD@host/db``, ``redis://:PASSWORD@host``."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "PASSWORD",
        [
            (
                "url_userinfo_password",
                r"(?<=\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)[^\s@/]{3,}(?=@[\w.\-\[])",
                0.9,
            )
        ],
        name="ConnectionStringPassword",
    )
