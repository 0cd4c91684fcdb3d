"""OpenAI and Anthropic secret keys (``sk-...``, ``sk-proj-...``, ``sk-ant-api03-...``)."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "API_KEY",
        [
            (
                "openai_style",
                r"\bsk-(?:proj-|ant-(?:api|admin)\d\d-|ant-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}\b",
                0.9,
            )
        ],
        name="OpenaiApiKey",
    )
