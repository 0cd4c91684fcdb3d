"""Slack bot, user, app and config tokens (``xoxb-``, ``xoxp-``, ``xapp-``...) and incoming-webhook URLs."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "API_KEY",
        [
            ("slack_token", r"\bxox(?:[abposr]|e\.xox[bp])-[0-9A-Za-z\-]{10,}", 0.9),
            ("slack_app_token", r"\bxapp-\d-[A-Z0-9]+-\d+-[0-9a-f]+\b", 0.9),
            (
                "slack_webhook",
                r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+",
                0.9,
            ),
        ],
        name="SlackToken",
    )
