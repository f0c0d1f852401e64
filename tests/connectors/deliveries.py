"""Signed webhook deliveries for every connector, as data (allauth's shared-mixin habit): how each
platform signs, where its endpoint is, and which published samples (tests/fixtures/<platform>/)
make its deliveries. test_signatures.py and test_mutations.py run the same checks over all four.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe

from core.db import get_db
from core.models import Program
from core.sources import attach_source
from tests.conftest import fixture_json
from tests.factories import new_program

SHOP = "mutations.myshopify.com"
STORE = "https://store.example"


def _b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def stripe_headers(secret: str, body: bytes, topic: str, key: str, at: int) -> dict[str, str]:
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=at)}


def paddle_headers(secret: str, body: bytes, topic: str, key: str, at: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{at}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Paddle-Signature": f"ts={at};h1={digest}"}


def woocommerce_headers(secret: str, body: bytes, topic: str, key: str, at: int) -> dict[str, str]:
    resource, event = topic.split(".", 1)
    return {"X-WC-Webhook-Source": f"{STORE}/", "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": _b64_hmac(secret, body), "X-WC-Webhook-ID": "142",
            "X-WC-Webhook-Delivery-ID": key}


def shopify_headers(secret: str, body: bytes, topic: str, key: str, at: int) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": _b64_hmac(secret, body), "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": key,
            "X-Shopify-Event-Id": key}


# --- the published samples as deliveries -----------------------------------------------------------

def _stripe(topic: str, name: str) -> Callable[[str], dict[str, Any]]:
    def build(key: str) -> dict[str, Any]:
        event = fixture_json("stripe", "event.json")
        event.update(id=f"evt_{key}", type=topic, created=int(time.time()))
        event["data"] = {"object": fixture_json("stripe", name)}
        return event
    return build


def _paddle(topic: str, name: str) -> Callable[[str], dict[str, Any]]:
    def build(key: str) -> dict[str, Any]:
        note = fixture_json("paddle", "transaction.completed.json")
        data = fixture_json("paddle", name)
        note.update(event_id=f"evt_{key}", notification_id=f"ntf_{key}", event_type=topic,
                    data=data.get("data", data))
        return note
    return build


def _woocommerce(name: str) -> Callable[[str], dict[str, Any]]:
    return lambda key: fixture_json("woocommerce", name)


def _shopify(name: str, root: str | None) -> Callable[[str], dict[str, Any]]:
    def build(key: str) -> dict[str, Any]:
        data = fixture_json("shopify", name)
        payload = copy.deepcopy(data[root] if root else data)
        if "shop_domain" in payload:
            payload["shop_domain"] = SHOP
        return payload
    return build


@dataclass(frozen=True)
class Platform:
    id: str
    account: str | None
    path: str  # the webhook URL's path, `{source}` for the source id
    sign: Callable[[str, bytes, str, str, int], dict[str, str]]
    samples: tuple[tuple[str, Callable[[str], dict[str, Any]]], ...]  # (topic, build(key))
    timestamped: bool  # the signature covers a time, so a stale one can be refused

    def url(self, source_id: str) -> str:
        return self.path.format(source=source_id)

    def delivery(self, topic: str, payload: Any, key: str, secret: str,
                 at: int | None = None) -> tuple[bytes, dict[str, str]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = self.sign(secret, body, topic, key, int(time.time()) if at is None else at)
        return body, {**headers, "Content-Type": "application/json"}


PLATFORMS = (
    Platform("stripe", None, "/webhooks/stripe/{source}", stripe_headers, (
        ("invoice.paid", _stripe("invoice.paid", "invoice.json")),
        ("checkout.session.completed", _stripe("checkout.session.completed", "checkout.session.json")),
        ("charge.refunded", _stripe("charge.refunded", "charge.json")),
        ("charge.dispute.created", _stripe("charge.dispute.created", "dispute.json")),
        ("customer.subscription.deleted", _stripe("customer.subscription.deleted", "subscription.json")),
        ("customer.updated", _stripe("customer.updated", "customer.json")),
    ), timestamped=True),
    Platform("paddle", None, "/webhooks/paddle/{source}", paddle_headers, (
        ("transaction.completed", _paddle("transaction.completed", "transaction.completed.json")),
        ("subscription.created", _paddle("subscription.created", "subscription.created.json")),
        ("subscription.canceled", _paddle("subscription.canceled", "subscription.canceled.data.json")),
        ("adjustment.created", _paddle("adjustment.created", "adjustment.created.data.json")),
        ("customer.created", _paddle("customer.created", "customer.created.data.json")),
    ), timestamped=True),
    Platform("woocommerce", STORE, "/webhooks/woocommerce/{source}", woocommerce_headers, (
        ("order.updated", _woocommerce("order.retrieve_an_order.json")),
        ("order.created", _woocommerce("order.create_an_order.json")),
        ("order.deleted", _woocommerce("order.delete_an_order.json")),
    ), timestamped=False),
    Platform("shopify", SHOP, "/webhooks/shopify", shopify_headers, (
        ("orders/paid", _shopify("order.json", "order")),
        ("refunds/create", _shopify("refund.json", "refund")),
        ("orders/cancelled", _shopify("order.json", "order")),
        ("customers/redact", _shopify("customers_redact.json", None)),
        ("customers/data_request", _shopify("customers_data_request.json", None)),
        ("shop/redact", _shopify("shop_redact.json", None)),
    ), timestamped=False),
)
BY_ID = {p.id: p for p in PLATFORMS}


def connect(app: Any, platform: Platform, secret: str, name: str = "Shop",
            account: str | None = None) -> tuple[Any, str]:
    """A program with a source of this platform that only receives webhooks (no API calls)."""
    api = new_program(app, name=name)
    api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    with app.app_context(), get_db().write() as s:
        source = attach_source(s, s.get(Program, api.program_id), platform.id,
                               account or platform.account or "", {}, secret)
        if not (account or platform.account):
            source.account = None
        source_id = source.id
    return api, source_id
