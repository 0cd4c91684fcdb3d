"""Street addresses: a house number, street words and a street type."""

from privacy.recognizers._patterns import pattern_recognizer

STREET_TYPES = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|square|sq|"
    "terrace|way|parkway|pkwy|highway|hwy|circle|cir|trail|strasse|straße|rue|calle|via|katu|gatan|vej"
)


def build():
    """The recognizer."""
    return pattern_recognizer(
        "STREET_ADDRESS",
        [
            ("number_first", rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){{0,4}}(?:{STREET_TYPES})\b\.?(?:\s*(?:apt|apartment|suite|ste|unit|#)\.?\s*\w+)?", 0.6),
            ("street_first", rf"\b(?:[A-Z][\w'.-]*\s+){{0,3}}[A-Z]\w*(?:{STREET_TYPES})\s+\d{{1,5}}[A-Za-z]?\b", 0.5),
        ],
        case_sensitive=False,
        context=["address", "live", "lives", "located", "street", "ship", "deliver"],
    )
