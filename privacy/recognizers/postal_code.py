"""Postal codes next to a label ("ZIP:", "postal code", "postcode", "PLZ").

Formats from national postal standards: US ZIP and ZIP+4, Canadian ``A1A 1A1``,
UK ``SW1A 1AA``, Dutch ``1234 AB``, Swedish/Czech/Greek ``123 45`` and the
plain 3-7 digit codes most countries use. Unlabelled codes in a postal address
block are covered by ``street_address``.
"""

from privacy.recognizers._patterns import pattern_recognizer

POSTAL_CODE = (
    r"(?:\d{5}-\d{4}"  # US ZIP+4
    r"|[A-Z]\d[A-Z] ?\d[A-Z]\d"  # Canada
    r"|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"  # UK
    r"|\d{4} ?[A-Z]{2}"  # Netherlands
    r"|\d{3} \d{2}"  # Sweden, Czechia, Slovakia, Greece
    r"|\d{2}-\d{3}"  # Poland
    r"|[A-Z]{1,2}-?\d{4,5}"  # country-prefixed (D-10115, LV-1010)
    r"|\d{3,7})"
)
LABEL = r"(?:zip|zip\s*code|zipcode|postal\s*code|postcode|post\s*code|plz|cep|pin\s*code)"


def build():
    """The recognizer."""
    return pattern_recognizer(
        "ZIP_CODE",
        [
            (
                "labelled_postal_code",
                rf"(?i:(?<=\b{LABEL}\s*(?:is\s+)?[:#=\-]?\s*)){POSTAL_CODE}(?![\w-])",
                0.7,
            )
        ],
    )
