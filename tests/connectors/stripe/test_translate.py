"""connectors/stripe/translate.py: Stripe's published object fixtures, wrapped in events, to the
common model, for both API shapes (fixtures `*.2024-08.json` name `invoice.charge`/`charge.invoice`;
the current ones link invoice and payment only through `invoice.payments`)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from connectors.stripe.translate import EVENT_TYPES, stripe_money, translate
from core.connectors import Delivery
from core.events import (
    Chargeback,
    Identify,
    Referral,
    Refund,
    Sale,
    SubscriptionCanceled,
)
from core.money import Money
from tests.conftest import fixture_json

CREATED = 1_700_000_000
AT = datetime.fromtimestamp(CREATED, tz=timezone.utc)


def fx(name: str) -> dict[str, Any]:
    return fixture_json("stripe", name)


def event(event_type: str, obj: dict[str, Any], created: int = CREATED) -> Delivery:
    """The envelope Stripe puts around an object, as the inbox rebuilds it (no occurred_at)."""
    payload = {"id": "evt_test_1", "object": "event", "type": event_type, "created": created,
               "api_version": None, "data": {"object": obj}}
    return Delivery(delivery_id="evt_test_1", topic=event_type, payload=payload,
                    body=json.dumps(payload).encode())


def only(events: list[Any]) -> Any:
    assert len(events) == 1, events
    return events[0]


# --- money ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount, currency, expected", [
    (1999, "usd", Money(1999, "USD")),
    (500, "jpy", Money(500, "JPY")),        # zero-decimal in Stripe and ISO
    (50000, "isk", Money(500, "ISK")),      # Stripe keeps two decimals for ISK, ISO has none
    (5000, "mga", Money(500000, "MGA")),    # Stripe zero-decimal, ISO two decimals
    (12345, "kwd", Money(12345, "KWD")),    # three decimals on both sides
])
def test_stripe_minor_units_become_iso_minor_units(amount, currency, expected):
    assert stripe_money(amount, currency) == expected


# --- checkout sessions ---------------------------------------------------------------------------

def paid_session(name: str = "checkout.session.json", **changes: Any) -> dict[str, Any]:
    session = fx(name)
    session.update(payment_status="paid", status="complete", amount_total=11_000,
                   currency="usd", customer="cus_QXg1o8vcGmoR32",
                   total_details={"amount_discount": 1000, "amount_shipping": 500,
                                  "amount_tax": 1500})
    session.update(changes)
    return session


def test_published_sessions_are_unpaid_and_give_nothing():
    for name in ("checkout.session.json", "checkout.session.2024-08.json"):
        assert translate(event("checkout.session.completed", fx(name))) == []


def test_paid_checkout_is_a_sale_without_tax_and_shipping():
    promo = fx("promotion_code.json")
    session = paid_session(client_reference_id="clk_abc123",
                           discounts=[{"coupon": None, "promotion_code": promo}])
    sale = only(translate(event("checkout.session.completed", session)))
    assert sale == Sale(
        order_id="pi_1PgafyB7WZ01zgkWSjxsAJo3",
        aliases=("cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",),
        amount=Money(9000, "USD"), paid_total=Money(11_000, "USD"), occurred_at=AT,
        customer_id="cus_QXg1o8vcGmoR32", email="example@example.com",
        referral=Referral(click_id="clk_abc123", promo_codes=("FALL20",),
                          evidence="client_reference_id"),
    )


def test_old_shape_session_with_metadata_click_and_ref():
    session = paid_session("checkout.session.2024-08.json", total_details=None,
                           client_reference_id="merchant-user-42",
                           metadata={"tp_click": "clk_meta", "tp_ref": "alice"},
                           discounts=[{"coupon": None, "promotion_code": "promo_123"}])
    sale = only(translate(event("checkout.session.async_payment_succeeded", session)))
    assert sale.amount == Money(11_000, "USD") == sale.paid_total
    assert sale.referral == Referral(click_id="clk_meta", ref="alice", promo_codes=("promo_123",),
                                     evidence="metadata.tp_click")


def test_session_without_payment_intent_is_known_by_its_id_and_its_invoice():
    session = paid_session(payment_intent=None, invoice="in_from_checkout")
    sale = only(translate(event("checkout.session.completed", session)))
    assert sale.order_id == session["id"]
    assert sale.aliases == ("in_from_checkout",)
    assert sale.referral == Referral()


def test_promotion_codes_from_the_expanded_breakdown():
    discount = fx("discount.json")
    discount["promotion_code"] = fx("promotion_code.json")
    session = paid_session()
    session["total_details"]["breakdown"] = {"discounts": [{"amount": 1000,
                                                            "discount": discount}], "taxes": []}
    assert only(translate(event("checkout.session.completed", session))).referral.promo_codes \
        == ("FALL20",)


def test_zero_decimal_checkout():
    session = paid_session(currency="jpy", amount_total=3000,
                           total_details={"amount_tax": 0, "amount_shipping": 0})
    sale = only(translate(event("checkout.session.completed", session)))
    assert sale.amount == Money(3000, "JPY")


@pytest.mark.parametrize("status", ["unpaid", "no_payment_required"])
def test_unpaid_checkout_is_no_sale(status):
    assert translate(event("checkout.session.completed", paid_session(payment_status=status))) == []


def test_subscription_checkout_only_identifies_the_customer():
    session = paid_session(mode="subscription", payment_intent=None, subscription="sub_1",
                           invoice="in_first", client_reference_id="clk_sub")
    assert only(translate(event("checkout.session.completed", session))) == Identify(
        occurred_at=AT, customer_id="cus_QXg1o8vcGmoR32", email="example@example.com",
        referral=Referral(click_id="clk_sub", evidence="client_reference_id"),
        subscription_id="sub_1", order_id="in_first")


# --- invoices ------------------------------------------------------------------------------------

def test_published_invoices_are_unpaid_drafts_and_give_nothing():
    for name in ("invoice.json", "invoice.2024-08.json"):
        assert translate(event("invoice.paid", fx(name))) == []


def current_invoice(**changes: Any) -> dict[str, Any]:
    """The current shape: subscription under `parent`, payments only in `invoice.payments`."""
    invoice = fx("invoice.json")
    payment = fx("invoice_payment.json")
    payment.update(invoice=invoice["id"], status="paid", amount_paid=1000)
    payment["payment"].update(payment_intent="pi_current", charge="ch_current")
    invoice.update(status="paid", amount_paid=1000, amount_remaining=0,
                   billing_reason="subscription_cycle",
                   payments={"object": "list", "data": [payment], "has_more": False})
    invoice["parent"]["subscription_details"]["subscription"] = "sub_current"
    invoice.update(changes)
    return invoice


def old_invoice(**changes: Any) -> dict[str, Any]:
    """The 2024-08 shape: `invoice.charge`, `invoice.payment_intent`, `invoice.subscription`."""
    invoice = fx("invoice.2024-08.json")
    invoice.update(status="paid", paid=True, amount_paid=1200, amount_remaining=0,
                   billing_reason="subscription_create", subscription="sub_old",
                   charge="ch_old", payment_intent="pi_old", total=1200, tax=200,
                   total_excluding_tax=1000, discounts=["di_1"],
                   discount={"id": "di_1", "object": "discount", "promotion_code": "promo_old"},
                   status_transitions={"paid_at": CREATED + 60})
    invoice.update(changes)
    return invoice


def test_current_shape_invoice_is_a_renewal_sale_with_its_payment_ids():
    sale = only(translate(event("invoice.paid", current_invoice())))
    assert sale == Sale(
        order_id="in_1Pgc6tB7WZ01zgkWu9fdqL6I", amount=Money(1000, "USD"),
        paid_total=Money(1000, "USD"), occurred_at=AT, customer_id="cus_QXg1o8vcGmoR32",
        subscription_id="sub_current", renewal=True, aliases=("ch_current", "pi_current"))


def test_old_shape_invoice_is_the_first_payment_without_tax():
    sale = only(translate(event("invoice.payment_succeeded", old_invoice())))
    assert sale == Sale(
        order_id="in_1Pgc6tB7WZ01zgkWu9fdqL6I", amount=Money(1000, "USD"),
        paid_total=Money(1200, "USD"),
        occurred_at=datetime.fromtimestamp(CREATED + 60, tz=timezone.utc),
        customer_id="cus_QXg1o8vcGmoR32", subscription_id="sub_old", renewal=False,
        aliases=("ch_old", "pi_old"),
        referral=Referral(promo_codes=("promo_old",), evidence="promotion_code"))


def test_paid_and_payment_succeeded_name_the_same_order():
    invoice = old_invoice()
    a = only(translate(event("invoice.paid", invoice)))
    b = only(translate(event("invoice.payment_succeeded", invoice)))
    assert a == b


def test_revenue_without_total_excluding_tax_subtracts_taxes_and_shipping():
    invoice = current_invoice(total=1500, total_excluding_tax=None, amount_paid=1500,
                              amount_shipping=100,
                              total_taxes=[{"amount": 150, "tax_behavior": "exclusive"},
                                           {"amount": 50, "tax_behavior": "exclusive"}])
    sale = only(translate(event("invoice.paid", invoice)))
    assert (sale.amount, sale.paid_total) == (Money(1200, "USD"), Money(1500, "USD"))


def test_old_shape_tax_amounts_list():
    invoice = old_invoice(tax=None, total_excluding_tax=None, total=1200,
                          total_tax_amounts=[{"amount": 200, "inclusive": False}])
    assert only(translate(event("invoice.paid", invoice))).amount == Money(1000, "USD")


def test_expanded_invoice_discounts_give_the_code():
    discount = fx("discount.json")
    discount["promotion_code"] = fx("promotion_code.json")
    invoice = current_invoice(discounts=[discount, "di_unexpanded"])
    assert only(translate(event("invoice.paid", invoice))).referral.promo_codes == ("FALL20",)


@pytest.mark.parametrize("reason, subscription, renewal", [
    ("subscription_create", "sub_1", False),
    ("quote_accept", "sub_1", False),
    ("manual", "sub_1", False),
    (None, "sub_1", False),
    ("subscription_cycle", "sub_1", True),
    ("subscription_update", "sub_1", True),
    ("subscription_threshold", "sub_1", True),
    ("subscription_cycle", None, False),
])
def test_renewal_is_every_subscription_payment_after_the_first(reason, subscription, renewal):
    invoice = old_invoice(billing_reason=reason, subscription=subscription)
    assert only(translate(event("invoice.paid", invoice))).renewal is renewal


def test_trial_invoice_is_not_a_sale():
    invoice = current_invoice(amount_paid=0, total=0, total_excluding_tax=0,
                              billing_reason="subscription_create")
    assert translate(event("invoice.paid", invoice)) == []


def test_current_invoice_without_included_payments_has_no_aliases():
    """Webhooks of current API versions do not include `invoice.payments` (see README)."""
    invoice = current_invoice()
    del invoice["payments"]
    assert only(translate(event("invoice.paid", invoice))).aliases == ()


def test_invoice_payment_paid_names_the_invoice_s_payment_intent():
    payment = fx("invoice_payment.json")
    payment.update(invoice="in_1", status="paid", status_transitions={"paid_at": CREATED - 5})
    payment["payment"].update(payment_intent="pi_1")
    assert translate(event("invoice_payment.paid", payment)) == [Identify(
        order_id="in_1", aliases=("pi_1",),
        occurred_at=datetime.fromtimestamp(CREATED - 5, tz=timezone.utc))]


def test_invoice_payment_paid_with_expanded_charge_and_no_paid_at():
    payment = fx("invoice_payment.json")
    payment.update(invoice={"id": "in_1", "object": "invoice"})
    payment["payment"] = {"type": "charge", "charge": {"id": "ch_1", "object": "charge"}}
    assert translate(event("invoice_payment.paid", payment)) == [
        Identify(order_id="in_1", aliases=("ch_1",), occurred_at=AT)]


def test_published_invoice_payment_names_no_payment_and_gives_nothing():
    # The published sample's payment has only a `type`; a payment record has no id refunds use.
    assert translate(event("invoice_payment.paid", fx("invoice_payment.json"))) == []


# --- customers -----------------------------------------------------------------------------------

def test_customer_without_our_metadata_gives_nothing():
    assert translate(event("customer.created", fx("customer.json"))) == []


def test_customer_metadata_identifies():
    customer = fx("customer.json")
    customer.update(email="jane@example.com", metadata={"tp_click": "clk_1", "tp_partner": "bob"})
    assert only(translate(event("customer.updated", customer))) == Identify(
        occurred_at=AT, customer_id="cus_QXg1o8vcGmoR32", email="jane@example.com",
        referral=Referral(click_id="clk_1", ref="bob", evidence="customer.metadata"))


# --- refunds -------------------------------------------------------------------------------------

def test_old_shape_refund_names_the_invoice():
    charge = fx("charge.2024-08.json")
    charge.update(invoice="in_1Pgc6tB7WZ01zgkWu9fdqL6I", payment_intent="pi_old",
                  amount_refunded=60, refunded=False)
    refund = only(translate(event("charge.refunded", charge)))
    assert refund == Refund(order_id="in_1Pgc6tB7WZ01zgkWu9fdqL6I", occurred_at=AT,
                            amount=Money(60, "USD"), cumulative=True)
    assert refund.order_id == only(translate(event("invoice.paid", old_invoice()))).order_id


def test_current_shape_refund_names_the_payment_intent_an_alias_of_the_sale():
    charge = fx("charge.json")
    assert "invoice" not in charge
    charge.update(payment_intent="pi_current", amount_refunded=1000, refunded=True)
    refund = only(translate(event("charge.refunded", charge)))
    assert refund == Refund(order_id="pi_current", occurred_at=AT, amount=Money(1000, "USD"),
                            cumulative=True)
    assert refund.order_id in only(translate(event("invoice.paid", current_invoice()))).aliases


def test_refund_of_a_checkout_payment_finds_the_sale():
    charge = fx("charge.json")
    charge.update(payment_intent="pi_1PgafyB7WZ01zgkWSjxsAJo3", amount_refunded=500)
    refund = only(translate(event("charge.refunded", charge)))
    assert refund.order_id == only(translate(event("checkout.session.completed",
                                                   paid_session()))).order_id


def test_refund_of_a_bare_charge_names_the_charge():
    charge = fx("charge.json")
    charge["amount_refunded"] = 100
    assert only(translate(event("charge.refunded", charge))).order_id == charge["id"]


# --- disputes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("event_type, dispute_status, outcome", [
    ("charge.dispute.created", "warning_needs_response", "open"),
    ("charge.dispute.created", "needs_response", "open"),
    ("charge.dispute.closed", "lost", "lost"),
    ("charge.dispute.closed", "won", "won"),
    ("charge.dispute.closed", "warning_closed", "won"),
    ("charge.dispute.funds_reinstated", "under_review", "won"),
])
def test_dispute_outcomes(event_type, dispute_status, outcome):
    dispute = fx("dispute.json")
    dispute["status"] = dispute_status
    assert only(translate(event(event_type, dispute))) == Chargeback(
        order_id="ch_1PgafuB7WZ01zgkWXYmPNZs8", dispute_id="dp_1Pgc71B7WZ01zgkWMevJiAUx",
        occurred_at=AT, status=outcome, amount=Money(1000, "USD"))


def test_dispute_prefers_the_payment_intent():
    dispute = fx("dispute.json")
    dispute["payment_intent"] = "pi_1PgafyB7WZ01zgkWSjxsAJo3"
    assert only(translate(event("charge.dispute.created", dispute))).order_id \
        == "pi_1PgafyB7WZ01zgkWSjxsAJo3"


# --- subscriptions -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["subscription.json", "subscription.2024-08.json"])
def test_subscription_deleted(name):
    sub = fx(name)
    assert only(translate(event("customer.subscription.deleted", sub))) == SubscriptionCanceled(
        subscription_id="sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
        occurred_at=datetime.fromtimestamp(1234567890, tz=timezone.utc))


def test_subscription_deleted_falls_back_to_ended_at_then_event_time():
    sub = fx("subscription.json")
    sub.update(canceled_at=None, ended_at=CREATED - 5)
    assert only(translate(event("customer.subscription.deleted", sub))).occurred_at \
        == datetime.fromtimestamp(CREATED - 5, tz=timezone.utc)
    sub.update(ended_at=None)
    assert only(translate(event("customer.subscription.deleted", sub))).occurred_at == AT


# --- the rest ------------------------------------------------------------------------------------

def test_unknown_topic_gives_nothing():
    payload = fx("event.json")
    delivery = Delivery(delivery_id=payload["id"], topic=payload["type"], payload=payload,
                        body=json.dumps(payload).encode())
    assert translate(delivery) == []
    assert translate(Delivery(delivery_id="x", topic="invoice.paid", payload=None, body=b"")) == []


def test_subscribed_events_are_the_handled_ones():
    assert len(EVENT_TYPES) <= 20  # Stripe's limit for `types` when listing events
    assert "invoice.paid" in EVENT_TYPES and "plan.created" not in EVENT_TYPES
