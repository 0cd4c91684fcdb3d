"""A user's own name when they state it ("my name is ...", "I'm ...", "call me ...")."""

from privacy.recognizers._patterns import pattern_recognizer

NAME = r"[A-Z][a-zà-ÿ'\-]+(?:\s+[A-Z][a-zà-ÿ'\-]+){0,2}"


def build():
    """The recognizer."""
    return pattern_recognizer(
        "PERSON",
        [
            (
                "stated_name",
                rf"(?<=\b(?:[Mm]y name is|[Mm]y name's|[Cc]all me|[Tt]his is|[Ii] am called|[Ss]igned,?)\s+){NAME}",
                0.85,
            )
        ],
    )
