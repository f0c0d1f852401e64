"""WooCommerce orders into the common model. Pure: no IO, no database, no SDK.

Every `order.*` webhook body is the whole order as the REST API (wc/v3) shows it, so one handler
reads the order's *state* and says what it means, whatever changed:

- `processing` / `completed` (paid): a `Sale` of the total without tax and shipping;
- every entry of `refunds` (several partial ones are common): a `Refund` with its own id;
- `refunded`: the `Sale` plus a whole-order `Refund`;
- `cancelled` / `failed` after the order was paid, `trash`, and topic `order.deleted`:
  `OrderCanceled`;
- `pending`, `on-hold`, `checkout-draft`, and `cancelled` / `failed` orders never paid: nothing.

The same order updated many times maps to the same events (same order id, same refund ids),
which core counts once.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core import events as ev
from core.connectors import Delivery
from core.money import Money, exponent, round_half_up

PAID = ("processing", "completed")
# WooCommerce lets a customer pay a `failed` order again, and a `pending` order cancelled by the
# stock-hold timeout can still be paid when a late payment notification arrives. Core treats a
# cancellation as final, so only orders that had been paid are cancelled (see `was_paid`).
CANCELLED = ("cancelled", "failed")
# Our own meta key first; `tp_click` (no underscore) is what the legacy API's `order_meta` shows.
CLICK_META = ("_tp_click", "tp_click")
# WooCommerce (8.5+) order attribution, `Internal/Traits/OrderAttributionMeta.php`: the session's
# landing page and UTM tags, as `_wc_order_attribution_<field>` meta.
ATTRIBUTION = "_wc_order_attribution_"
# UTM tags name channels ("google", "newsletter"): utm_source is read as a partner's ref only
# when the link says it is an affiliate link.
AFFILIATE_MEDIUMS = ("affiliate", "affiliates", "partner", "referral-partner", "touchpoint")
CLICK_ID = re.compile(r"[\w-]{1,64}", re.ASCII)  # what /r/ and t.js hand out


# --- reading the order ---------------------------------------------------------------------------

def utc(value: Any) -> datetime | None:
    """A WooCommerce date as an aware UTC datetime. The `*_gmt` fields are UTC without a zone;
    the legacy API's end in `Z`."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def money(value: Any, currency: str) -> Money:
    """A decimal string in the order's currency. A store set to show more decimals than the
    currency has (a USD store with 3) is rounded half-up to the minor unit, as its gateway
    charged."""
    if value is None or value == "":
        return Money(0, currency)
    try:
        return Money.parse(str(value), currency)
    except ValueError:
        try:
            dec = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not an amount: {value!r}") from None
        return Money(round_half_up(dec.scaleb(exponent(currency))), currency)


def legacy_order(order: Mapping[str, Any]) -> dict[str, Any]:
    """The legacy API's order (a webhook whose API version is "Legacy API v3", body `{"order":
    …}`) in the wc/v3 field names this module reads. It has no payment date and no refunds list:
    a paid order's sale is dated when it was created; status `refunded` still refunds it all."""
    created = order.get("created_at")
    paid = bool((order.get("payment_details") or {}).get("paid"))
    billing = order.get("billing_address") or {}
    meta = order.get("order_meta") or {}
    return {
        "id": order.get("id"),
        "status": order.get("status"),
        "currency": order.get("currency"),
        "total": order.get("total"),
        "total_tax": order.get("total_tax"),
        "shipping_total": order.get("total_shipping"),
        "customer_id": order.get("customer_id"),
        "billing": {"email": billing.get("email") or (order.get("customer") or {}).get("email")},
        "date_created_gmt": created,
        "date_modified_gmt": order.get("updated_at"),
        "date_paid_gmt": created if paid else None,
        "coupon_lines": order.get("coupon_lines") or [],
        "meta_data": [{"key": k, "value": v} for k, v in meta.items()]
        if isinstance(meta, dict) else [],
        "refunds": [],
    }


def order_of(payload: Any) -> dict[str, Any] | None:
    """The order in a delivery's payload: the wc/v3 object, or the legacy `{"order": …}`."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("order"), dict) and "id" not in payload:
        return legacy_order(payload["order"])
    return payload if payload.get("id") not in (None, "", 0) else None


def meta_value(order: Mapping[str, Any], key: str) -> str | None:
    for item in order.get("meta_data") or []:
        if isinstance(item, dict) and item.get("key") == key:
            value = item.get("value")
            if isinstance(value, (str, int)) and str(value).strip() not in ("", "(none)"):
                return str(value).strip()
    return None


def was_paid(order: Mapping[str, Any]) -> bool:
    """WooCommerce stamps `date_paid` when an order first reaches a paid status (orders completed
    by hand on old versions only have `date_completed`)."""
    return bool(order.get("date_paid_gmt") or order.get("date_completed_gmt"))


# --- referral evidence ---------------------------------------------------------------------------

def click_id(value: str | None) -> str | None:
    return value if value and CLICK_ID.fullmatch(value) else None


def from_attribution(order: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(click id, ref, evidence) from WooCommerce's own order attribution: the landing page of the
    session that ordered (`?tp_click=` from a Touchpoint link, `?ref=` / `?via=` from a direct
    partner link), else UTM tags of an affiliate link (`utm_medium=affiliate&utm_source=<ref>`)."""
    entry = meta_value(order, ATTRIBUTION + "session_entry")
    if entry:
        query = parse_qs(urlsplit(entry).query)
        click = click_id(next(iter(query.get("tp_click", [])), None))
        ref = next(iter(query.get("ref", []) + query.get("via", [])), "").strip() or None
        if click or ref:
            return click, ref, "order_attribution"
    medium = (meta_value(order, ATTRIBUTION + "utm_medium") or "").lower()
    source = meta_value(order, ATTRIBUTION + "utm_source")
    if medium in AFFILIATE_MEDIUMS and source:
        return None, source, "order_attribution_utm"
    return None, None, None


def referral(order: Mapping[str, Any]) -> ev.Referral:
    """Our `_tp_click` meta first (the PHP snippet in the README writes it), then WooCommerce's
    order attribution; coupon codes and the billing email always travel along."""
    email = ((order.get("billing") or {}).get("email") or "").strip() or None
    codes = tuple(str(c["code"]).strip() for c in order.get("coupon_lines") or []
                  if isinstance(c, dict) and str(c.get("code") or "").strip())
    for key in CLICK_META:
        click = click_id(meta_value(order, key))
        if click:
            return ev.Referral(click_id=click, promo_codes=codes, email=email, evidence="meta_data")
    click, ref, evidence = from_attribution(order)
    if evidence:
        return ev.Referral(click_id=click, ref=ref, promo_codes=codes, email=email,
                           evidence=evidence)
    return ev.Referral(promo_codes=codes, email=email, evidence="coupon_lines" if codes else None)


# --- events --------------------------------------------------------------------------------------

def when(order: Mapping[str, Any], delivery: Delivery) -> datetime:
    """When the order last changed. A deleted order's body is only `{"id": …}`: then the time the
    delivery was received, else now (core re-reads stored deliveries without their arrival time)."""
    return (utc(order.get("date_modified_gmt")) or delivery.occurred_at
            or utc(order.get("date_created_gmt")) or datetime.now(timezone.utc))


def sale(order: Mapping[str, Any], delivery: Delivery) -> ev.Sale:
    """Revenue = total - total_tax - shipping_total. `total` is after discounts and includes fees;
    `total_tax` includes the shipping tax, so both taxes go with it."""
    currency = str(order.get("currency") or "").upper()
    total = money(order.get("total"), currency)
    excluded = (money(order.get("total_tax"), currency)
                + money(order.get("shipping_total"), currency))
    amount = Money(max(0, total.amount - excluded.amount), currency)
    ref = referral(order)
    customer = order.get("customer_id")
    return ev.Sale(
        order_id=str(order["id"]), amount=amount,
        paid_total=total if total.amount > amount.amount else None,
        occurred_at=utc(order.get("date_paid_gmt")) or utc(order.get("date_created_gmt"))
        or when(order, delivery),
        customer_id=str(customer) if customer not in (None, "", 0, "0") else None,
        email=ref.email, referral=ref)


def refunds(order: Mapping[str, Any], delivery: Delivery) -> list[ev.Event]:
    """One `Refund` per entry of `refunds` (WooCommerce lists them with negative totals)."""
    currency = str(order.get("currency") or "").upper()
    out: list[ev.Event] = []
    for entry in order.get("refunds") or []:
        if not isinstance(entry, dict) or entry.get("id") in (None, ""):
            continue
        amount = money(str(entry.get("total") or "0").strip().lstrip("-"), currency)
        if amount.amount:
            out.append(ev.Refund(order_id=str(order["id"]), refund_id=str(entry["id"]),
                                 amount=amount, occurred_at=when(order, delivery)))
    return out


def order_events(delivery: Delivery) -> list[ev.Event]:
    order = order_of(delivery.payload)
    if order is None:
        return []
    order_id, status = str(order["id"]), order.get("status")
    if delivery.topic == "order.deleted" or status == "trash":
        return [ev.OrderCanceled(order_id=order_id, occurred_at=when(order, delivery))]
    if status in CANCELLED:
        if not was_paid(order):
            return []
        return [ev.OrderCanceled(order_id=order_id, occurred_at=when(order, delivery))]
    if status not in PAID and status != "refunded":
        # pending / on-hold / checkout-draft: not paid yet. The click stays in the order's meta
        # and arrives with the paid order; an Identify here would only add rows for abandoned
        # checkouts (the block checkout keeps a draft order for every cart).
        return []
    out: list[ev.Event] = [sale(order, delivery), *refunds(order, delivery)]
    if status == "refunded":
        out.append(ev.Refund(order_id=order_id, refund_id="status-refunded", amount=None,
                             occurred_at=when(order, delivery)))
    return out


HANDLERS: dict[str, Callable[[Delivery], list[ev.Event]]] = {
    "order.created": order_events,
    "order.updated": order_events,
    "order.restored": order_events,
    "order.deleted": order_events,
}


def translate(delivery: Delivery) -> list[ev.Event]:
    """Unknown topics (the creation `ping`, coupons, products, `action.*`) give []."""
    handler = HANDLERS.get(delivery.topic)
    return handler(delivery) if handler else []
