"""WooCommerce webhook deliveries.

`X-WC-Webhook-Signature` is base64(HMAC-SHA256(raw body, secret)) with the secret Touchpoint
generated when it created the webhook (`WC_Webhook::generate_signature`). The `woocommerce`
package only talks to the REST API, so the check is `hmac.compare_digest` here. WooCommerce
signs no timestamp, so a "stale" delivery cannot be told from a fresh one; a resent delivery has
the same id and body, and the inbox answers it as a duplicate.

The creation ping (`WC_Webhook::deliver_ping`, sent while `POST webhooks` runs) is a form body
`webhook_id=N` with no `X-WC-*` header and no signature. It is accepted only in that exact shape,
always as topic `ping` with no payload (translate maps it to []), and, once the source knows its
webhook ids, only for one of them: an unsigned request can store at most one harmless row per
webhook Touchpoint created, and can never be read as an order.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from core.connectors import (
    BadPayload,
    Delivery,
    SignatureInvalid,
    SourceContext,
    header_map,
    json_object,
)

PING = re.compile(rb"webhook_id=(\d{1,20})")


def signature(secret: str, body: bytes) -> str:
    """What WooCommerce puts in `X-WC-Webhook-Signature` for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def ping_id(body: bytes) -> str | None:
    """The webhook id of a creation ping body, or None for anything else."""
    match = PING.fullmatch(body.strip())
    return match.group(1).decode() if match else None


def expected_ping(source: SourceContext, webhook_id: str) -> bool:
    """During connect the source has no webhook ids yet (and is not stored, so its URL answers
    404 anyway); afterwards only our own webhooks' pings are taken unsigned."""
    ids = [str(i) for i in source.settings.get("webhook_ids") or []]
    return not ids or webhook_id in ids


def check_signature(source: SourceContext, given: str, body: bytes) -> None:
    if not source.webhook_secret:
        raise SignatureInvalid("this source has no webhook secret to check X-WC-Webhook-Signature")
    expected = signature(source.webhook_secret, body)
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise SignatureInvalid("X-WC-Webhook-Signature does not match the body")


def ping(webhook_id: str, body: bytes) -> Delivery:
    return Delivery(delivery_id=f"ping:{webhook_id}", topic="ping", payload=None, body=body,
                    occurred_at=datetime.now(timezone.utc), headers={"x-wc-webhook-id": webhook_id})


def delivery_key(h: Mapping[str, str], body: bytes) -> str:
    """WooCommerce's delivery id is wp_hash(webhook id . current second): two deliveries of one
    webhook within a second share it. The body's hash keeps those apart while a resend of the
    same delivery (same id, same body) stays one."""
    digest = hashlib.sha256(body).hexdigest()
    webhook = h.get("x-wc-webhook-id", "")
    given = h.get("x-wc-webhook-delivery-id", "").strip()
    if given:
        return f"{webhook}:{given}:{digest[:16]}"
    return f"{webhook}:body:{digest}"


def verify(source: SourceContext, headers: Mapping[str, str], body: bytes) -> Delivery:
    """Check the signature, then parse the order; the creation ping is answered (WooCommerce
    wants a 200) as a `ping` delivery."""
    h = header_map(headers)
    given = h.get("x-wc-webhook-signature", "").strip()
    pinged = ping_id(body)
    if not given:
        if pinged is not None and expected_ping(source, pinged):
            return ping(pinged, body)
        raise SignatureInvalid("X-WC-Webhook-Signature is missing")
    check_signature(source, given, body)
    if pinged is not None:  # a ping a plugin chose to sign
        return ping(pinged, body)
    payload = json_object(body)
    topic = h.get("x-wc-webhook-topic", "").strip()
    if not topic and h.get("x-wc-webhook-resource") and h.get("x-wc-webhook-event"):
        topic = f"{h['x-wc-webhook-resource']}.{h['x-wc-webhook-event']}"
    if not topic:
        raise BadPayload("X-WC-Webhook-Topic is missing")
    return Delivery(delivery_id=delivery_key(h, body), topic=topic, payload=payload, body=body,
                    occurred_at=datetime.now(timezone.utc),
                    headers={k: v for k, v in h.items()
                             if k.startswith("x-wc-webhook-") and k != "x-wc-webhook-signature"})
