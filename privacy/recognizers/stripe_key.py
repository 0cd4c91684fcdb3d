"""Stripe secret, restricted and publishable keys and webhook signing secrets."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "API_KEY",
        [
            ("stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}\b", 0.9),
            ("stripe_webhook_secret", r"\bwhsec_[0-9A-Za-z]{24,}\b", 0.9),
        ],
        name="StripeKey",
    )
