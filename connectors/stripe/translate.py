"""Stripe events to Touchpoint's common model: a pure mapping, no IO.

A delivery's payload is a Stripe `event`; its `data.object` is the object the event is about.
Two API shapes reach us, because a webhook endpoint and the events list render objects in the
account's (or endpoint's) API version:

- before 2025-03 (fixtures `*.2024-08.json`): `invoice.charge`, `invoice.payment_intent`,
  `invoice.subscription` and `charge.invoice` exist;
- from 2025-03 on: an invoice names its payments only in `invoice.payments` (an includable list,
  absent unless expanded) and its subscription in `parent.subscription_details.subscription`; a
  charge no longer names its invoice. The link comes in its own event, `invoice_payment.paid`
  (an InvoicePayment naming the invoice and its payment intent or charge), which becomes an
  `Identify` carrying those ids as aliases of the invoice's sale.

Every handler reads both, so the same payment gets the same `order_id` whatever the version.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from core.connectors import Delivery
from core.events import (
    NO_REFERRAL,
    Chargeback,
    ChargebackStatus,
    Event,
    Identify,
    Referral,
    Refund,
    Sale,
    SubscriptionCanceled,
)
from core.money import Money, exponent, round_half_up

Payload = Mapping[str, Any]

# Stripe's own minor units (docs.stripe.com/currencies): these are zero-decimal in the API, the
# three-decimal ones below use three, every other currency two (ISK too, "for backwards
# compatibility", although ISO gives it none). Core's Money follows ISO 4217, so we convert.
STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())

# An invoice with one of these reasons is not a later payment of a subscription: the first one
# (`subscription_create`, or `quote_accept` when an accepted quote starts the subscription) or a
# one-off invoice (`manual`). Everything else on a subscription (`subscription_cycle`,
# `subscription_update` prorations, `subscription_threshold`, ...) is a renewal.
FIRST_PAYMENT_REASONS = frozenset({"subscription_create", "quote_accept", "manual"})

DISPUTE_WON = frozenset({"won", "warning_closed"})


# --- small readers --------------------------------------------------------------------------------

def stripe_money(amount: int, currency: str) -> Money:
    """Stripe's integer amount in Stripe's minor unit as Money in ISO minor units."""
    code = currency.upper()
    if code in STRIPE_ZERO_DECIMAL:
        stripe_exp = 0
    elif code in STRIPE_THREE_DECIMAL:
        stripe_exp = 3
    else:
        stripe_exp = 2
    shift = exponent(code) - stripe_exp
    if shift == 0:
        return Money(int(amount), code)
    return Money(round_half_up(Decimal(int(amount)).scaleb(shift)), code)


def obj_id(value: Any) -> str | None:
    """An expandable field: the id string, or the expanded object's `id`."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) and found else None
    return None


def unique(values: Iterable[str | None], *, without: Iterable[str | None] = ()) -> tuple[str, ...]:
    """Values in order, without None, duplicates or the ones in `without`."""
    skip = {v for v in without if v}
    out: list[str] = []
    for v in values:
        if v and v not in skip and v not in out:
            out.append(v)
    return tuple(out)


def event_time(payload: Payload) -> datetime:
    """The event's `created` (Unix seconds) as an aware UTC datetime."""
    return timestamp(payload["created"])


def timestamp(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


def data_object(payload: Payload) -> Payload:
    obj = (payload.get("data") or {}).get("object")
    return obj if isinstance(obj, Mapping) else {}


def metadata(obj: Payload) -> Mapping[str, str]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def promotion_code(value: Any) -> str | None:
    """A promotion code as a partner would have registered it: the customer-facing `code` when the
    object is expanded, else its `promo_...` id (all a webhook carries)."""
    if isinstance(value, Mapping):
        code = value.get("code")
        return code if isinstance(code, str) and code else obj_id(value)
    return obj_id(value)


def discount_codes(discounts: Any) -> list[str | None]:
    """Promotion codes from a `discounts` list. Items are Checkout's `{coupon, promotion_code}`,
    Discount objects (`promotion_code` inside), or bare ids. A bare `di_...` id is a discount, not
    a code, so only bare `promo_...` ids count."""
    codes: list[str | None] = []
    for item in discounts if isinstance(discounts, list) else ():
        if isinstance(item, Mapping):
            codes.append(promotion_code(item.get("promotion_code")))
        elif isinstance(item, str) and item.startswith("promo_"):
            codes.append(item)
    return codes


def referral_from(obj: Payload, *, click: tuple[str | None, str] = (None, ""),
                  codes: Iterable[str | None] = ()) -> Referral:
    """Merge the hints of one object. `click` is (click id, where it was found)."""
    meta = metadata(obj)
    click_id, evidence = click
    ref = meta.get("tp_ref") or meta.get("tp_partner") or None
    promo = unique(codes)
    if not evidence:
        evidence = "metadata.tp_ref" if ref else ("promotion_code" if promo else "")
    referral = Referral(click_id=click_id or None, ref=ref, promo_codes=promo,
                        evidence=evidence or None)
    return NO_REFERRAL if referral.is_empty() else referral


# --- checkout sessions ----------------------------------------------------------------------------

def metadata_click(obj: Payload) -> tuple[str | None, str]:
    click = metadata(obj).get("tp_click")
    return (click, "metadata.tp_click") if click else (None, "")


def session_click(session: Payload) -> tuple[str | None, str]:
    """The click id the storefront handed to Checkout. `metadata.tp_click` is set on purpose by the
    merchant's server, so it wins over `client_reference_id`, which some merchants use for their
    own user ids; the script puts the click id in `client_reference_id` on Payment Links."""
    if metadata(session).get("tp_click"):
        return metadata_click(session)
    ref_id = session.get("client_reference_id")
    if ref_id:
        return ref_id, "client_reference_id"
    return None, ""


def session_codes(session: Payload) -> list[str | None]:
    codes = discount_codes(session.get("discounts"))
    breakdown = (session.get("total_details") or {}).get("breakdown") or {}
    for entry in breakdown.get("discounts") or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("discount"), Mapping):
            codes.append(promotion_code(entry["discount"].get("promotion_code")))
    return codes


def on_checkout_session(payload: Payload) -> list[Event]:
    """A paid one-time Checkout is the sale. A subscription Checkout only ties the referral to the
    customer and subscription: its first invoice is the sale, so the payment counts once."""
    session = data_object(payload)
    at = event_time(payload)
    referral = referral_from(session, click=session_click(session), codes=session_codes(session))
    email = (session.get("customer_details") or {}).get("email") or session.get("customer_email")
    customer = obj_id(session.get("customer"))
    mode = session.get("mode")
    if mode == "subscription" or (mode == "setup" and not referral.is_empty()):
        if referral.is_empty() and not customer:
            return []
        return [Identify(occurred_at=at, customer_id=customer, email=email, referral=referral,
                         subscription_id=obj_id(session.get("subscription")),
                         order_id=obj_id(session.get("invoice")))]
    if mode != "payment" or session.get("payment_status") != "paid":
        return []  # unpaid: `checkout.session.async_payment_succeeded` brings the sale later
    total, currency = session.get("amount_total"), session.get("currency")
    if total is None or not currency:
        return []
    details = session.get("total_details") or {}
    net = total - (details.get("amount_tax") or 0) - (details.get("amount_shipping") or 0)
    payment_intent = obj_id(session.get("payment_intent"))
    order_id = payment_intent or session["id"]
    # The session's own invoice (invoice_creation) gets an `invoice.paid` too: naming it here
    # makes that invoice the same payment, whichever arrives first.
    aliases = unique((session["id"], payment_intent, obj_id(session.get("invoice"))),
                     without=(order_id,))
    return [Sale(order_id=order_id, amount=stripe_money(max(net, 0), currency),
                 paid_total=stripe_money(total, currency), occurred_at=at, customer_id=customer,
                 email=email, referral=referral, aliases=aliases)]


# --- invoices -------------------------------------------------------------------------------------

def invoice_subscription(invoice: Payload) -> str | None:
    """Old shape: `invoice.subscription`; new shape: `parent.subscription_details.subscription`."""
    found = obj_id(invoice.get("subscription"))
    if found:
        return found
    parent = invoice.get("parent") or {}
    return obj_id((parent.get("subscription_details") or {}).get("subscription"))


def invoice_payment_ids(invoice: Payload) -> list[str | None]:
    """Charge and payment intent ids: `invoice.charge`/`payment_intent` in the old shape,
    `invoice.payments.data[].payment` in the new one (present when the list was included)."""
    ids = [obj_id(invoice.get("charge")), obj_id(invoice.get("payment_intent"))]
    payments = invoice.get("payments")
    rows = payments.get("data") if isinstance(payments, Mapping) else None
    for item in rows or ():
        payment = item.get("payment") if isinstance(item, Mapping) else None
        if isinstance(payment, Mapping):
            ids += [obj_id(payment.get("charge")), obj_id(payment.get("payment_intent"))]
    return ids


def invoice_tax(invoice: Payload) -> int:
    """Tax on an invoice: `tax` (old), else the sum of `total_taxes` (new) or
    `total_tax_amounts` (old), inclusive taxes included as they are inside `total` too."""
    if isinstance(invoice.get("tax"), int):
        return int(invoice["tax"])
    for key in ("total_taxes", "total_tax_amounts"):
        rows = invoice.get(key)
        if rows:
            return sum(int(r.get("amount") or 0) for r in rows if isinstance(r, Mapping))
    return 0


def invoice_revenue(invoice: Payload) -> int:
    """After discounts, without tax and shipping."""
    if isinstance(invoice.get("total_excluding_tax"), int):
        net = int(invoice["total_excluding_tax"])
    else:
        net = int(invoice.get("total") or 0) - invoice_tax(invoice)
    shipping = invoice.get("amount_shipping")
    return max(net - (shipping if isinstance(shipping, int) else 0), 0)


def invoice_codes(invoice: Payload) -> list[str | None]:
    codes = discount_codes(invoice.get("discounts"))
    legacy = invoice.get("discount")  # old shape: one Discount object
    if isinstance(legacy, Mapping):
        codes.append(promotion_code(legacy.get("promotion_code")))
    return codes


def on_invoice_paid(payload: Payload) -> list[Event]:
    """Each paid invoice is one payment; `invoice.paid` and `invoice.payment_succeeded` name the
    same invoice, so core sees one order. Trials ($0 invoices) are not sales."""
    invoice = data_object(payload)
    paid, currency = invoice.get("amount_paid") or 0, invoice.get("currency")
    if paid <= 0 or not currency:
        return []
    subscription = invoice_subscription(invoice)
    reason = invoice.get("billing_reason")
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
    return [Sale(
        order_id=invoice["id"],
        amount=stripe_money(invoice_revenue(invoice), currency),
        paid_total=stripe_money(paid, currency),
        occurred_at=timestamp(paid_at) if paid_at else event_time(payload),
        customer_id=obj_id(invoice.get("customer")),
        email=invoice.get("customer_email"),
        referral=referral_from(invoice, click=metadata_click(invoice),
                               codes=invoice_codes(invoice)),
        subscription_id=subscription,
        renewal=bool(subscription) and reason is not None and reason not in FIRST_PAYMENT_REASONS,
        aliases=unique(invoice_payment_ids(invoice), without=(invoice["id"],)),
    )]


def on_invoice_payment_paid(payload: Payload) -> list[Event]:
    """Current API versions: the only notice that ties an invoice to its payment intent (or, for a
    charge without one, the charge). Refunds and disputes name those, so this tells core they are
    ids of the invoice's sale, whether the sale, the refund or this arrives first."""
    payment = data_object(payload)
    invoice = obj_id(payment.get("invoice"))
    if not invoice:
        return []
    inner = payment.get("payment")
    inner = inner if isinstance(inner, Mapping) else {}
    aliases = unique((obj_id(inner.get("payment_intent")), obj_id(inner.get("charge"))),
                     without=(invoice,))
    if not aliases:
        return []  # e.g. a payment record (paid outside Stripe): nothing will name it
    paid_at = (payment.get("status_transitions") or {}).get("paid_at")
    return [Identify(order_id=invoice, aliases=aliases,
                     occurred_at=timestamp(paid_at) if paid_at else event_time(payload))]


# --- customers, refunds, disputes, subscriptions --------------------------------------------------

def on_customer(payload: Payload) -> list[Event]:
    """Customer metadata `tp_click`/`tp_partner`, set by the merchant's server or our write-back."""
    customer = data_object(payload)
    meta = metadata(customer)
    click, partner = meta.get("tp_click") or None, meta.get("tp_partner") or None
    if not (click or partner):
        return []
    referral = Referral(click_id=click, ref=partner, evidence="customer.metadata")
    return [Identify(occurred_at=event_time(payload), customer_id=customer["id"],
                     email=customer.get("email"), referral=referral)]


def charge_order_id(charge: Payload) -> str:
    """The id the sale is known by: its invoice where the old shape names it, else the payment
    intent (a Sale's alias), else the charge itself (also an alias)."""
    return (obj_id(charge.get("invoice")) or obj_id(charge.get("payment_intent"))
            or charge["id"])


def on_charge_refunded(payload: Payload) -> list[Event]:
    """`amount_refunded` is Stripe's running total for the charge, hence cumulative."""
    charge = data_object(payload)
    return [Refund(order_id=charge_order_id(charge), occurred_at=event_time(payload),
                   amount=stripe_money(charge.get("amount_refunded") or 0, charge["currency"]),
                   cumulative=True)]


def dispute_event(status: ChargebackStatus | None) -> Callable[[Payload], list[Event]]:
    """A handler for one dispute event; None means the outcome is read from `dispute.status`."""

    def handle(payload: Payload) -> list[Event]:
        dispute = data_object(payload)
        outcome: ChargebackStatus = status or (
            "won" if dispute.get("status") in DISPUTE_WON else "lost")
        order = obj_id(dispute.get("payment_intent")) or obj_id(dispute.get("charge"))
        if not order:
            return []
        amount = dispute.get("amount")
        return [Chargeback(order_id=order, dispute_id=dispute["id"], status=outcome,
                           occurred_at=event_time(payload),
                           amount=stripe_money(amount, dispute["currency"])
                           if isinstance(amount, int) and dispute.get("currency") else None)]

    return handle


def on_subscription_deleted(payload: Payload) -> list[Event]:
    sub = data_object(payload)
    when = sub.get("canceled_at") or sub.get("ended_at")
    return [SubscriptionCanceled(subscription_id=sub["id"],
                                 occurred_at=timestamp(when) if when else event_time(payload))]


HANDLERS: dict[str, Callable[[Payload], list[Event]]] = {
    "checkout.session.completed": on_checkout_session,
    "checkout.session.async_payment_succeeded": on_checkout_session,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_succeeded": on_invoice_paid,
    "invoice_payment.paid": on_invoice_payment_paid,
    "customer.created": on_customer,
    "customer.updated": on_customer,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": dispute_event("open"),
    "charge.dispute.closed": dispute_event(None),
    "charge.dispute.funds_reinstated": dispute_event("won"),
    "customer.subscription.deleted": on_subscription_deleted,
}

#: What the webhook endpoint subscribes to and backfill lists (Stripe allows 20 `types`).
EVENT_TYPES: tuple[str, ...] = tuple(HANDLERS)


def translate(delivery: Delivery) -> list[Event]:
    """The events of one Stripe delivery; unknown types give []."""
    payload = delivery.payload
    if not isinstance(payload, Mapping):
        return []
    handler = HANDLERS.get(delivery.topic)
    return handler(payload) if handler else []
