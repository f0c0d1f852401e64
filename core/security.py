"""Secrets at rest: API keys stored as hashes, platform credentials encrypted with Fernet."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


def new_secret_key() -> str:
    return "tp_sk_" + secrets.token_urlsafe(32)


def new_publishable_key() -> str:
    return "tp_pk_" + secrets.token_urlsafe(18)


def hash_api_key(key: str) -> str:
    """SHA-256 of a secret API key. The key has 256 random bits, so a slow password hash buys
    nothing and a fast one keeps the per-request lookup an index hit."""
    return hashlib.sha256(key.encode()).hexdigest()


class Vault:
    """Encrypts platform credentials with a key derived from TOUCHPOINT_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"touchpoint-credentials:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def decrypt(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise RuntimeError(
                "stored credentials cannot be decrypted: TOUCHPOINT_SECRET_KEY changed"
            ) from exc
