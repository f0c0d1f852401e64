"""Stripe deliveries through the real webhook path (sign, POST, verify, store, translate, ingest):
the refund that names a payment intent or an invoice finds the sale, in both API shapes, and on
current API versions (where only `invoice_payment.paid` ties an invoice to its payment intent)
in every arrival order."""
from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
import stripe
from sqlmodel import select

from connectors.stripe import connector as stripe_connector
from core.db import get_db
from core.models import Conversion
from tests.conftest import fixture_json
from tests.connectors.stripe import helpers as h
from tests.factories import new_program

SECRET = "whsec_end_to_end"


@pytest.fixture
def connectors():
    return (stripe_connector,)


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    api.source = api.ok("post", "/api/v1/sources", {"platform": "stripe",
                                                    "webhook_secret": SECRET}, 201)
    return api


def deliver(api: Any, n: int, event_type: str, obj: dict[str, Any]) -> Any:
    event = fixture_json("stripe", "event.json")
    event.update(id=f"evt_e2e_{n}", type=event_type, created=int(time.time()))
    event["data"]["object"] = obj
    body = json.dumps(event).encode()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
    path = api.source["webhook_url"].replace("http://touchpoint.test", "")
    resp = api.client.post(path, data=body, headers={"Stripe-Signature": header,
                                                      "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "processed", resp.get_json()
    return resp


def conversions(app: Any) -> list[Conversion]:
    with app.app_context(), get_db().session() as s:
        return list(s.exec(select(Conversion)).all())


def test_checkout_sale_then_partial_refund_by_payment_intent(app, shop):
    session = fixture_json("stripe", "checkout.session.json")
    session.update(payment_status="paid", amount_total=12_000, currency="usd",
                   metadata={"tp_ref": "ann"},
                   total_details={"amount_tax": 2000, "amount_shipping": 0})
    deliver(shop, 1, "checkout.session.completed", session)
    [conv] = conversions(app)
    assert (conv.amount, conv.partner_id, conv.commission) == (10_000, shop.ann["id"], 1000)

    charge = fixture_json("stripe", "charge.json")
    charge.update(payment_intent=session["payment_intent"], amount=12_000, amount_refunded=6000)
    deliver(shop, 2, "charge.refunded", charge)
    [conv] = conversions(app)
    assert conv.commission == 500  # half the paid total came back, half the commission goes


@pytest.mark.parametrize("shape", ["2024-08", "current"])
def test_invoice_refund_finds_the_invoice_sale(app, shop, shape):
    charge = fixture_json("stripe", "charge.json" if shape == "current" else "charge.2024-08.json")
    if shape == "current":
        invoice = fixture_json("stripe", "invoice.json")
        payment = fixture_json("stripe", "invoice_payment.json")
        payment["payment"].update(payment_intent="pi_e2e", charge=charge["id"])
        invoice["payments"] = {"object": "list", "data": [payment], "has_more": False}
        charge.update(payment_intent="pi_e2e")
    else:
        invoice = fixture_json("stripe", "invoice.2024-08.json")
        invoice.update(charge=charge["id"], payment_intent="pi_e2e")
        charge.update(invoice=invoice["id"], payment_intent="pi_e2e")
    invoice.update(amount_paid=1000, status="paid", billing_reason="manual",
                   metadata={"tp_ref": "ann"})
    # The refund first: it waits for its sale.
    charge.update(amount=1000, amount_refunded=1000, refunded=True)
    deliver(shop, 1, "charge.refunded", charge)
    deliver(shop, 2, "invoice.paid", invoice)
    deliver(shop, 3, "invoice.payment_succeeded", invoice)
    [conv] = conversions(app)
    assert conv.external_id == invoice["id"] and conv.partner_id == shop.ann["id"]
    assert conv.commission == 0 and conv.status == "reversed"


def test_checkout_with_invoice_creation_is_one_sale_and_its_refund_finds_it(app, shop):
    """Current shape: the session's invoice (invoice_creation) arrives first without payment ids;
    the session names that invoice, so it is the same sale and adds the payment intent."""
    invoice = fixture_json("stripe", "invoice.json")
    invoice.update(amount_paid=12_000, total=12_000, total_excluding_tax=10_000, status="paid",
                   billing_reason="manual")
    invoice["parent"] = None
    deliver(shop, 1, "invoice.paid", invoice)
    session = fixture_json("stripe", "checkout.session.json")
    session.update(payment_status="paid", amount_total=12_000, currency="usd",
                   invoice=invoice["id"], client_reference_id=None, metadata={"tp_ref": "ann"},
                   total_details={"amount_tax": 2000, "amount_shipping": 0})
    deliver(shop, 2, "checkout.session.completed", session)
    [conv] = conversions(app)
    assert (conv.external_id, conv.partner_id, conv.commission) == (invoice["id"],
                                                                   shop.ann["id"], 1000)
    charge = fixture_json("stripe", "charge.json")
    charge.update(payment_intent=session["payment_intent"], amount=12_000, amount_refunded=12_000)
    deliver(shop, 3, "charge.refunded", charge)
    [conv] = conversions(app)
    assert conv.commission == 0


ARRIVALS = list(itertools.permutations(("invoice.paid", "invoice_payment.paid", "adjustment")))


@pytest.mark.parametrize("arrival", ARRIVALS, ids="/".join)
@pytest.mark.parametrize("adjustment", ["charge.refunded", "charge.dispute.closed"])
def test_current_shape_subscription_invoice_refund_or_dispute_in_any_order(app, shop, adjustment,
                                                                            arrival):
    """The invoice names no payment; the refund and the dispute name only the payment intent; the
    InvoicePayment joins the two. Whichever comes first, the adjustment lands on the invoice."""
    paid_at = h.now()
    invoice = h.subscription_invoice("in_sub_first", paid_at, "subscription_create")
    invoice["metadata"] = {"tp_ref": "ann"}
    if adjustment == "charge.refunded":
        adjust = h.charge("ch_sub_first", "pi_sub_first", amount=6000, refunded=1500)
    else:
        adjust = h.dispute("dp_sub_first", "ch_sub_first", "pi_sub_first", status="lost")
    objects = {"invoice.paid": ("invoice.paid", invoice),
               "invoice_payment.paid": ("invoice_payment.paid",
                                        h.invoice_payment(invoice["id"], "pi_sub_first", paid_at)),
               "adjustment": (adjustment, adjust)}
    for n, name in enumerate(arrival, start=1):
        deliver(shop, n, *objects[name])

    [conv] = conversions(app)
    assert (conv.external_id, conv.subscription_id, conv.partner_id) == (
        "in_sub_first", h.SUBSCRIPTION, shop.ann["id"])
    assert (conv.amount, conv.paid_total) == (5000, 6000)  # revenue without the 1000 of tax
    if adjustment == "charge.refunded":
        # A quarter of the paid total came back: 10% of 5000 = 500, minus a quarter.
        assert (conv.refunded, conv.commission, conv.status) == (1500, 375, "partially_refunded")
    else:
        assert (conv.commission, conv.status) == (0, "reversed")
