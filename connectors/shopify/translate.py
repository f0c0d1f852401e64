"""Shopify orders, refunds, uninstalls and privacy requests into the common model. Pure.

Revenue is the order's subtotal after discounts, without tax and shipping, in the shop's
currency (`*_set.shop_money`; the program of a Shopify shop is in the shop's currency). Where
prices include tax (`taxes_included`), the order's tax is taken out of the subtotal.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core import events as ev
from core.connectors import Delivery
from core.money import Money


def _time(value: str | None, fallback: datetime | None = None) -> datetime:
    if value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    return fallback or datetime.now(timezone.utc)


def _shop_money(order: dict[str, Any], field: str) -> Money:
    money = (order.get(f"{field}_set") or {}).get("shop_money")
    if money:
        return Money.parse(money["amount"], money["currency_code"])
    return Money.parse(order.get(field) or "0", order["currency"])


def referral(order: dict[str, Any]) -> ev.Referral:
    """Evidence in order of reliability: the cart attribute set by the storefront script, the
    landing page's query, then discount codes."""
    codes = tuple(d["code"] for d in order.get("discount_codes") or [] if d.get("code"))
    email = order.get("email") or (order.get("customer") or {}).get("email")
    for attr in order.get("note_attributes") or []:
        if attr.get("name") == "tp_click" and attr.get("value"):
            return ev.Referral(click_id=str(attr["value"]), promo_codes=codes, email=email,
                               evidence="note_attributes")
    landing = order.get("landing_site") or ""
    query = parse_qs(urlsplit(landing).query)
    click = (query.get("tp_click") or [None])[0]
    ref = (query.get("ref") or query.get("via") or [None])[0]
    if click or ref:
        return ev.Referral(click_id=click, ref=ref, promo_codes=codes, email=email,
                           evidence="landing_site")
    return ev.Referral(promo_codes=codes, email=email, evidence="discount_codes" if codes else None)


def sale(order: dict[str, Any]) -> ev.Sale:
    subtotal = _shop_money(order, "current_subtotal_price" if order.get("current_subtotal_price_set") else "subtotal_price")
    total = _shop_money(order, "total_price")
    if order.get("taxes_included"):
        subtotal = subtotal - _shop_money(order, "total_tax")
    customer = order.get("customer") or {}
    return ev.Sale(order_id=str(order["id"]), amount=Money(max(subtotal.amount, 0), subtotal.currency),
                   paid_total=Money(max(total.amount, subtotal.amount, 0), total.currency),
                   occurred_at=_time(order.get("processed_at") or order.get("created_at")),
                   customer_id=str(customer["id"]) if customer.get("id") else None,
                   email=order.get("email") or customer.get("email"), referral=referral(order))


def on_paid(d: Delivery) -> list[ev.Event]:
    return [sale(d.payload)]


def on_created(d: Delivery) -> list[ev.Event]:
    return [sale(d.payload)] if d.payload.get("financial_status") == "paid" else []


def on_cancelled(d: Delivery) -> list[ev.Event]:
    return [ev.OrderCanceled(order_id=str(d.payload["id"]),
                             occurred_at=_time(d.payload.get("cancelled_at"), d.occurred_at))]


def refund_amount(refund: dict[str, Any]) -> Decimal:
    """What went back to the customer: the successful refund transactions."""
    return sum((Decimal(t["amount"]) for t in refund.get("transactions") or []
                if t.get("kind") == "refund" and t.get("status") == "success"), Decimal(0))


def on_refund(d: Delivery) -> list[ev.Event]:
    refund = d.payload
    txs = [t for t in refund.get("transactions") or [] if t.get("kind") == "refund"]
    currency = (txs[0].get("currency") if txs else None) or "USD"
    amount = refund_amount(refund)
    if not amount:
        return []
    return [ev.Refund(order_id=str(refund["order_id"]), refund_id=str(refund["id"]),
                      amount=Money.parse(amount, currency),
                      occurred_at=_time(refund.get("created_at"), d.occurred_at))]


def on_uninstalled(d: Delivery) -> list[ev.Event]:
    return [ev.SourceDisconnected(occurred_at=d.occurred_at or datetime.now(timezone.utc))]


def _customer(payload: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    c = payload.get("customer") or {}
    return ((str(c["id"]),) if c.get("id") else (), (c["email"],) if c.get("email") else ())


def on_data_request(d: Delivery) -> list[ev.Event]:
    ids, emails = _customer(d.payload)
    request_id = str((d.payload.get("data_request") or {}).get("id") or d.delivery_id)
    return [ev.PersonalDataRequest(request_id=request_id, customer_ids=ids, emails=emails,
                                   occurred_at=d.occurred_at or datetime.now(timezone.utc))]


def on_customer_redact(d: Delivery) -> list[ev.Event]:
    ids, emails = _customer(d.payload)
    return [ev.PersonalDataErasure(customer_ids=ids, emails=emails,
                                   occurred_at=d.occurred_at or datetime.now(timezone.utc))]


def on_shop_redact(d: Delivery) -> list[ev.Event]:
    return [ev.PersonalDataErasure(whole_source=True,
                                   occurred_at=d.occurred_at or datetime.now(timezone.utc))]


HANDLERS: dict[str, Callable[[Delivery], list[ev.Event]]] = {
    "orders/paid": on_paid,
    "orders/create": on_created,
    "orders/cancelled": on_cancelled,
    "refunds/create": on_refund,
    "app/uninstalled": on_uninstalled,
    "customers/data_request": on_data_request,
    "customers/redact": on_customer_redact,
    "shop/redact": on_shop_redact,
}
WEBHOOK_TOPICS = ("orders/paid", "orders/cancelled", "refunds/create", "app/uninstalled")


def translate(delivery: Delivery) -> list[ev.Event]:
    handler = HANDLERS.get(delivery.topic)
    return handler(delivery) if handler and isinstance(delivery.payload, dict) else []
