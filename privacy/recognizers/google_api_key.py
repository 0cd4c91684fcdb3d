"""Google Cloud credentials: API keys (``AIza`` + 35), OAuth client secrets (``GOCSPX-``), access tokens (``ya29.``)."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "API_KEY",
        [
            ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])", 0.9),
            ("google_oauth_client_secret", r"\bGOCSPX-[0-9A-Za-z_\-]{28}(?![0-9A-Za-z_\-])", 0.9),
            ("google_oauth_access_token", r"\bya29\.[0-9A-Za-z_\-]{20,}", 0.85),
        ],
        name="GoogleApiKey",
    )
