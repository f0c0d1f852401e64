"""The common model that connectors emit: plain frozen dataclasses, no database, no Flask.

A connector's `translate(delivery)` turns one platform delivery into a list of these. Core then
decides everything else (attribution, commission, status) in `core.ingest`. Ids are the
platform's own ids as strings; core namespaces them by source so two platforms never collide.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Union

from core.money import Money


@dataclass(frozen=True)
class Referral:
    """Hints about who referred the customer, as found in the platform's payload.

    `evidence` names where the hint was found ("note_attributes", "landing_site",
    "client_reference_id", "custom_data", ...) so the conversion can record which evidence won.
    """

    click_id: str | None = None
    ref: str | None = None
    promo_codes: tuple[str, ...] = ()
    email: str | None = None
    evidence: str | None = None

    def is_empty(self) -> bool:
        return not (self.click_id or self.ref or self.promo_codes or self.email)


NO_REFERRAL = Referral()


@dataclass(frozen=True)
class Sale:
    """A payment: a one-time order or one payment of a subscription.

    `order_id` is the platform's id of the payment (order, invoice, transaction); `aliases` are other
    ids the platform later uses for the same payment (charge, payment intent, checkout session) so
    refunds and disputes that name those find it. `renewal` is True for every subscription payment
    after the first; renewals inherit the attribution of the subscription's first payment.
    `amount` is the revenue: after discounts, without tax and shipping. `paid_total` is what the
    customer paid in all (tax and shipping included) in the same currency, when it differs: refunds
    and disputes are reported against it, so core reverses commission in proportion to it.
    `payment_fingerprint` is the platform's stable id of the means of payment (a card's
    fingerprint), when it reports one: the self-referral rule (core.fraud) compares it.
    """

    order_id: str
    amount: Money
    occurred_at: datetime
    customer_id: str | None = None
    email: str | None = None
    referral: Referral = NO_REFERRAL
    event: str = "sale"
    subscription_id: str | None = None
    renewal: bool = False
    aliases: tuple[str, ...] = ()
    paid_total: Money | None = None
    amount_in_program_currency: Money | None = None
    payment_fingerprint: str | None = None


@dataclass(frozen=True)
class Lead:
    """A sign-up or other non-paying event of a customer."""

    customer_id: str
    occurred_at: datetime
    email: str | None = None
    referral: Referral = NO_REFERRAL
    event: str = "sign_up"


@dataclass(frozen=True)
class Identify:
    """Referral evidence tied to a customer (and optionally a subscription or order) without a
    payment of its own, e.g. a subscription-mode checkout whose first invoice is the sale.

    It may arrive before or after the payment it explains; core applies it either way.
    `aliases` are other ids of the payment `order_id` (e.g. the payment intent of an invoice),
    so refunds and disputes naming them find it, whichever arrives first.
    """

    occurred_at: datetime
    customer_id: str | None = None
    email: str | None = None
    referral: Referral = NO_REFERRAL
    subscription_id: str | None = None
    order_id: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refund:
    """Money given back on a payment.

    `amount` None means the whole payment. `refund_id` is the platform's refund id: refunds with the
    same id count once. With `cumulative=True`, `amount` is the platform's running total of all
    refunds on the payment (core keeps the largest total seen instead of adding).
    """

    order_id: str
    occurred_at: datetime
    amount: Money | None = None
    refund_id: str | None = None
    cumulative: bool = False


ChargebackStatus = Literal["open", "lost", "won"]


@dataclass(frozen=True)
class Chargeback:
    """A dispute on a payment. Open or lost: the commission is reversed; won: it is restored."""

    order_id: str
    dispute_id: str
    occurred_at: datetime
    status: ChargebackStatus = "open"
    amount: Money | None = None


@dataclass(frozen=True)
class OrderCanceled:
    """The payment was cancelled or failed: its commission is reversed in full."""

    order_id: str
    occurred_at: datetime


@dataclass(frozen=True)
class SubscriptionCanceled:
    """No recurring commission for payments of this subscription after `occurred_at`."""

    subscription_id: str
    occurred_at: datetime


@dataclass(frozen=True)
class SourceDisconnected:
    """The platform account removed Touchpoint (e.g. an app uninstall): stop counting its webhooks."""

    occurred_at: datetime


@dataclass(frozen=True)
class PersonalDataRequest:
    """The platform asks for what we hold about a customer (privacy law)."""

    request_id: str
    occurred_at: datetime
    customer_ids: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class PersonalDataErasure:
    """Erase a customer's personal data, or every customer's of this source when `whole_source`."""

    occurred_at: datetime
    customer_ids: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    whole_source: bool = False


Event = Union[
    Sale,
    Lead,
    Identify,
    Refund,
    Chargeback,
    OrderCanceled,
    SubscriptionCanceled,
    SourceDisconnected,
    PersonalDataRequest,
    PersonalDataErasure,
]

EVENT_TYPES = (
    Sale,
    Lead,
    Identify,
    Refund,
    Chargeback,
    OrderCanceled,
    SubscriptionCanceled,
    SourceDisconnected,
    PersonalDataRequest,
    PersonalDataErasure,
)

__all__ = [
    "Referral",
    "NO_REFERRAL",
    "Sale",
    "Lead",
    "Identify",
    "Refund",
    "Chargeback",
    "OrderCanceled",
    "SubscriptionCanceled",
    "SourceDisconnected",
    "PersonalDataRequest",
    "PersonalDataErasure",
    "Event",
    "EVENT_TYPES",
]
