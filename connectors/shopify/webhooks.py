"""Shopify webhooks: one endpoint for every shop, found by `X-Shopify-Shop-Domain`, signed with
`X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(raw body, the app's client secret))."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from core.connectors import BadPayload, Delivery, SignatureInvalid, SourceContext, header_map, json_object

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


def normalize_shop(value: str) -> str:
    """`Name.myshopify.com` (or an https URL of it) -> `name.myshopify.com`; ValueError else."""
    shop = value.strip().lower()
    shop = re.sub(r"^https?://", "", shop).split("/")[0]
    if not SHOP_DOMAIN.match(shop):
        raise ValueError(f"shop must be the store's NAME.myshopify.com domain, not {value!r}")
    return shop


def account_from_headers(headers: Mapping[str, str]) -> str | None:
    value = header_map(headers).get("x-shopify-shop-domain")
    try:
        return normalize_shop(value) if value else None
    except ValueError:
        return None


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(source: SourceContext, headers: Mapping[str, str], body: bytes) -> Delivery:
    """Check the HMAC over the raw body. The dedupe key is the event id where Shopify sends one
    (the same event delivered again, or to two subscriptions, has one event id), else the
    webhook id, which stays the same across Shopify's retries."""
    h = header_map(headers)
    given = h.get("x-shopify-hmac-sha256")
    if not given or not source.webhook_secret:
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 is missing")
    if not hmac.compare_digest(given, signature(source.webhook_secret, body)):
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match the body")
    topic = h.get("x-shopify-topic")
    if not topic:
        raise BadPayload("X-Shopify-Topic is missing")
    payload = json_object(body)
    event_id, webhook_id = h.get("x-shopify-event-id"), h.get("x-shopify-webhook-id")
    if event_id:
        key = f"{topic}:event:{event_id}"
    elif webhook_id:
        key = f"webhook:{webhook_id}"
    else:
        key = f"{topic}:body:" + hashlib.sha256(body).hexdigest()
    occurred = None
    if h.get("x-shopify-triggered-at"):
        try:
            occurred = datetime.fromisoformat(h["x-shopify-triggered-at"].replace("Z", "+00:00"))
        except ValueError:
            occurred = None
    return Delivery(delivery_id=key, topic=topic, payload=payload, body=body,
                    occurred_at=occurred or datetime.now(timezone.utc),
                    headers={k: v for k, v in h.items() if k.startswith("x-shopify-")})
