"""WooCommerce orders into the common model. Pure: no IO.

An order is a sale once paid (`processing` or `completed`); revenue is the total without tax
and shipping; each entry of `refunds` is one refund (several partial ones are common), status
`refunded` refunds the rest; `cancelled`, `failed` and deletion reverse it. The same order
updated many times maps to the same events, which core counts once.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core import events as ev
from core.connectors import Delivery
from core.money import Money

PAID = ("processing", "completed")
REVERSED = ("cancelled", "failed", "trash")
CLICK_META = ("_tp_click", "tp_click")
# WooCommerce's own order attribution (8.5+) keeps the session's entry page and UTM tags.
ATTRIBUTION_URL_META = ("_wc_order_attribution_session_entry", "_wc_order_attribution_referrer")


def _time(value: str | None) -> datetime | None:
    """WooCommerce's `*_gmt` fields are UTC without a zone."""
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def _order(delivery: Delivery) -> dict[str, Any] | None:
    payload = delivery.payload
    if isinstance(payload, dict) and isinstance(payload.get("order"), dict):
        return payload["order"]  # the legacy v1/v2 webhook format wraps the order
    return payload if isinstance(payload, dict) and "id" in payload else None


def _meta(order: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for item in order.get("meta_data") or []:
        if item.get("key") in keys and isinstance(item.get("value"), str) and item["value"].strip():
            return item["value"].strip()
    return None


def referral(order: dict[str, Any]) -> ev.Referral:
    email = ((order.get("billing") or {}).get("email") or "").strip() or None
    codes = tuple(c["code"] for c in order.get("coupon_lines") or [] if c.get("code"))
    click = _meta(order, CLICK_META)
    if click:
        return ev.Referral(click_id=click, promo_codes=codes, email=email, evidence="meta_data")
    entry = _meta(order, ATTRIBUTION_URL_META)
    if entry:
        query = parse_qs(urlsplit(entry).query)
        click = (query.get("tp_click") or [None])[0]
        ref = (query.get("ref") or query.get("via") or [None])[0]
        if click or ref:
            return ev.Referral(click_id=click, ref=ref, promo_codes=codes, email=email,
                               evidence="order_attribution")
    return ev.Referral(promo_codes=codes, email=email, evidence="coupon_lines" if codes else None)


def _sale(order: dict[str, Any], currency: str) -> ev.Sale:
    total = Money.parse(order["total"], currency)
    tax = Money.parse(order.get("total_tax") or "0", currency)
    shipping = Money.parse(order.get("shipping_total") or "0", currency)
    ref = referral(order)
    when = _time(order.get("date_paid_gmt")) or _time(order.get("date_created_gmt"))
    return ev.Sale(order_id=str(order["id"]), amount=total - tax - shipping, paid_total=total,
                   occurred_at=when or datetime.now(timezone.utc),
                   customer_id=str(order["customer_id"]) if order.get("customer_id") else None,
                   email=ref.email, referral=ref)


def order_events(delivery: Delivery) -> list[ev.Event]:
    order = _order(delivery)
    if order is None:
        return []
    order_id = str(order["id"])
    status = order.get("status")
    currency = (order.get("currency") or "").upper()
    modified = _time(order.get("date_modified_gmt")) or datetime.now(timezone.utc)
    if delivery.topic == "order.deleted" or status in REVERSED:
        return [ev.OrderCanceled(order_id=order_id, occurred_at=modified)]
    if status not in PAID and status != "refunded":
        return []
    out: list[ev.Event] = [_sale(order, currency)]
    for refund in order.get("refunds") or []:
        amount = Money.parse(str(refund.get("total", "0")).lstrip("-"), currency)
        if amount.amount:
            out.append(ev.Refund(order_id=order_id, refund_id=str(refund["id"]), amount=amount,
                                 occurred_at=modified))
    if status == "refunded":
        out.append(ev.Refund(order_id=order_id, refund_id="status-refunded", amount=None,
                             occurred_at=modified))
    return out


HANDLERS: dict[str, Callable[[Delivery], list[ev.Event]]] = {
    "order.created": order_events,
    "order.updated": order_events,
    "order.restored": order_events,
    "order.deleted": order_events,
}


def translate(delivery: Delivery) -> list[ev.Event]:
    handler = HANDLERS.get(delivery.topic)
    return handler(delivery) if handler else []
