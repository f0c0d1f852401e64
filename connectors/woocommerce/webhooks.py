"""WooCommerce webhook deliveries: `X-WC-Webhook-Signature` is base64(HMAC-SHA256(raw body,
secret)), the secret Touchpoint generated when it created the webhook. The `woocommerce` package
only talks to the REST API, so the check is `hmac.compare_digest` here."""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import parse_qs

from core.connectors import BadPayload, Delivery, SignatureInvalid, SourceContext, header_map, json_object


def _ping(body: bytes) -> str | None:
    """WooCommerce pings a new webhook with the form body `webhook_id=N` and no signature."""
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    ids = form.get("webhook_id")
    if set(form) == {"webhook_id"} and ids and ids[0].isdigit():
        return ids[0]
    return None


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(source: SourceContext, headers: Mapping[str, str], body: bytes) -> Delivery:
    """Check the signature, parse the order. The creation ping is accepted as a harmless
    `ping` delivery (WooCommerce disables a webhook whose ping fails); it carries no data."""
    h = header_map(headers)
    given = h.get("x-wc-webhook-signature")
    if not given:
        webhook_id = _ping(body)
        if webhook_id is not None:
            return Delivery(delivery_id=f"ping:{webhook_id}", topic="ping", payload=None,
                            body=body, headers={"x-wc-webhook-id": webhook_id})
        raise SignatureInvalid("X-WC-Webhook-Signature is missing")
    if not source.webhook_secret or not hmac.compare_digest(given, signature(source.webhook_secret, body)):
        raise SignatureInvalid("X-WC-Webhook-Signature does not match the body")
    payload = json_object(body)
    topic = h.get("x-wc-webhook-topic") or ""
    if not topic:
        raise BadPayload("X-WC-Webhook-Topic is missing")
    delivery_id = h.get("x-wc-webhook-delivery-id") or ""
    key = f"{h.get('x-wc-webhook-id', '')}:{delivery_id}" if delivery_id else \
        "body:" + hashlib.sha256(body).hexdigest()
    return Delivery(delivery_id=key, topic=topic, payload=payload, body=body,
                    occurred_at=datetime.now(timezone.utc),
                    headers={k: v for k, v in h.items() if k.startswith("x-wc-")})
