"""Stripe objects for end-to-end tests, built from the published fixtures by changing the loaded
dicts in code (current API shape), and signed webhook deliveries to the Flask app."""
from __future__ import annotations

import json
import time
from typing import Any

import stripe
from sqlmodel import func, select

from core.db import get_db
from core.models import Conversion, LedgerEntry, WebhookDelivery
from tests.conftest import fixture_json

SECRET = "whsec_end_to_end"
CUSTOMER = "cus_QXg1o8vcGmoR32"
SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
DAY = 86_400


def fx(name: str) -> dict[str, Any]:
    return fixture_json("stripe", name)


def stripe_event(event_id: str, event_type: str, obj: dict[str, Any],
                 created: int) -> dict[str, Any]:
    event = fx("event.json")
    event.update(id=event_id, type=event_type, created=created)
    event["data"]["object"] = obj
    return event


def signed_post(client: Any, path: str, event: dict[str, Any], secret: str = SECRET,
                signed_at: int | None = None) -> Any:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=signed_at)
    return client.post(path, data=body.encode(), headers={"Stripe-Signature": header,
                                                          "Content-Type": "application/json"})


def webhook_path(source: dict[str, Any]) -> str:
    return source["webhook_url"].replace("http://touchpoint.test", "")


# --- objects -------------------------------------------------------------------------------------

def subscription_checkout(click_id: str, invoice_id: str, created: int) -> dict[str, Any]:
    session = fx("checkout.session.json")
    session.update(mode="subscription", status="complete", payment_status="paid",
                   client_reference_id=click_id, customer=CUSTOMER, subscription=SUBSCRIPTION,
                   invoice=invoice_id, payment_intent=None, amount_subtotal=5000,
                   amount_total=6000, currency="usd", created=created,
                   total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 1000})
    return session


def subscription_invoice(invoice_id: str, paid_at: int, reason: str, paid: int = 6000,
                         tax: int = 1000) -> dict[str, Any]:
    """A paid invoice in the current shape: no charge or payment intent, the subscription under
    `parent.subscription_details`."""
    invoice = fx("invoice.json")
    invoice.update(id=invoice_id, status="paid", billing_reason=reason, customer=CUSTOMER,
                   amount_due=paid, amount_paid=paid, amount_remaining=0, total=paid,
                   subtotal=paid - tax, total_excluding_tax=paid - tax,
                   total_taxes=[{"amount": tax, "tax_behavior": "exclusive",
                                 "tax_rate_details": None, "taxability_reason": "standard_rated",
                                 "taxable_amount": paid - tax, "type": "tax_rate_details"}])
    invoice["parent"] = {"type": "subscription_details", "quote_details": None,
                         "subscription_details": {"metadata": {}, "subscription": SUBSCRIPTION}}
    invoice["status_transitions"].update(finalized_at=paid_at, paid_at=paid_at)
    return invoice


def invoice_payment(invoice_id: str, payment_intent: str, paid_at: int,
                    amount: int = 6000) -> dict[str, Any]:
    payment = fx("invoice_payment.json")
    payment.update(id=f"inpay_{invoice_id}", invoice=invoice_id, status="paid", currency="usd",
                   amount_paid=amount, amount_requested=amount)
    payment["payment"].update(type="payment_intent", payment_intent=payment_intent)
    payment["status_transitions"]["paid_at"] = paid_at
    return payment


def charge(charge_id: str, payment_intent: str, amount: int = 6000,
           refunded: int = 0) -> dict[str, Any]:
    """A charge in the current shape: it names its payment intent, never its invoice."""
    ch = fx("charge.json")
    ch.update(id=charge_id, payment_intent=payment_intent, customer=CUSTOMER, amount=amount,
              amount_captured=amount, captured=True, amount_refunded=refunded,
              refunded=refunded >= amount)
    return ch


def dispute(dispute_id: str, charge_id: str, payment_intent: str, status: str,
            amount: int = 6000) -> dict[str, Any]:
    dp = fx("dispute.json")
    dp.update(id=dispute_id, charge=charge_id, payment_intent=payment_intent, status=status,
              amount=amount)
    return dp


def canceled_subscription(canceled_at: int) -> dict[str, Any]:
    sub = fx("subscription.json")
    sub.update(id=SUBSCRIPTION, customer=CUSTOMER, status="canceled", canceled_at=canceled_at,
               ended_at=canceled_at)
    return sub


# --- reading the database ------------------------------------------------------------------------

def conversions(app: Any) -> dict[str, Conversion]:
    """Every conversion by its Stripe id."""
    with app.app_context(), get_db().session() as s:
        return {c.external_id: c for c in s.exec(select(Conversion)).all()}


def counts(app: Any) -> dict[str, int]:
    with app.app_context(), get_db().session() as s:
        return {name: s.exec(select(func.count()).select_from(model)).one()
                for name, model in (("deliveries", WebhookDelivery), ("conversions", Conversion),
                                    ("ledger", LedgerEntry))}


def state(app: Any) -> list[tuple[str, str | None, int, str, int]]:
    """What a replay must not change: each conversion's partner, commission, status, refunded."""
    return sorted((c.external_id, c.partner_id, c.commission, c.status, c.refunded)
                  for c in conversions(app).values())


def now() -> int:
    return int(time.time())
