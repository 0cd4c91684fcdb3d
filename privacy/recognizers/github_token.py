"""GitHub personal access, OAuth, app and fine-grained tokens."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "GITHUB_TOKEN",
        [
            ("github_classic", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", 0.95),
            ("github_fine_grained", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b", 0.95),
        ],
    )
