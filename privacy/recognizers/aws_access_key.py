"""AWS access key ids and secret access keys."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "AWS_KEY",
        [
            ("aws_access_key_id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b", 0.9),
            (
                "aws_secret_assignment",
                r"(?i)(?<=aws_secret_access_key\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{40}\b",
                0.9,
            ),
        ],
    )
