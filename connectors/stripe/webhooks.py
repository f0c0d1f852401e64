"""Checking a Stripe webhook: `Stripe-Signature` through the SDK, then the event parsed.

The SDK's `WebhookSignature.verify_header` does what Stripe documents (HMAC-SHA256 of
`<t>.<body>` with the endpoint's `whsec_...` secret, any of several `v1` values, timestamps
older than the tolerance refused). We parse the body ourselves into plain dicts: translate is a
pure mapping over JSON, and the inbox re-parses the same stored bytes later.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping

import stripe

from core.connectors import BadPayload, Delivery, SignatureInvalid, SourceContext

from .translate import event_time

TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "stripe-signature"


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Werkzeug `Headers` or a plain dict, as a dict with lower-case names."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


def verify(source: SourceContext, headers: Mapping[str, str], body: bytes) -> Delivery:
    """The delivery of one signed Stripe event; `SignatureInvalid` or `BadPayload` otherwise."""
    given = lower_headers(headers)
    signature = given.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureInvalid("missing Stripe-Signature header")
    if not source.webhook_secret:
        raise SignatureInvalid("this source has no Stripe webhook signing secret")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8 JSON") from None
    try:
        stripe.WebhookSignature.verify_header(text, signature, source.webhook_secret,
                                              tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise SignatureInvalid(str(exc.user_message or exc)) from None
    if signed_at(signature) > time.time() + TOLERANCE_SECONDS:
        # The SDK only refuses old timestamps; one far ahead of our clock would keep a captured
        # delivery replayable for as long, so it is refused the same way (Paddle's check too).
        raise SignatureInvalid("Stripe-Signature timestamp is in the future (clock skew?)")
    return parse(body, text, given)


def signed_at(header: str) -> int:
    """The `t=` of a (verified) Stripe-Signature header."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    return 0


def parse(body: bytes, text: str, headers: Mapping[str, str]) -> Delivery:
    """A verified body as a Delivery: event id, type and time are required."""
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise BadPayload(f"the body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise BadPayload("the body is not a Stripe event object")
    if event.get("object") == "v2.core.event":
        raise BadPayload("thin event notifications are not supported; send snapshot events")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise BadPayload("the event has no id or type")
    if not isinstance(event.get("created"), int):
        raise BadPayload("the event has no created time")
    try:
        occurred_at = event_time(event)
    except (ValueError, OverflowError, OSError):  # Unix seconds past year 9999 (or before 1)
        raise BadPayload(f"the event's created time {event['created']} is not a date") from None
    return Delivery(delivery_id=event_id, topic=event_type, payload=event, body=body,
                    occurred_at=occurred_at,
                    headers={SIGNATURE_HEADER: headers.get(SIGNATURE_HEADER, "")})
