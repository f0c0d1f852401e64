"""Shopify orders, refunds, uninstalls and privacy requests into the common model. Pure: no IO.

Money is read in the SHOP's currency (`*_set.shop_money`, else the plain field with the order's
`currency`, which in the Admin API is the shop's): a Shopify program counts in its shop's
currency whatever currency the customer saw, so `amount_in_program_currency` stays None.

- Revenue (`Sale.amount`) is the ORIGINAL `subtotal_price`: line items after every discount,
  before shipping, taxes, duties and tips. Not `current_subtotal_price`: that one already has
  refunded and removed items taken out, and those refunds arrive as `refunds/create` too (and
  with the order in a backfill), so using it would count them twice.
- Where prices include tax (`taxes_included`, usual in the EU), the subtotal holds the items'
  tax: `total_tax` minus the shipping lines' tax is taken out of it.
- `Sale.paid_total` is `total_price` (items, shipping, tax, duties, tips): the figure refund
  transactions are measured against, so core reverses commission in proportion.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.shopify.webhooks import triggered_at, utc
from core import events as ev
from core.connectors import Delivery, header_map
from core.money import Money

CLICK_KEY = "tp_click"  # the cart attribute set by t.js, and the short links' query key
REF_KEYS = ("ref", "via")  # the contract's referral-link keys
PAID = "paid"
# Orders that were paid at some point (a refund does not undo the payment it refunds).
WAS_PAID = ("paid", "partially_refunded", "refunded")
WEBHOOK_TOPICS = ("orders/paid", "orders/cancelled", "refunds/create", "app/uninstalled")

Handler = Callable[[Delivery], list[ev.Event]]


# --- small readers --------------------------------------------------------------------------------

def _time(value: Any) -> datetime | None:
    """A Shopify timestamp ("2024-04-02T08:59:11-05:00") as aware UTC; None when absent."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return utc(parsed)


def _when(d: Delivery, *candidates: Any) -> datetime:
    """The first timestamp the payload gives, else `X-Shopify-Triggered-At`, else now (uninstall
    and privacy bodies carry no time, and a backfilled delivery has no headers)."""
    for value in candidates:
        parsed = _time(value)
        if parsed is not None:
            return parsed
    return d.occurred_at or triggered_at(header_map(d.headers)) or datetime.now(timezone.utc)


def _set_money(obj: dict[str, Any], field: str) -> Money | None:
    """`<field>_set.shop_money` as Money, when the payload has it."""
    shop = ((obj.get(f"{field}_set") or {}).get("shop_money")) or {}
    if shop.get("amount") is None or not shop.get("currency_code"):
        return None
    return Money.parse(str(shop["amount"]), shop["currency_code"])


def _shop_money(order: dict[str, Any], field: str) -> Money:
    """An order amount in shop money: the `_set` form, else the plain field (shop currency)."""
    money = _set_money(order, field)
    if money is not None:
        return money
    if order.get(field) is None or not order.get("currency"):
        raise ValueError(f"the order has no {field} (or no currency)")
    return Money.parse(str(order[field]), order["currency"])


def _sum(items: Iterable[Money], currency: str) -> Money:
    total = Money(0, currency)
    for item in items:
        total = total + item
    return total


def _clamp(money: Money) -> Money:
    return money if money.amount >= 0 else Money(0, money.currency)


def _first(query: dict[str, list[str]], keys: Iterable[str]) -> str | None:
    for key in keys:
        for value in query.get(key) or []:
            if value.strip():
                return value.strip()
    return None


def url_query(url: Any) -> dict[str, list[str]]:
    """The query of a landing page, absolute ("https://shop/?ref=a") or not ("/?ref=a")."""
    return parse_qs(urlsplit(url).query) if isinstance(url, str) and url else {}


# --- orders ---------------------------------------------------------------------------------------

def referral(order: dict[str, Any]) -> ev.Referral:
    """The order's referral evidence. `evidence` names the strongest source present: the cart
    attribute `tp_click` set by the storefront script (`note_attributes`), then the landing
    page's query (`tp_click`, `ref`, `via`), then discount codes. Every hint found is kept."""
    codes = tuple(str(c["code"]) for c in order.get("discount_codes") or []
                  if isinstance(c, dict) and c.get("code"))
    note_click = next((str(a["value"]).strip() for a in order.get("note_attributes") or []
                       if isinstance(a, dict) and a.get("name") == CLICK_KEY
                       and str(a.get("value") or "").strip()), None)
    query = url_query(order.get("landing_site"))
    landing_click, ref = _first(query, (CLICK_KEY,)), _first(query, REF_KEYS)
    evidence = ("note_attributes" if note_click else "landing_site" if landing_click or ref
                else "discount_codes" if codes else None)
    return ev.Referral(click_id=note_click or landing_click, ref=ref, promo_codes=codes,
                       email=_email(order), evidence=evidence)


def _email(order: dict[str, Any]) -> str | None:
    customer = order.get("customer") or {}
    return order.get("email") or order.get("contact_email") or customer.get("email") or None


def revenue(order: dict[str, Any]) -> Money:
    """Subtotal after discounts, without shipping and tax (see the module docstring)."""
    subtotal = _shop_money(order, "subtotal_price")
    if order.get("taxes_included"):
        shipping_tax = _sum((_tax_line(t, subtotal.currency)
                             for line in order.get("shipping_lines") or []
                             for t in line.get("tax_lines") or []), subtotal.currency)
        items_tax = _clamp(_shop_money(order, "total_tax") - shipping_tax)
        subtotal = subtotal - items_tax
    return _clamp(subtotal)


def _tax_line(tax: dict[str, Any], currency: str) -> Money:
    return _set_money(tax, "price") or Money.parse(str(tax.get("price") or "0"), currency)


def sale(order: dict[str, Any]) -> ev.Sale:
    amount = revenue(order)
    total = _shop_money(order, "total_price")
    customer = order.get("customer") or {}
    return ev.Sale(
        order_id=str(order["id"]), amount=amount,
        paid_total=total if total.amount >= amount.amount else amount,
        occurred_at=_time(order.get("processed_at")) or _time(order.get("created_at"))
        or datetime.now(timezone.utc),
        customer_id=str(customer["id"]) if customer.get("id") else None,
        email=_email(order), referral=referral(order))


def on_paid(d: Delivery) -> list[ev.Event]:
    return [sale(d.payload)]


def on_created(d: Delivery) -> list[ev.Event]:
    """`orders/create` counts only for an order paid at creation; `orders/paid` follows it
    anyway, and core merges both into one conversion by order id."""
    return [sale(d.payload)] if d.payload.get("financial_status") == PAID else []


def on_cancelled(d: Delivery) -> list[ev.Event]:
    return [ev.OrderCanceled(order_id=str(d.payload["id"]),
                             occurred_at=_when(d, d.payload.get("cancelled_at")))]


# --- refunds --------------------------------------------------------------------------------------

def _refund_shop_currency(refund: dict[str, Any]) -> str | None:
    """The shop's currency, from any shop-money figure of the refund."""
    candidates = [refund, *(refund.get("refund_line_items") or []),
                  *(refund.get("order_adjustments") or [])]
    for obj in candidates:
        for key, value in obj.items():
            if key.endswith("_set") and isinstance(value, dict):
                code = (value.get("shop_money") or {}).get("currency_code")
                if code:
                    return str(code)
    return None


def refund_amount(refund: dict[str, Any]) -> Money | None:
    """What went back to the customer, in shop money; None when nothing did.

    The successful `refund` transactions are the truth (they include refunded shipping and tax,
    like `total_price` does). They are in the currency the customer paid in; when that is not
    the shop's, or the payload has no `transactions` at all, the refund is rebuilt in shop money
    from its line items (subtotal + tax) and shipping refunds (`order_adjustments`). A refund
    whose transactions are all failed or pending moved no money yet: nothing."""
    shop_currency = _refund_shop_currency(refund)
    if "transactions" in refund:
        done = [t for t in refund.get("transactions") or []
                if t.get("kind") == "refund" and t.get("status") == "success"]
        if not done:
            return None
        currencies = {t.get("currency") or shop_currency for t in done}
        if len(currencies) == 1 and None not in currencies and \
                (shop_currency is None or currencies == {shop_currency}):
            currency = currencies.pop()
            total = sum((Decimal(str(t["amount"])) for t in done), Decimal(0))
            return Money.parse(total, currency) if total > 0 else None
    if shop_currency is None:
        return None
    return _line_items_refund(refund, shop_currency)


def _line_items_refund(refund: dict[str, Any], currency: str) -> Money | None:
    parts: list[Money] = []
    for line in refund.get("refund_line_items") or []:
        parts += [m for m in (_set_money(line, "subtotal"), _set_money(line, "total_tax")) if m]
    for adj in refund.get("order_adjustments") or []:
        money = _set_money(adj, "amount")
        if adj.get("kind") == "shipping_refund" and money is not None:
            parts.append(Money(-money.amount, money.currency))  # refunded shipping is negative
    total = _sum(parts, currency)
    return total if total.amount > 0 else None


def on_refund(d: Delivery) -> list[ev.Event]:
    refund = d.payload
    amount = refund_amount(refund)
    if amount is None:  # never a Refund with amount None: that means "the whole order"
        return []
    return [ev.Refund(order_id=str(refund["order_id"]), refund_id=str(refund["id"]), amount=amount,
                      occurred_at=_when(d, refund.get("processed_at"), refund.get("created_at")))]


# --- the app and privacy --------------------------------------------------------------------------

def on_uninstalled(d: Delivery) -> list[ev.Event]:
    return [ev.SourceDisconnected(occurred_at=_when(d))]


def _customer(payload: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    c = payload.get("customer") or {}
    return ((str(c["id"]),) if c.get("id") else (), (str(c["email"]),) if c.get("email") else ())


def on_data_request(d: Delivery) -> list[ev.Event]:
    ids, emails = _customer(d.payload)
    request_id = (d.payload.get("data_request") or {}).get("id")
    return [ev.PersonalDataRequest(request_id=str(request_id or d.delivery_id), customer_ids=ids,
                                   emails=emails, occurred_at=_when(d))]


def on_customer_redact(d: Delivery) -> list[ev.Event]:
    ids, emails = _customer(d.payload)
    return [ev.PersonalDataErasure(customer_ids=ids, emails=emails, occurred_at=_when(d))]


def on_shop_redact(d: Delivery) -> list[ev.Event]:
    return [ev.PersonalDataErasure(whole_source=True, occurred_at=_when(d))]


HANDLERS: dict[str, Handler] = {
    "orders/paid": on_paid,
    "orders/create": on_created,
    "orders/cancelled": on_cancelled,
    "refunds/create": on_refund,
    "app/uninstalled": on_uninstalled,
    "customers/data_request": on_data_request,
    "customers/redact": on_customer_redact,
    "shop/redact": on_shop_redact,
}


def translate(delivery: Delivery) -> list[ev.Event]:
    """The events of one delivery; [] for a topic we do not use."""
    handler = HANDLERS.get(delivery.topic)
    return handler(delivery) if handler and isinstance(delivery.payload, dict) else []
