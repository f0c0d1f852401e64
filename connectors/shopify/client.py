"""The Shopify Admin API through ShopifyAPI, wrapped once: OAuth, session tokens, webhook
registration, the customer journey (GraphQL), and order history for backfill."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import shopify
from shopify import session_token

from connectors.shopify.translate import WEBHOOK_TOPICS
from core.connectors import ConnectError, ConnectResult, Delivery, SourceContext
from core.events import Referral, Sale

API_VERSION = "2024-10"
SCOPES = ("read_orders", "read_customers", "read_discounts")
JOURNEY_QUERY = """
query($id: ID!) { order(id: $id) { customerJourneySummary {
  firstVisit { landingPage referralCode referrerUrl utmParameters { source medium campaign } }
  lastVisit { landingPage referralCode referrerUrl utmParameters { source medium campaign } }
} } }"""


class SessionTokenInvalid(Exception):
    """An App Bridge session token failed verification."""


# --- OAuth (public app) ------------------------------------------------------------------------

def permission_url(shop: str, api_key: str, api_secret: str, redirect_uri: str, state: str) -> str:
    shopify.Session.setup(api_key=api_key, secret=api_secret)
    return shopify.Session(shop, API_VERSION).create_permission_url(list(SCOPES), redirect_uri, state)


def valid_callback(params: dict[str, str], api_key: str, api_secret: str) -> bool:
    """HMAC of the other parameters with the app secret, and a timestamp under a day old."""
    shopify.Session.setup(api_key=api_key, secret=api_secret)
    return bool(shopify.Session.validate_params(params))


def exchange_code(shop: str, params: dict[str, str], api_key: str, api_secret: str) -> str:
    """The offline access token for the shop (the code's HMAC is checked again by the SDK)."""
    shopify.Session.setup(api_key=api_key, secret=api_secret)
    try:
        return shopify.Session(shop, API_VERSION).request_token(params)
    except Exception as exc:  # the SDK raises bare Exception and urllib errors
        raise ConnectError(f"Shopify refused the authorization code: {exc}") from None


def decode_session_token(authorization: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """Verify an App Bridge session token (signature, expiry, audience, issuer and destination
    agree) and return its claims; `dest` is the shop's URL."""
    try:
        return session_token.decode_from_header(authorization, api_key, api_secret)
    except Exception as exc:  # the SDK raises several of its own and PyJWT's exceptions
        raise SessionTokenInvalid(str(exc) or type(exc).__name__) from None


# --- Admin API with a shop's token -------------------------------------------------------------

@contextmanager
def admin(shop: str, token: str) -> Iterator[None]:
    session = shopify.Session(shop, API_VERSION, token)
    shopify.ShopifyResource.activate_session(session)
    try:
        yield
    finally:
        shopify.ShopifyResource.clear_session()


def _token(source: SourceContext) -> str | None:
    return source.credentials.get("access_token")


def register_webhooks(shop: str, token: str, address: str) -> list[int]:
    """One subscription per topic to `address`, reusing those that already exist."""
    ids = []
    with admin(shop, token):
        existing = {(w.topic, w.address): w.id for w in shopify.Webhook.find()}
        for topic in WEBHOOK_TOPICS:
            if (topic, address) in existing:
                ids.append(existing[(topic, address)])
                continue
            hook = shopify.Webhook.create({"topic": topic, "address": address, "format": "json"})
            if hook.errors.full_messages():
                raise ConnectError(f"Shopify refused the {topic} webhook: "
                                   f"{'; '.join(hook.errors.full_messages())}")
            ids.append(hook.id)
    return ids


def shop_details(shop: str, token: str) -> dict[str, Any]:
    with admin(shop, token):
        current = shopify.Shop.current()
        return {"name": current.name, "currency": current.currency, "domain": current.domain}


def connect(source: SourceContext) -> ConnectResult:
    """A custom app: check the token, register the webhooks."""
    token = _token(source)
    if not token or not source.account:
        return ConnectResult()
    try:
        details = shop_details(source.account, token)
        ids = register_webhooks(source.account, token, source.webhook_url)
    except ConnectError:
        raise
    except Exception as exc:  # pyactiveresource raises UnauthorizedAccess, ConnectionError...
        raise ConnectError(f"Shopify refused the access token for {source.account}: {exc}") from None
    return ConnectResult(account=source.account,
                         settings={"webhook_ids": ids, "currency": details["currency"]},
                         actions=tuple(f"Registered webhook {t} -> {source.webhook_url}"
                                       for t in WEBHOOK_TOPICS))


def disconnect(source: SourceContext) -> None:
    token = _token(source)
    if not token or not source.account:
        return
    try:
        with admin(source.account, token):
            for hook_id in source.settings.get("webhook_ids", []):
                hook = shopify.Webhook.find(hook_id)
                hook.destroy()
    except Exception as exc:  # noqa: BLE001 - already removed, or the app is uninstalled
        raise ConnectError(f"could not remove the webhooks: {exc}") from None


def lookup_referral(source: SourceContext, sale: Sale) -> Referral | None:
    """The order's customer journey, read by Shopify itself (`?ref=` as `referralCode`, the
    landing page), for stores without the script."""
    token = _token(source)
    if not token or not source.account:
        return None
    with admin(source.account, token):
        answer = json.loads(shopify.GraphQL().execute(
            JOURNEY_QUERY, {"id": f"gid://shopify/Order/{sale.order_id}"}))
    summary = ((answer.get("data") or {}).get("order") or {}).get("customerJourneySummary") or {}
    for visit in (summary.get("lastVisit"), summary.get("firstVisit")):
        if not visit:
            continue
        query = parse_qs(urlsplit(visit.get("landingPage") or "").query)
        click = (query.get("tp_click") or [None])[0]
        ref = visit.get("referralCode") or (query.get("ref") or query.get("via") or [None])[0]
        if click or ref:
            return Referral(click_id=click, ref=ref, evidence="customer_journey")
    return None


def fetch_history(source: SourceContext, since: datetime) -> Iterator[Delivery]:
    """Orders updated since `since` (cursor pages), as the webhooks they would have been: paid
    orders, their refunds, cancellations."""
    token = _token(source)
    if not token or not source.account:
        return
    with admin(source.account, token):
        page = shopify.Order.find(status="any", updated_at_min=since.isoformat(), limit=250)
        while True:
            for order in page:
                data = order.to_dict()
                if data.get("financial_status") in ("paid", "partially_refunded", "refunded"):
                    yield _delivery(f"backfill:order:{data['id']}", "orders/paid", data)
                for refund in data.get("refunds") or []:
                    yield _delivery(f"backfill:refund:{refund['id']}", "refunds/create", refund)
                if data.get("cancelled_at"):
                    yield _delivery(f"backfill:cancel:{data['id']}", "orders/cancelled", data)
            if not page.has_next_page():
                return
            page = page.next_page()


def _delivery(key: str, topic: str, payload: dict[str, Any]) -> Delivery:
    return Delivery(delivery_id=key, topic=topic, payload=payload, body=json.dumps(payload).encode())
