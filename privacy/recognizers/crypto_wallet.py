"""Ethereum-style wallet addresses (Presidio's CRYPTO covers Bitcoin)."""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer("CRYPTO", [("ethereum_address", r"\b0x[a-fA-F0-9]{40}\b", 0.8)])
