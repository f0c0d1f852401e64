"""Shopify webhooks: one endpoint for every shop, found by `X-Shopify-Shop-Domain`, signed with
`X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(raw body, the app's client secret))."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from core.connectors import BadPayload, Delivery, SignatureInvalid, SourceContext

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


def normalize_shop(value: str) -> str:
    """`Name.myshopify.com` (or an https URL of it) -> `name.myshopify.com`; ValueError else."""
    shop = value.strip().lower()
    shop = re.sub(r"^https?://", "", shop).split("/")[0]
    if not SHOP_DOMAIN.match(shop):
        raise ValueError(f"shop must be the store's NAME.myshopify.com domain, not {value!r}")
    return shop


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def account_from_headers(headers: Mapping[str, str]) -> str | None:
    value = _lower(headers).get("x-shopify-shop-domain")
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
    h = _lower(headers)
    given = h.get("x-shopify-hmac-sha256")
    if not given or not source.webhook_secret:
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 is missing")
    if not hmac.compare_digest(given, signature(source.webhook_secret, body)):
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match the body")
    topic = h.get("x-shopify-topic")
    if not topic:
        raise BadPayload("X-Shopify-Topic is missing")
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadPayload("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadPayload("the body is not a JSON object")
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
