"""OpenAI-style secret keys (``sk-...``, ``sk-proj-...``) and similar provider keys."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "API_KEY",
        [
            ("openai_style", r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{20,}\b", 0.9),
            ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}\b", 0.9),
            ("slack_token", r"\bxox[abposr]-[0-9A-Za-z\-]{10,}\b", 0.9),
            ("stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}\b", 0.9),
        ],
    )
