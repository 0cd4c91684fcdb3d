"""PEM private-key blocks (RSA, EC, OpenSSH, PKCS#8), whole block."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "PRIVATE_KEY",
        [
            (
                "pem_private_key",
                r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END (?:[A-Z]+ )?PRIVATE KEY-----",
                1.0,
            ),
        ],
    )
