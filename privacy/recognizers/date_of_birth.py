"""Dates of birth: a date next to "born", "DOB" or "birthday"."""

from privacy.recognizers._patterns import pattern_recognizer

DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)?\d{2}|(?:19|20)\d{2}-\d{2}-\d{2}|"
    r"\d{1,2}(?:st|nd|rd|th)?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+(?:19|20)\d{2}|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2})"
)


def build():
    """The recognizer."""
    return pattern_recognizer(
        "DATE_OF_BIRTH",
        [
            (
                "labelled_birth_date",
                rf"(?i)(?<=\b(?:born(?:\s+on)?|d\.?o\.?b\.?|date\s+of\s+birth|birthday(?:\s+is)?)\s*[:\-]?\s*){DATE}",
                0.9,
            )
        ],
        case_sensitive=False,
    )
