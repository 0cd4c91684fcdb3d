"""Long digit runs: account, card, phone and ID numbers the typed recognizers miss.

Covers unknown card ranges and foreign phone formats (9+ digits, optionally grouped).
"""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "ID_NUMBER",
        [
            # 9+ digits in groups joined by single spaces, dashes, dots or parentheses; not inside words.
            ("grouped_digits", r"(?<![\w.-])\+?\(?\d{2,}\)?(?:[ .-]?\(?\d{2,}\)?){2,}(?![\w-])", 0.4),
            ("long_digit_run", r"(?<![\w.])\d{9,19}(?![\w.])", 0.4),
        ],
    )
