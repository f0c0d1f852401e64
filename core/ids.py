"""Identifiers: short random strings with a type prefix, unguessable and readable in logs."""
from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int = 16) -> str:
    """`prefix_` plus `length` random characters (about 82 bits for 16)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_key(length: int = 8) -> str:
    """A short referral or link key people can type: lower-case letters and digits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
