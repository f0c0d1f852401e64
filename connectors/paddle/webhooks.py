"""Paddle Billing notifications: check `Paddle-Signature` with the SDK, parse the body.

`Paddle-Signature: ts=<unix time>;h1=<hex>` is an HMAC-SHA256 of `<ts>:<raw body>` with the
notification destination's secret key (`source.webhook_secret`). The SDK's
`paddle_billing.Notifications.Verifier` checks the HMAC. Its own clock check is switched off
(`maximum_variance=0`) and done here instead, because the SDK's reads the wall clock and obeys a
`TEST_MODE` environment variable that can disable it; ours always runs, with `TOLERANCE_SECONDS`
and an injectable clock, so tests replay Paddle's published vectors without touching the time.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from paddle_billing.Notifications import PaddleSignature, Secret, Verifier

from connectors.paddle.translate import parse_time
from core.connectors import BadPayload, Delivery, SignatureInvalid, SourceContext

SIGNATURE_HEADER = "paddle-signature"
# Paddle signs when it sends; a delivery whose timestamp is further than this from our clock is
# refused as a possible replay (Paddle retries a refused delivery with a fresh signature).
TOLERANCE_SECONDS = 300


def _clock() -> float:
    """Now, in Unix seconds; tests replace it rather than wait or read the real time."""
    return time.time()


class _Headers:
    """Case-insensitive `get`, the one method the SDK's `Request` protocol needs of headers."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._by_name = {str(k).lower(): v for k, v in headers.items()}

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._by_name.get(key.lower(), default)

    def as_dict(self) -> dict[str, str]:
        return dict(self._by_name)


class _SignedRequest:
    """The request object `Verifier.verify` expects: `.headers.get(...)` and raw `.body` bytes."""

    def __init__(self, headers: _Headers, body: bytes) -> None:
        self.headers = headers
        self.body = body


def verify(source: SourceContext, headers: Mapping[str, str], body: bytes, *,
           tolerance: int | None = TOLERANCE_SECONDS,
           now: Callable[[], float] | None = None) -> Delivery:
    """Check the signature, then parse. `tolerance=None` skips the clock check (tests replaying
    old published vectors only). The delivery id is Paddle's `event_id`: a replay from Paddle's
    dashboard is a new notification id for the same event, and must count once."""
    request = _SignedRequest(_Headers(headers), body)
    _check_signature(source, request, tolerance, now or _clock)
    return _parse(body, request.headers)


def _check_signature(source: SourceContext, request: _SignedRequest, tolerance: int | None,
                     now: Callable[[], float]) -> None:
    if not source.webhook_secret:
        raise SignatureInvalid("this source has no webhook secret")
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        raise SignatureInvalid("missing Paddle-Signature header")
    try:
        timestamp, hashes = PaddleSignature.parse(header)
    except ValueError:
        raise SignatureInvalid("malformed Paddle-Signature header") from None
    if not hashes.get("h1"):
        raise SignatureInvalid("Paddle-Signature has no h1 signature")
    if tolerance is not None and abs(now() - timestamp) > tolerance:
        raise SignatureInvalid("Paddle-Signature timestamp is outside the tolerance (stale?)")
    try:
        valid = Verifier(maximum_variance=0).verify(request, Secret(source.webhook_secret),
                                                    verify_time_drift=False)
    except (ValueError, ConnectionRefusedError):  # not UTF-8, or no secret matched
        valid = False
    if not valid:
        raise SignatureInvalid("Paddle-Signature does not match the body")


def _parse(body: bytes, headers: _Headers) -> Delivery:
    """The notification envelope must be whole; `data` stays a plain dict for `translate`."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        raise BadPayload("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadPayload("the body is not a JSON object")
    event_id, topic = payload.get("event_id"), payload.get("event_type")
    if not isinstance(event_id, str) or not event_id or not isinstance(topic, str) or not topic:
        raise BadPayload("event_id and event_type are required")
    occurred_at = parse_time(payload.get("occurred_at"))
    if occurred_at is None:
        raise BadPayload("occurred_at is missing or not a timestamp")
    if not isinstance(payload.get("data"), dict):
        raise BadPayload("data must be an object")
    return Delivery(delivery_id=event_id, topic=topic, payload=payload, body=body,
                    occurred_at=occurred_at, headers=headers.as_dict())
