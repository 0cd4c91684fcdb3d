"""Keyed pseudonyms for account IDs (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

PSEUDONYM_PREFIX = "p_"
MIN_KEY_BYTES = 16


class PseudonymKeyError(RuntimeError):
    """The pseudonym key is missing or too weak."""


class Pseudonymizer:
    """Maps raw account IDs to stable keyed pseudonyms.

    The same key always gives the same pseudonym; without the key the mapping
    cannot be inverted or recomputed.
    """

    def __init__(self, key: bytes):
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def __call__(self, account_id: str) -> str:
        """The pseudonym of one account ID."""
        digest = hmac.new(self._key, account_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]


def load_or_create_key(env_value: str | None, key_file: Path | None) -> bytes:
    """Resolve the pseudonym key.

    The environment value wins. Otherwise, if ``key_file`` is given (local
    deployments only), the key is read from it or created there on first use.

    Raises:
        PseudonymKeyError: No key in the environment and no local key file allowed.
    """
    if env_value:
        return env_value.encode("utf-8")
    if key_file is None:
        raise PseudonymKeyError(
            "LOOKOUT_PSEUDONYM_KEY is not set; it is required outside the local deployment"
        )
    if key_file.exists():
        return key_file.read_text().strip().encode("utf-8")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key.encode("utf-8")
