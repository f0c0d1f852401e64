"""Shopify webhooks: one endpoint (`/webhooks/shopify`) for every shop, the shop named by
`X-Shopify-Shop-Domain`, the body signed with `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(raw
body, secret)). The secret is the app's API secret: the public app's (`SHOPIFY_API_SECRET`, which
core puts in `source.webhook_secret`) or a custom app's (given as `webhook_secret`).

ShopifyAPI has no webhook verifier (only OAuth and session-token checks), so the HMAC is computed
here with the standard library and compared in constant time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from core.connectors import (BadPayload, Delivery, SignatureInvalid, SourceContext, header_map,
                             json_object)

SHOP_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.myshopify\.com$")


def normalize_account(value: str) -> str:
    """`Name.myshopify.com` (or its https URL, as merchants paste it) -> `name.myshopify.com`.

    Anything else (a custom domain, another host, an empty string) is a ValueError: the
    myshopify domain is the only name Shopify puts in `X-Shopify-Shop-Domain`, OAuth and tokens.
    """
    shop = str(value or "").strip().lower()
    shop = re.sub(r"^https?://", "", shop).split("/")[0]
    if not SHOP_DOMAIN.match(shop):
        raise ValueError(f"shop must be the store's NAME.myshopify.com domain, not {value!r}")
    return shop


normalize_shop = normalize_account  # the name install.py has used


def account_from_headers(headers: Mapping[str, str]) -> str | None:
    """The shop a delivery is for (core finds its source by it); None when absent or not a shop."""
    value = header_map(headers).get("x-shopify-shop-domain")
    try:
        return normalize_account(value) if value else None
    except ValueError:
        return None


def signature(secret: str, body: bytes) -> str:
    """What Shopify puts in `X-Shopify-Hmac-Sha256` for this body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery_key(topic: str, h: Mapping[str, str], body: bytes) -> str:
    """The dedupe key. Shopify's "ignore duplicates" guide names `X-Shopify-Event-Id`: one event
    keeps its id across retries *and* across several subscriptions to the same topic (each of
    which has its own `X-Shopify-Webhook-Id`). So the event id, with the topic because one
    event (an order paid at creation) may fire several topics that must each count. Without an
    event id (older API versions), the webhook id, which retries keep; failing both, the body."""
    event_id, webhook_id = h.get("x-shopify-event-id"), h.get("x-shopify-webhook-id")
    if event_id:
        return f"{topic}:event:{event_id}"
    if webhook_id:
        return f"{topic}:webhook:{webhook_id}"
    return f"{topic}:body:{hashlib.sha256(body).hexdigest()}"


def triggered_at(h: Mapping[str, str]) -> datetime | None:
    """`X-Shopify-Triggered-At` (nanoseconds and `Z` included) as aware UTC, or None."""
    value = h.get("x-shopify-triggered-at")
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return utc(parsed)


def utc(value: datetime) -> datetime:
    """Aware UTC; a naive time (never sent by Shopify) is taken as UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def verify(source: SourceContext, headers: Mapping[str, str], body: bytes) -> Delivery:
    """Check the HMAC over the raw bytes, then parse.

    No staleness check is possible: Shopify signs only the body, with no timestamp; a replayed
    delivery carries the same event id and is stopped by the inbox's unique key. A privacy
    webhook names its shop in the body (`shop_domain`): a body signed for one shop (every shop of
    the public app shares the secret) is refused when replayed under another shop's header.
    """
    h = header_map(headers)
    given = h.get("x-shopify-hmac-sha256")
    if not given:
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 is missing")
    if not source.webhook_secret:
        raise SignatureInvalid("this Shopify source has no secret to check signatures with")
    expected = signature(source.webhook_secret, body)
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match the body")
    topic = h.get("x-shopify-topic")
    if not topic:
        raise BadPayload("X-Shopify-Topic is missing")
    payload = json_object(body)
    named = payload.get("shop_domain")
    if isinstance(named, str) and source.account and named.lower() != source.account:
        raise SignatureInvalid(f"the body is for {named}, not {source.account}")
    return Delivery(delivery_id=delivery_key(topic, h, body), topic=topic, payload=payload,
                    body=body, occurred_at=triggered_at(h),
                    headers={k: v for k, v in h.items() if k.startswith("x-shopify-")})
