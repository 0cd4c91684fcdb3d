"""Honorifics before a name ("Mr. Smith", "Dr Jane Roe"): they give away gender and profession."""

from privacy.recognizers._patterns import pattern_recognizer

HONORIFICS = r"(?:Mr|Mrs|Ms|Miss|Mx|Mister|Madam|Dr|Doctor|Prof|Professor|Sir|Dame|Lord|Lady|Rev|Fr|Sr|Sra|Srta|Herr|Frau|Mme|Mlle|Capt|Col|Gen|Lt|Sgt)"


def build():
    """The recognizer."""
    return pattern_recognizer(
        "TITLE",
        # The honorific, when a capitalised word (the name) follows it.
        [("honorific_before_name", rf"\b{HONORIFICS}\.?(?=\s+\p{{Lu}}\p{{Ll}})", 0.6)],
    )
