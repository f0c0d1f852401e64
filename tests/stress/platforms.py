"""Thousands of distinct, signed webhook deliveries from the four platforms, built from their
published samples (tests/fixtures/<platform>/) by changing ids, amounts and dates in the loaded
dicts, and signed the way each platform signs (Stripe through its SDK, the others with hmac).

Every order is a one-time sale of a known revenue (no tax, shipping or discount, so the revenue
is the amount paid), credited through a click to one partner under a 10 % reward; some are fully
refunded by a later notification. So the effect of every delivery is known in advance:
`Order.commission` is what the ledger must hold for it, exactly once, whatever the arrival order.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe

from tests.conftest import fixture_json

PLATFORMS = ("stripe", "paddle", "woocommerce", "shopify")
REWARD_PERCENT = 10
SECRETS = {"stripe": "whsec_stress", "paddle": "pdl_ntfset_01stress_secret",
           "shopify": "shpss_stress_secret"}  # WooCommerce's is made by Touchpoint on connect
SHOP = "stress-shop.myshopify.com"


@dataclass(frozen=True)
class Delivery:
    """One notification as a platform sends it; `headers()` signs at send time, as a platform
    signs every attempt (Stripe and Paddle refuse signatures older than five minutes)."""

    event: str
    path: str
    body: bytes
    sign: Callable[[bytes], dict[str, str]]

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", **self.sign(self.body)}


@dataclass(frozen=True)
class Order:
    platform: str
    external_id: str
    revenue: int  # minor units (USD cents)
    partner: int
    refunded: bool

    @property
    def earned(self) -> int:
        """10 % of the revenue, rounded half-up to the cent (computed here, not by Touchpoint)."""
        return int((Decimal(self.revenue) * REWARD_PERCENT / 100).quantize(Decimal(1), ROUND_HALF_UP))

    @property
    def commission(self) -> int:
        return 0 if self.refunded else self.earned


@dataclass
class Target:
    """Where a platform's deliveries go: the source's webhook path and secret."""

    path: str
    secret: str


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _hmac64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# --- Stripe: checkout.session.completed (payment mode) and charge.refunded ----------------------

def stripe_signer(secret: str) -> Callable[[bytes], dict[str, str]]:
    def sign(body: bytes) -> dict[str, str]:
        return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret, timestamp=int(time.time()))}
    return sign


def _stripe_event(event_id: str, kind: str, obj: dict[str, Any], created: int) -> bytes:
    event = fixture_json("stripe", "event.json")
    event.update(id=event_id, type=kind, created=created)
    event["data"]["object"] = obj
    return json.dumps(event).encode()


def stripe_order(run: str, n: int, target: Target, click: str, order: Order,
                 now: datetime) -> list[Delivery]:
    pi = order.external_id
    session = fixture_json("stripe", "checkout.session.json")
    session.update(id=f"cs_{run}_{n}", mode="payment", status="complete", payment_status="paid",
                   amount_subtotal=order.revenue, amount_total=order.revenue, currency="usd",
                   payment_intent=pi, client_reference_id=click, metadata={}, customer=None,
                   customer_email=None, invoice=None, discounts=[],
                   total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0})
    session["customer_details"]["email"] = f"stripe-{run}-{n}@customers.example"
    created = int(now.timestamp())
    sign = stripe_signer(target.secret)
    out = [Delivery(f"stripe:sale:{n}", target.path,
                    _stripe_event(f"evt_{run}_s{n}", "checkout.session.completed", session, created),
                    sign)]
    if order.refunded:
        charge = fixture_json("stripe", "charge.json")
        charge.update(id=f"ch_{run}_{n}", payment_intent=pi, invoice=None, customer=None,
                      amount=order.revenue, amount_captured=order.revenue, captured=True,
                      amount_refunded=order.revenue, refunded=True, currency="usd")
        out.append(Delivery(f"stripe:refund:{n}", target.path,
                            _stripe_event(f"evt_{run}_r{n}", "charge.refunded", charge, created + 60),
                            sign))
    return out


# --- Paddle Billing: transaction.completed and an approved refund adjustment --------------------

def paddle_signer(secret: str) -> Callable[[bytes], dict[str, str]]:
    def sign(body: bytes) -> dict[str, str]:
        ts = int(time.time())
        digest = hmac.new(secret.encode(), f"{ts}:".encode() + body, hashlib.sha256).hexdigest()
        return {"Paddle-Signature": f"ts={ts};h1={digest}"}
    return sign


def _paddle_notification(event_id: str, kind: str, data: dict[str, Any], at: datetime) -> bytes:
    note = fixture_json("paddle", "transaction.completed.json")
    note.update(event_id=event_id, event_type=kind, occurred_at=iso(at),
                notification_id=event_id.replace("evt_", "ntf_"), data=data)
    return json.dumps(note).encode()


def paddle_order(run: str, n: int, target: Target, click: str, order: Order,
                 now: datetime) -> list[Delivery]:
    txn = fixture_json("paddle", "transaction.completed.data.json")
    txn.update(id=order.external_id, customer_id=f"ctm_{run}_{n}", subscription_id=None,
               origin="web", discount_id=None, custom_data={"tp_click": click},
               currency_code="USD", billed_at=iso(now), created_at=iso(now), updated_at=iso(now))
    totals = txn["details"]["totals"]
    totals.update(subtotal=str(order.revenue), tax="0", discount="0", total=str(order.revenue),
                  grand_total=str(order.revenue), currency_code="USD")
    txn["payments"][0].update(status="captured", captured_at=iso(now))
    sign = paddle_signer(target.secret)
    out = [Delivery(f"paddle:sale:{n}", target.path,
                    _paddle_notification(f"evt_{run}_s{n}", "transaction.completed", txn, now), sign)]
    if order.refunded:
        adj = fixture_json("paddle", "adjustment.created.data.json")
        adj.update(id=f"adj_{run}_{n}", action="refund", status="approved",
                   transaction_id=order.external_id, customer_id=f"ctm_{run}_{n}",
                   subscription_id=None, currency_code="USD", created_at=iso(now),
                   updated_at=iso(now), tax_rates_used=[])
        adj["totals"].update(total=str(order.revenue), tax="0", subtotal=str(order.revenue),
                             currency_code="USD")
        out.append(Delivery(f"paddle:refund:{n}", target.path,
                            _paddle_notification(f"evt_{run}_r{n}", "adjustment.created", adj, now),
                            sign))
    return out


# --- WooCommerce: order.updated, paid, then refunded ---------------------------------------------

def woocommerce_signer(secret: str, topic: str, delivery_id: str) -> Callable[[bytes], dict[str, str]]:
    resource, event = topic.split(".", 1)

    def sign(body: bytes) -> dict[str, str]:
        return {"X-WC-Webhook-Source": "https://shop.example/", "X-WC-Webhook-Topic": topic,
                "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
                "X-WC-Webhook-Signature": _hmac64(secret, body), "X-WC-Webhook-ID": "142",
                "X-WC-Webhook-Delivery-ID": delivery_id}
    return sign


def woocommerce_payload(run: str, n: int, click: str, order: Order, now: datetime,
                        refunded: bool = False) -> dict[str, Any]:
    """The published order, as the REST API and the webhooks show it, for this order."""
    o = copy.deepcopy(fixture_json("woocommerce", "order.retrieve_an_order.json"))
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
    o.update(id=int(order.external_id), status="refunded" if refunded else "processing",
             currency="USD", total=money(order.revenue), total_tax="0.00", shipping_total="0.00",
             shipping_tax="0.00", discount_total="0.00", customer_id=0, coupon_lines=[],
             date_created_gmt=stamp, date_paid_gmt=stamp, date_modified_gmt=stamp,
             refunds=[{"id": 90_000 + n, "reason": "", "total": f"-{money(order.revenue)}"}]
             if refunded else [])
    o["billing"]["email"] = f"woo-{run}-{n}@customers.example"
    o["meta_data"] = [{"id": 1, "key": "_tp_click", "value": click}]
    return o


def woocommerce_order(run: str, n: int, target: Target, click: str, order: Order,
                      now: datetime) -> list[Delivery]:
    out = [Delivery(f"woocommerce:sale:{n}", target.path,
                    json.dumps(woocommerce_payload(run, n, click, order, now)).encode(),
                    woocommerce_signer(target.secret, "order.updated", f"{run}-s{n}"))]
    if order.refunded:
        later = woocommerce_payload(run, n, click, order, now, refunded=True)
        out.append(Delivery(f"woocommerce:refund:{n}", target.path, json.dumps(later).encode(),
                            woocommerce_signer(target.secret, "order.updated", f"{run}-r{n}")))
    return out


# --- Shopify: orders/paid and refunds/create -----------------------------------------------------

def shopify_signer(secret: str, topic: str, event_id: str) -> Callable[[bytes], dict[str, str]]:
    def sign(body: bytes) -> dict[str, str]:
        return {"X-Shopify-Hmac-Sha256": _hmac64(secret, body), "X-Shopify-Topic": topic,
                "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": f"w-{event_id}",
                "X-Shopify-Event-Id": event_id}
    return sign


def shopify_order(run: str, n: int, target: Target, click: str, order: Order,
                  now: datetime) -> list[Delivery]:
    o = copy.deepcopy(fixture_json("shopify", "order.json")["order"])
    amount = money(order.revenue)
    o.update(id=int(order.external_id), financial_status="paid", currency="USD",
             subtotal_price=amount, total_price=amount, total_tax="0.00", taxes_included=False,
             discount_codes=[], landing_site="/", processed_at=iso(now), created_at=iso(now),
             note_attributes=[{"name": "tp_click", "value": click}])
    for key in ("subtotal_price_set", "total_price_set", "total_tax_set"):
        o.pop(key, None)
    o["customer"]["id"] = 7_000_000 + n
    o["email"] = o["customer"]["email"] = f"shopify-{run}-{n}@customers.example"
    out = [Delivery(f"shopify:sale:{n}", target.path, json.dumps(o).encode(),
                    shopify_signer(target.secret, "orders/paid", f"{run}-s{n}"))]
    if order.refunded:
        r = copy.deepcopy(fixture_json("shopify", "refund.json")["refund"])
        r.update(id=80_000_000 + n, order_id=int(order.external_id), created_at=iso(now),
                 processed_at=iso(now), refund_line_items=[], order_adjustments=[])
        r["transactions"] = [{**r["transactions"][0], "order_id": int(order.external_id),
                              "amount": amount, "currency": "USD", "kind": "refund",
                              "status": "success"}]
        out.append(Delivery(f"shopify:refund:{n}", target.path, json.dumps(r).encode(),
                            shopify_signer(target.secret, "refunds/create", f"{run}-r{n}")))
    return out


BUILDERS = {"stripe": stripe_order, "paddle": paddle_order, "woocommerce": woocommerce_order,
            "shopify": shopify_order}


def external_id(platform: str, run: str, n: int, base: int) -> str:
    """The id Touchpoint keys the sale by: Stripe's payment intent, Paddle's transaction, the
    numeric order id of WooCommerce and Shopify (numbers apart per run)."""
    if platform == "stripe":
        return f"pi_{run}_{n}"
    if platform == "paddle":
        return f"txn_{run}_{n}"
    return str(base + n)


def orders(rnd: random.Random, run: str, per_platform: int, partners: int,
           refund_share: float = 0.25, base: int = 0) -> list[Order]:
    out = []
    for platform in PLATFORMS:
        for n in range(per_platform):
            out.append(Order(platform, external_id(platform, run, n, base),
                             revenue=rnd.randrange(500, 50_000), partner=rnd.randrange(partners),
                             refunded=rnd.random() < refund_share))
    return out


def deliveries(orders_: list[Order], run: str, targets: dict[str, Target], clicks: list[str],
               now: datetime | None = None) -> list[Delivery]:
    """Every distinct notification of these orders (a sale each, a refund for refunded ones)."""
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    counters = {p: 0 for p in PLATFORMS}
    out: list[Delivery] = []
    for order in orders_:
        n = counters[order.platform]
        counters[order.platform] += 1
        out += BUILDERS[order.platform](run, n, targets[order.platform], clicks[order.partner],
                                        order, now)
    return out


def with_repeats(rnd: random.Random, distinct: list[Delivery], share: float = 1 / 3) -> list[Delivery]:
    """The distinct deliveries plus a `share` of them again, all shuffled: what at-least-once
    delivery and platforms' retries look like to the receiver."""
    stream = distinct + rnd.sample(distinct, int(len(distinct) * share))
    rnd.shuffle(stream)
    return stream
