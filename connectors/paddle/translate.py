"""Paddle Billing notifications -> Touchpoint's common events. Pure: no IO, no SDK calls.

The payload is a whole notification body (`event_id`, `event_type`, `occurred_at`, `data`), as the
webhook sends it and as `client.fetch_history` rebuilds it from the API. Paddle sends every amount
as a string of minor units ("65215" is 652.15 USD), so amounts become `Money` without parsing
decimals.

Totals of a transaction (`data.details.totals`): `subtotal` before discount and tax, `discount`,
`tax`, `total` = subtotal - discount + tax, and `grand_total` = total less credit applied from the
customer's balance. Revenue is `total - tax` (after discount, without tax); the refund basis is
`total`, because refund adjustments (`totals.total`) are computed on the same tax-inclusive items.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from connectors.paddle.constants import (
    ADJUSTMENT_APPROVED,
    CLICK_KEY,
    REF_KEY,
    REFUND_ACTIONS,
    RENEWAL_ORIGINS,
)
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
from core.money import Money

Data = Mapping[str, Any]
Handler = Callable[[Data, datetime], list[Event]]

# Adjustment actions that are a dispute, and what each says about it. A chargeback warning is an
# issuer's fraud report before the dispute: commission is held back (open) until it is won.
CHARGEBACK_STATUS: dict[str, ChargebackStatus] = {
    "chargeback_warning": "open",
    "chargeback": "lost",
    "chargeback_reverse": "won",
}


def parse_time(value: object) -> datetime | None:
    """Paddle's RFC 3339 timestamps ("2024-04-12T10:18:49.738971Z") as aware UTC datetimes."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def translate(delivery: Delivery) -> list[Event]:
    """One notification -> events. Unknown topics, and bodies that are not notifications, -> []."""
    handler = HANDLERS.get(delivery.topic)
    payload = delivery.payload
    if handler is None or not isinstance(payload, Mapping):
        return []
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return []
    # A delivery rebuilt from the inbox has no occurred_at of its own: the body has it.
    when = delivery.occurred_at or parse_time(payload.get("occurred_at"))
    if when is None:
        raise ValueError(f"notification {delivery.delivery_id} has no valid occurred_at")
    return handler(data, when)


# --- referral hints ------------------------------------------------------------------------------

def _text(value: object) -> str | None:
    """A non-empty stripped string, or None (custom_data is free-form JSON)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _custom_referral(custom_data: object) -> Referral:
    """The click id and partner ref the checkout put in `customData`."""
    if not isinstance(custom_data, Mapping):
        return NO_REFERRAL
    click, ref = _text(custom_data.get(CLICK_KEY)), _text(custom_data.get(REF_KEY))
    if not (click or ref):
        return NO_REFERRAL
    return Referral(click_id=click, ref=ref, evidence="custom_data")


def _transaction_referral(data: Data) -> Referral:
    """custom_data hints plus the discount id: a merchant may register a partner's Paddle
    discount by its id; `client.lookup_referral` turns the id into the code when it is not."""
    found = _custom_referral(data.get("custom_data"))
    discount_id = _text(data.get("discount_id"))
    if discount_id is None:
        return found
    return Referral(click_id=found.click_id, ref=found.ref, promo_codes=(discount_id,),
                    evidence=found.evidence or "discount")


# --- transactions --------------------------------------------------------------------------------

def _minor(totals: Data, key: str) -> int:
    """A totals field (a string of minor units) as an int; missing or null counts as 0."""
    value = totals.get(key)
    return 0 if value is None else int(value)


def _paid_at(data: Data, when: datetime) -> datetime:
    """When the money moved, the same for `transaction.paid` and `transaction.completed`."""
    for payment in data.get("payments") or ():
        if isinstance(payment, Mapping) and payment.get("status") == "captured":
            captured = parse_time(payment.get("captured_at"))
            if captured is not None:
                return captured
    return parse_time(data.get("billed_at")) or when


def _transaction(data: Data, when: datetime) -> list[Event]:
    """`transaction.paid` and `transaction.completed` -> the same Sale (same order id), so core
    counts the transaction once whichever arrives first. Zero totals (trials, card changes) are
    no sale; their referral hints still identify the customer and subscription."""
    totals = data["details"]["totals"]
    currency = str(data.get("currency_code") or totals["currency_code"])
    total = _minor(totals, "total") if totals.get("total") is not None \
        else _minor(totals, "grand_total")
    revenue = total - _minor(totals, "tax")
    referral = _transaction_referral(data)
    if total == 0:
        return _identify(data.get("customer_id"), data.get("subscription_id"), referral, when,
                         order_id=data.get("id"))
    return [Sale(
        order_id=str(data["id"]),
        amount=Money(revenue, currency),
        paid_total=Money(total, currency),
        occurred_at=_paid_at(data, when),
        customer_id=_text(data.get("customer_id")),
        referral=referral,
        subscription_id=_text(data.get("subscription_id")),
        renewal=data.get("origin") in RENEWAL_ORIGINS,
    )]


# --- subscriptions and customers -----------------------------------------------------------------

def _identify(customer_id: object, subscription_id: object, referral: Referral, when: datetime,
              *, order_id: object = None, email: object = None) -> list[Event]:
    """An Identify only when there is a click id or ref to tie (a bare discount id is not)."""
    if not (referral.click_id or referral.ref):
        return []
    return [Identify(occurred_at=when, customer_id=_text(customer_id), email=_text(email),
                     referral=Referral(click_id=referral.click_id, ref=referral.ref,
                                       evidence=referral.evidence),
                     subscription_id=_text(subscription_id), order_id=_text(order_id))]


def _subscription(data: Data, when: datetime) -> list[Event]:
    """created / activated / updated: the checkout's customData is copied onto the subscription;
    `subscription.created` also names its first transaction."""
    return _identify(data.get("customer_id"), data.get("id"),
                     _custom_referral(data.get("custom_data")), when,
                     order_id=data.get("transaction_id"))


def _subscription_canceled(data: Data, when: datetime) -> list[Event]:
    canceled = parse_time(data.get("canceled_at")) or when
    return [SubscriptionCanceled(subscription_id=str(data["id"]), occurred_at=canceled)]


def _customer(data: Data, when: datetime) -> list[Event]:
    """Only customers whose custom_data carries a click id or ref say anything."""
    return _identify(data.get("id"), None, _custom_referral(data.get("custom_data")), when,
                     email=data.get("email"))


# --- adjustments ---------------------------------------------------------------------------------

def _adjustment(data: Data, when: datetime) -> list[Event]:
    """Approved adjustments only: a refund pending Paddle's approval changes nothing yet, and a
    rejected one never will. `adjustment.created` (auto-approved) and a later `adjustment.updated`
    to approved give the same Refund id, which core counts once."""
    if data.get("status") != ADJUSTMENT_APPROVED:
        return []
    action = data.get("action")
    order_id = str(data["transaction_id"])
    totals = data["totals"]
    currency = str(data.get("currency_code") or totals["currency_code"])
    amount = Money(_minor(totals, "total"), currency)
    occurred = parse_time(data.get("updated_at")) or parse_time(data.get("created_at")) or when
    if action in REFUND_ACTIONS:
        return [Refund(order_id=order_id, occurred_at=occurred, amount=amount,
                       refund_id=str(data["id"]))]
    status = CHARGEBACK_STATUS.get(str(action))
    if status is not None:
        # Paddle names no dispute object: warning, chargeback and reversal of one transaction are
        # one dispute, keyed by the transaction id.
        return [Chargeback(order_id=order_id, dispute_id=order_id, occurred_at=occurred,
                           status=status, amount=amount)]
    return []  # credit_reverse and future actions: nothing core can express


HANDLERS: dict[str, Handler] = {
    "transaction.completed": _transaction,
    "transaction.paid": _transaction,
    "subscription.created": _subscription,
    "subscription.activated": _subscription,
    "subscription.updated": _subscription,
    "subscription.canceled": _subscription_canceled,
    "adjustment.created": _adjustment,
    "adjustment.updated": _adjustment,
    "customer.created": _customer,
    "customer.updated": _customer,
}
