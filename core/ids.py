"""Identifiers: short random strings with a type prefix, unguessable and readable in logs."""
from __future__ import annotations

import base64
import os
import secrets
import string
import time

_ALPHABET = string.ascii_lowercase + string.digits


def _random(length: int) -> str:
    """`length` random lower-case base32 characters (5 bits each)."""
    return base64.b32encode(os.urandom((length * 5 + 7) // 8)).decode("ascii").lower()[:length]


def new_id(prefix: str, length: int = 16) -> str:
    """`prefix_` plus `length` random base32 characters (80 bits for 16). Base32 of urandom
    rather than a loop of `secrets.choice`: ids are made on the click path, where it counts."""
    return f"{prefix}_" + _random(length)


def new_sortable_id(prefix: str, length: int = 16) -> str:
    """`prefix_`, the time in milliseconds (12 hex digits), then `length` random base32
    characters: as unguessable as `new_id`, but ids made later sort later. Rows keyed by them
    are appended to the end of their B-tree indexes instead of landing on a random page, which
    halves the cost of a click's insert into a table of a million (docs/performance.md)."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}" + _random(length)


def new_key(length: int = 8) -> str:
    """A short referral or link key people can type: lower-case letters and digits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
