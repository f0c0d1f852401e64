"""connectors.paddle.translate against Paddle's published notification samples.

`*.data.json` fixtures are a notification's `data`; the envelope around them is built here.
Variants (a click id, an approved status) are made by editing the loaded dict.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from connectors.paddle.translate import translate
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

EVENT_TIME = "2024-04-12T10:18:49.738971Z"
EVENT_DT = datetime(2024, 4, 12, 10, 18, 49, 738971, tzinfo=timezone.utc)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def data(name: str) -> dict[str, Any]:
    return fixture_json("paddle", f"{name}.data.json")


def notification(topic: str, payload_data: dict[str, Any], occurred_at: str = EVENT_TIME,
                 *, from_inbox: bool = False) -> Delivery:
    """A delivery as `verify` makes it, or as the inbox rebuilds it (no occurred_at)."""
    body = {"event_id": "evt_test", "event_type": topic, "occurred_at": occurred_at,
            "notification_id": "ntf_test", "data": payload_data}
    return Delivery(delivery_id="evt_test", topic=topic, payload=body,
                    body=json.dumps(body).encode(),
                    occurred_at=None if from_inbox else utc(occurred_at))


def whole(name: str) -> Delivery:
    body = fixture_json("paddle", name)
    return Delivery(delivery_id=body["event_id"], topic=body["event_type"], payload=body,
                    body=json.dumps(body).encode(), occurred_at=utc(body["occurred_at"]))


# --- transactions ---------------------------------------------------------------------------------

def test_transaction_completed_sample_is_one_sale_without_tax():
    [sale] = translate(whole("transaction.completed.json"))
    assert sale == Sale(
        order_id="txn_01h8dzxgkvdwemdhbpcapj2tbj",
        amount=Money(59900, "USD"),  # subtotal 59900 - discount 0 (= total 65215 - tax 5315)
        paid_total=Money(65215, "USD"),
        occurred_at=datetime(2023, 8, 22, 7, 15, 43, 792797, tzinfo=timezone.utc),  # captured_at
        customer_id="ctm_01h8e18bxp9hby49dnm8ewf0m0",
        subscription_id=None,
        renewal=False,
    )


def test_transaction_paid_sample_in_pounds():
    [sale] = translate(whole("transaction.paid.json"))
    assert sale.order_id == "txn_01gxwxqj0rd5m8j1zdhvk05twz"
    assert sale.amount == Money(74900, "GBP")
    assert sale.paid_total == Money(89880, "GBP")
    assert sale.customer_id == "ctm_01gxwxe6vzgz6hcsbwjs6zrszr"
    assert sale.renewal is False


def test_paid_and_completed_of_one_transaction_give_the_same_sale():
    [paid] = translate(notification("transaction.paid", data("transaction.paid")))
    [completed] = translate(notification("transaction.completed", data("transaction.completed"),
                                         "2024-04-12T10:18:51.000000Z"))
    assert paid.order_id == completed.order_id == "txn_01hv8wptq8987qeep44cyrewp9"
    assert paid.amount == completed.amount == Money(59900, "USD")
    assert paid.paid_total == completed.paid_total == Money(65215, "USD")
    # the payment's capture time, not the notification time, so both agree
    assert paid.occurred_at == completed.occurred_at == utc("2024-04-12T10:18:47.635628Z")
    # Paddle creates the subscription between the two: only `completed` names it
    assert paid.subscription_id is None
    assert completed.subscription_id == "sub_01hv8x29kz0t586xy6zn1a62ny"
    assert completed.customer_id == "ctm_01hv6y1jedq4p1n0yqn5ba3ky4"
    assert completed.renewal is False  # origin "web": the first payment


def test_discounted_transaction_revenue_is_after_discount_and_carries_the_discount_id():
    txn = data("transaction.billed")
    txn["status"] = "completed"
    [sale] = translate(notification("transaction.completed", txn))
    # subtotal 2819900 - discount 281990 = 2537910 (= total 2763149 - tax 225239)
    assert sale.amount == Money(2_537_910, "USD")
    assert sale.paid_total == Money(2_763_149, "USD")
    assert sale.referral == Referral(promo_codes=("dsc_01gtgztp8fpchantd5g1wrksa3",),
                                     evidence="discount")


def test_click_id_and_ref_from_custom_data():
    txn = data("transaction.completed")
    txn["custom_data"] = {"tp_click": " clk_123 ", "tp_ref": "alice", "other": 1}
    [sale] = translate(notification("transaction.completed", txn))
    assert sale.referral == Referral(click_id="clk_123", ref="alice", evidence="custom_data")


def test_click_id_and_discount_together():
    txn = data("transaction.billed")
    txn["custom_data"] = {"tp_click": "clk_9"}
    [sale] = translate(notification("transaction.paid", txn))
    assert sale.referral == Referral(click_id="clk_9", promo_codes=("dsc_01gtgztp8fpchantd5g1wrksa3",),
                                     evidence="custom_data")


@pytest.mark.parametrize("custom_data", [None, {}, {"tp_click": ""}, {"tp_click": 5}, ["tp_click"]])
def test_custom_data_without_a_usable_click_is_no_referral(custom_data):
    txn = data("transaction.completed")
    txn["custom_data"] = custom_data
    [sale] = translate(notification("transaction.completed", txn))
    assert sale.referral.is_empty()


@pytest.mark.parametrize("origin,renewal", [
    ("subscription_recurring", True),
    ("subscription_charge", True),
    ("subscription_update", True),
    ("web", False),
    ("api", False),
])
def test_renewal_follows_the_origin(origin, renewal):
    txn = data("transaction.completed")
    txn["origin"] = origin
    [sale] = translate(notification("transaction.completed", txn))
    assert sale.renewal is renewal
    assert sale.subscription_id == "sub_01hv8x29kz0t586xy6zn1a62ny"


def _zero(txn: dict[str, Any]) -> dict[str, Any]:
    for key in ("subtotal", "tax", "total", "grand_total", "discount"):
        txn["details"]["totals"][key] = "0"
    return txn


def test_zero_total_transaction_is_no_sale():
    assert translate(notification("transaction.completed", _zero(data("transaction.completed")))) == []


def test_zero_total_transaction_with_a_click_identifies_customer_and_subscription():
    txn = _zero(data("transaction.completed"))
    txn["custom_data"] = {"tp_click": "clk_trial"}
    assert translate(notification("transaction.completed", txn)) == [Identify(
        occurred_at=EVENT_DT, customer_id="ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
        subscription_id="sub_01hv8x29kz0t586xy6zn1a62ny", order_id="txn_01hv8wptq8987qeep44cyrewp9",
        referral=Referral(click_id="clk_trial", evidence="custom_data"))]


def test_amounts_stay_integers_in_zero_decimal_currencies():
    txn = data("transaction.completed")
    txn["currency_code"] = "JPY"
    txn["details"]["totals"]["currency_code"] = "JPY"
    [sale] = translate(notification("transaction.completed", txn))
    assert sale.amount == Money(59900, "JPY")


# --- subscriptions and customers ------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["subscription.created", "subscription.activated",
                                   "subscription.updated"])
def test_subscription_samples_without_click_say_nothing(topic):
    assert translate(notification(topic, data(topic))) == []


@pytest.mark.parametrize("name", ["subscription.created.json", "subscription.updated.json",
                                  "customer.created.json"])
def test_whole_samples_without_click_say_nothing(name):
    assert translate(whole(name)) == []


def test_subscription_created_with_click_identifies_it_and_its_first_transaction():
    sub = data("subscription.created")
    sub["custom_data"] = {"tp_click": "clk_1", "tp_ref": "bob"}
    assert translate(notification("subscription.created", sub)) == [Identify(
        occurred_at=EVENT_DT, customer_id="ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
        subscription_id="sub_01hv8x29kz0t586xy6zn1a62ny",
        order_id="txn_01hv8wptq8987qeep44cyrewp9",
        referral=Referral(click_id="clk_1", ref="bob", evidence="custom_data"))]


@pytest.mark.parametrize("topic", ["subscription.activated", "subscription.updated"])
def test_subscription_update_with_click_identifies_it(topic):
    sub = data(topic)
    sub["custom_data"] = {"tp_click": "clk_2"}
    [event] = translate(notification(topic, sub))
    assert isinstance(event, Identify)
    assert (event.customer_id, event.subscription_id, event.order_id) == (
        "ctm_01hv6y1jedq4p1n0yqn5ba3ky4", "sub_01hv8x29kz0t586xy6zn1a62ny", None)
    assert event.referral.click_id == "clk_2"


def test_subscription_canceled_at_its_cancel_time():
    assert translate(notification("subscription.canceled", data("subscription.canceled"))) == [
        SubscriptionCanceled(subscription_id="sub_01hv8x29kz0t586xy6zn1a62ny",
                             occurred_at=utc("2024-04-12T11:24:54.868000Z"))]


def test_subscription_canceled_without_cancel_time_uses_the_event_time():
    sub = data("subscription.canceled")
    sub["canceled_at"] = None
    [event] = translate(notification("subscription.canceled", sub))
    assert event.occurred_at == EVENT_DT


def test_customer_with_click_identifies_customer_and_email():
    customer = data("customer.created")
    customer["custom_data"] = {"tp_click": "clk_3"}
    for topic in ("customer.created", "customer.updated"):
        assert translate(notification(topic, customer)) == [Identify(
            occurred_at=EVENT_DT, customer_id="ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
            email="jo@example.com", referral=Referral(click_id="clk_3", evidence="custom_data"))]


def test_customer_sample_without_click_says_nothing():
    assert translate(notification("customer.created", data("customer.created"))) == []


# --- adjustments ----------------------------------------------------------------------------------

def approved(name: str = "adjustment.updated", **changes: Any) -> dict[str, Any]:
    adjustment = data(name)
    adjustment["status"] = "approved"
    adjustment.update(changes)
    return adjustment


@pytest.mark.parametrize("topic", ["adjustment.created", "adjustment.updated"])
def test_pending_adjustment_samples_change_nothing(topic):
    assert data(topic)["status"] == "pending_approval"
    assert translate(notification(topic, data(topic))) == []


def test_rejected_refund_changes_nothing():
    assert translate(notification("adjustment.updated", approved(status="rejected"))) == []


def test_approved_refund_is_a_refund_of_its_transaction_with_tax():
    assert translate(notification("adjustment.updated", approved())) == [Refund(
        order_id="txn_01hvcc93znj3mpqt1tenkjb04y", refund_id="adj_01hvgf2s84dr6reszzg29zbvcm",
        amount=Money(100, "USD"),  # totals.total: subtotal 92 + tax 8, like Sale.paid_total
        occurred_at=utc("2024-04-15T08:54:10.646377Z"))]


def test_created_approved_and_later_updated_approved_give_the_same_refund_id():
    [created] = translate(notification("adjustment.created", approved("adjustment.created")))
    [updated] = translate(notification("adjustment.updated", approved("adjustment.updated")))
    assert isinstance(created, Refund) and isinstance(updated, Refund)
    assert created.refund_id == updated.refund_id == "adj_01hvgf2s84dr6reszzg29zbvcm"
    assert created.amount == updated.amount == Money(100, "USD")
    assert created.order_id == updated.order_id


def test_credit_is_a_refund_too():
    [event] = translate(notification("adjustment.updated", approved(action="credit")))
    assert isinstance(event, Refund)
    assert event.amount == Money(100, "USD")


@pytest.mark.parametrize("action,status", [
    ("chargeback", "lost"), ("chargeback_reverse", "won"), ("chargeback_warning", "open")])
def test_chargeback_actions_share_one_dispute_per_transaction(action, status):
    assert translate(notification("adjustment.created", approved(action=action))) == [Chargeback(
        order_id="txn_01hvcc93znj3mpqt1tenkjb04y", dispute_id="txn_01hvcc93znj3mpqt1tenkjb04y",
        status=status, amount=Money(100, "USD"),
        occurred_at=utc("2024-04-15T08:54:10.646377Z"))]


@pytest.mark.parametrize("action", ["credit_reverse", "something_new"])
def test_other_adjustment_actions_change_nothing(action):
    assert translate(notification("adjustment.updated", approved(action=action))) == []


# --- topics and shape -----------------------------------------------------------------------------

@pytest.mark.parametrize("topic,name", [
    ("transaction.billed", "transaction.billed"),
    ("transaction.updated", "transaction.updated"),
    ("discount.created", "discount.created"),
    ("something.new", "transaction.completed"),
])
def test_unknown_topics_give_nothing(topic, name):
    assert translate(notification(topic, data(name))) == []


def test_body_that_is_not_a_notification_gives_nothing():
    assert translate(Delivery("x", "transaction.completed", payload=None, body=b"")) == []
    assert translate(Delivery("x", "transaction.completed", payload={"data": []}, body=b"")) == []


def test_delivery_rebuilt_by_the_inbox_takes_the_time_from_the_body():
    sub = data("subscription.canceled")
    sub["canceled_at"] = None
    [event] = translate(notification("subscription.canceled", sub, from_inbox=True))
    assert event.occurred_at == EVENT_DT


def test_delivery_rebuilt_by_the_inbox_translates_like_the_original():
    txn = data("transaction.completed")
    assert translate(notification("transaction.completed", txn, from_inbox=True)) == \
        translate(notification("transaction.completed", txn))


def test_every_timestamp_is_aware_utc():
    deliveries = [whole("transaction.completed.json"), whole("transaction.paid.json"),
                  notification("subscription.canceled", data("subscription.canceled")),
                  notification("adjustment.updated", approved())]
    for delivery in deliveries:
        for event in translate(delivery):
            assert event.occurred_at.utcoffset().total_seconds() == 0
