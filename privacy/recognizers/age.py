"""Ages a person states: "34 years old", "i'm 31 y/o", "aged 40", "just turned 47", "age: 52"."""

from privacy.recognizers._patterns import pattern_recognizer

AGE = r"(?:1[01]\d|\d{1,2})"


def build():
    """The recognizer."""
    return pattern_recognizer(
        "AGE",
        [
            ("age_with_unit", rf"\b{AGE}(?=[\s-]*(?:years?|yrs?)[\s-]*old\b|\s*y/?o\b|-year-old\b)", 0.75),
            (
                "age_stated",
                rf"(?<=\b(?:i\s+am|i'm|im|he\s+is|she\s+is|he's|she's)\s+){AGE}(?=\s*(?:[.,!?;)](?!\d)|$|and\b|now\b|this\s+year\b))",
                0.6,
            ),
            (
                "age_after_verb",
                rf"(?<=\b(?:aged|turned|turning|turns|age|age\s+of)\s*[:=]?\s*){AGE}\b(?![.,]\d|\s*(?:%|percent|degrees|km|kg|miles|minutes|hours|days))",
                0.6,
            ),
        ],
        case_sensitive=False,
    )
