"""Issue 5's "done" journey over HTTP, on SQLite and PostgreSQL.

A partner with a 20 % recurring reward; a tracked click; a checkout that carries it in
`custom_data.tp_click` (transaction.paid, then transaction.completed, then the subscription);
three renewals whose custom_data is empty (`null`, `{}`) or names another partner's click; a refund
pending Paddle's approval, then approved; a chargeback and its reversal; the cancellation; a renewal
dated after it. Then the same notifications in other arrival orders, forged and stale signatures,
the backfill against a fake Paddle API (`responses`), and a free-trial checkout (zero total) that
arrives after a renewal naming another partner.

Every notification is a published fixture, loaded and edited in code, signed like Paddle signs.
The signature clock (`webhooks._clock`) and the click recorder's clock are fixed, so the dates are
Paddle's 2024 sample dates and nothing reads the real time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import responses
from responses import matchers
from sqlalchemy import func
from sqlmodel import select

from connectors.paddle import connector as paddle
from connectors.paddle import webhooks
from core import backfill
from core.db import get_db
from core.models import LedgerEntry, WebhookDelivery
from tests.conftest import fixture_json
from tests.factories import Api, new_program

SECRET = "pdl_ntfset_01journey_realsecretkey"
PLACEHOLDER = "placeholder-until-paddle-gives-the-secret"
NOW = 1_713_000_000  # the signature clock (2024-04-13); Paddle signs at send time
API_URL = "https://api.paddle.com"
API_KEY = "pdl_live_apikey_01journey_secretpart"
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.4 Safari/605.1.15")

FIRST = "txn_01hv8wptq8987qeep44cyrewp9"   # the samples' first transaction, subscription, customer
SUB = "sub_01hv8x29kz0t586xy6zn1a62ny"
CUSTOMER = "ctm_01hv6y1jedq4p1n0yqn5ba3ky4"
T0 = datetime(2024, 4, 12, 10, 18, 47, 635628, tzinfo=timezone.utc)  # the sample's captured_at
DAY, SECOND = timedelta(days=1), timedelta(seconds=1)

# Revenue 599.00 = total 652.15 - tax 53.15; 20 % of it is 119.80 per payment.
TOTAL, TAX, COMMISSION = 65215, 5315, 11980
REFUND, REFUND_TAX = 10000, 887  # a partial refund of 100.00 on the first renewal
# 119.80 x (652.15 - 100.00) / 652.15 = 101.4303..., rounded half-up to the cent
AFTER_REFUND = 10143


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- notifications, built from the published samples ----------------------------------------------

@dataclass(frozen=True)
class Note:
    name: str   # stable, so a notification sent in another order keeps its event id
    topic: str
    data: dict[str, Any]
    at: datetime


def transaction(sample: str, txn_id: str, paid_at: datetime, origin: str,
                custom_data: dict[str, Any] | None) -> dict[str, Any]:
    txn = fixture_json("paddle", f"{sample}.data.json")
    txn.update(id=txn_id, origin=origin, custom_data=custom_data, billed_at=iso(paid_at),
               created_at=iso(paid_at - timedelta(minutes=5)),
               updated_at=iso(paid_at + timedelta(seconds=2)))
    txn["payments"][0]["captured_at"] = iso(paid_at)
    return txn


def renewal(txn_id: str, days: int, custom_data: dict[str, Any] | None) -> dict[str, Any]:
    """A later payment of the subscription; the completed sample names it already."""
    txn = transaction("transaction.completed", txn_id, T0 + days * DAY, "subscription_recurring",
                      custom_data)
    assert txn["subscription_id"] == SUB and txn["customer_id"] == CUSTOMER
    return txn


def adjustment(sample: str, adj_id: str, txn_id: str, action: str, status: str, total: int,
               tax: int, at: datetime) -> dict[str, Any]:
    adj = fixture_json("paddle", f"{sample}.data.json")
    adj.update(id=adj_id, transaction_id=txn_id, subscription_id=SUB, customer_id=CUSTOMER,
               action=action, status=status, created_at=iso(at), updated_at=iso(at),
               tax_rates_used=[])
    adj["totals"].update(total=str(total), tax=str(tax), subtotal=str(total - tax))
    item = adj["items"][0]
    item.update(type="full" if total == TOTAL else "partial", amount=str(total))
    item["totals"] = {"total": str(total), "tax": str(tax), "subtotal": str(total - tax)}
    return adj


def subscription(sample: str, at: datetime, custom_data: dict[str, Any] | None,
                 **changes: Any) -> dict[str, Any]:
    sub = fixture_json("paddle", f"{sample}.data.json")
    sub.update(id=SUB, customer_id=CUSTOMER, custom_data=custom_data, updated_at=iso(at), **changes)
    return sub


def journey_notes(ann_click: str, bob_click: str) -> list[Note]:
    """The issue's journey, in the order Paddle would send it."""
    checkout = {"tp_click": ann_click}
    canceled_at = T0 + 100 * DAY
    return [
        # transaction.paid comes first and names no subscription yet; completed names it
        Note("paid", "transaction.paid",
             transaction("transaction.paid", FIRST, T0, "web", checkout), T0),
        Note("completed", "transaction.completed",
             transaction("transaction.completed", FIRST, T0, "web", checkout), T0 + 2 * SECOND),
        Note("sub_created", "subscription.created",
             subscription("subscription.created", T0 + 10 * SECOND, checkout,
                          transaction_id=FIRST), T0 + 10 * SECOND),
        Note("sub_activated", "subscription.activated",
             subscription("subscription.activated", T0 + 10 * SECOND, checkout), T0 + 10 * SECOND),
        # renewals: custom_data null, {}, and one naming Bob's click (the customer came back
        # through Bob's link five days before it)
        Note("renewal_1", "transaction.completed", renewal("txn_renewal_1", 30, None),
             T0 + 30 * DAY),
        Note("refund_pending", "adjustment.created",
             adjustment("adjustment.created", "adj_refund", "txn_renewal_1", "refund",
                        "pending_approval", REFUND, REFUND_TAX, T0 + 40 * DAY), T0 + 40 * DAY),
        Note("refund_approved", "adjustment.updated",
             adjustment("adjustment.updated", "adj_refund", "txn_renewal_1", "refund",
                        "approved", REFUND, REFUND_TAX, T0 + 41 * DAY), T0 + 41 * DAY),
        Note("renewal_2", "transaction.completed", renewal("txn_renewal_2", 60, {}), T0 + 60 * DAY),
        Note("chargeback", "adjustment.created",
             adjustment("adjustment.created", "adj_chargeback", "txn_renewal_2", "chargeback",
                        "approved", TOTAL, TAX, T0 + 70 * DAY), T0 + 70 * DAY),
        Note("chargeback_reverse", "adjustment.created",
             adjustment("adjustment.created", "adj_chargeback_rev", "txn_renewal_2",
                        "chargeback_reverse", "approved", TOTAL, TAX, T0 + 80 * DAY),
             T0 + 80 * DAY),
        Note("renewal_3", "transaction.completed",
             renewal("txn_renewal_3", 90, {"tp_click": bob_click}), T0 + 90 * DAY),
        Note("canceled", "subscription.canceled",
             subscription("subscription.canceled", canceled_at, None, status="canceled",
                          canceled_at=iso(canceled_at)), canceled_at),
        Note("renewal_late", "transaction.completed", renewal("txn_renewal_late", 120, None),
             T0 + 120 * DAY),
    ]


# --- the shop -------------------------------------------------------------------------------------

@pytest.fixture
def connectors():
    return (paddle,)


@pytest.fixture
def shop(app, monkeypatch) -> Api:
    """Ann and Bob, a 20 % reward on every payment for ever, a Paddle source connected the manual
    way (placeholder secret, then PATCH the destination's real secret key, as the README says)."""
    monkeypatch.setattr(webhooks, "_clock", lambda: NOW)
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    api.reward(event="sale", type="percent", value=20, duration_months=None)
    api.source = api.ok("post", "/api/v1/sources", {"platform": "paddle",
                                                    "webhook_secret": PLACEHOLDER}, 201)
    assert f"PATCH /api/v1/sources/{api.source['id']}" in api.source["actions"][-1]
    api.ok("patch", f"/api/v1/sources/{api.source['id']}", {"webhook_secret": SECRET})
    api.ann_click = track_click(app, api, "ann", T0 - timedelta(hours=1))
    api.bob_click = track_click(app, api, "bob", T0 + 85 * DAY)
    api.notes = journey_notes(api.ann_click, api.bob_click)
    return api


def track_click(app: Any, api: Api, ref: str, at: datetime) -> str:
    """`POST /api/v1/track/click`, with the recorder's own clock argument set to `at`."""
    recorder = app.extensions["touchpoint"]["clicks"]
    real = recorder.record
    recorder.record = lambda **kw: real(**{**kw, "now": at})
    try:
        resp = api.client.post("/api/v1/track/click", json={
            "publishable_key": api.publishable_key, "ref": ref,
            "url": f"https://shop.example/pricing?ref={ref}"}, headers={"User-Agent": BROWSER})
    finally:
        del recorder.record
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["click_id"]


def signed(body: bytes, secret: str = SECRET, ts: int = NOW) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Paddle-Signature": f"ts={ts};h1={digest}", "Content-Type": "application/json"}


def body_of(note: Note) -> bytes:
    return json.dumps({"event_id": f"evt_{note.name}", "event_type": note.topic,
                       "occurred_at": iso(note.at), "notification_id": f"ntf_{note.name}",
                       "data": note.data}).encode()


def post(api: Api, body: bytes, headers: dict[str, str]) -> Any:
    return api.client.post(f"/webhooks/paddle/{api.source['id']}", data=body, headers=headers)


def send(api: Api, note: Note) -> None:
    resp = post(api, body_of(note), signed(body_of(note)))
    assert resp.status_code == 200, (note.name, resp.get_json())
    assert resp.get_json() == {"received": True, "status": "processed", "duplicate": False}, \
        (note.name, resp.get_json())


def note(api: Api, name: str) -> Note:
    return next(n for n in api.notes if n.name == name)


def conversions(api: Api) -> dict[str, dict[str, Any]]:
    listed = api.ok("get", "/api/v1/conversions?limit=1000")["data"]
    return {c["external_id"]: c for c in listed}


def credited(api: Api) -> dict[str, tuple[str | None, int, str]]:
    """external id -> (partner, commission, status), as the API reports them."""
    return {ref: (c["partner_id"], c["commission"], c["status"])
            for ref, c in conversions(api).items()}


def earnings(api: Api, partner: dict[str, Any]) -> dict[str, Any]:
    return api.ok("get", f"/api/v1/partners/{partner['id']}/earnings")


def final(api: Api) -> dict[str, tuple[str | None, int, str]]:
    ann = api.ann["id"]
    return {
        FIRST: (ann, COMMISSION, "pending"),
        "txn_renewal_1": (ann, AFTER_REFUND, "partially_refunded"),
        "txn_renewal_2": (ann, COMMISSION, "pending"),      # chargeback, then its reversal
        "txn_renewal_3": (ann, COMMISSION, "pending"),      # Bob's click in custom_data
        "txn_renewal_late": (ann, 0, "reversed"),            # after the cancellation
    }


def ledger_rows(app: Any) -> int:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(LedgerEntry)).one()


def stored_deliveries(app: Any) -> int:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(WebhookDelivery)).one()


# --- the journey, in Paddle's order ---------------------------------------------------------------

def test_journey_in_order(app, shop):
    ann = shop.ann["id"]
    for n in shop.notes[:2]:  # transaction.paid, then transaction.completed of the same payment
        send(shop, n)
    [first] = conversions(shop).values()
    assert (first["external_id"], first["amount"], first["currency"]) == (FIRST, TOTAL - TAX, "USD")
    assert first["subscription_id"] == SUB  # filled in by the completed notice
    assert (first["partner_id"], first["commission"], first["renewal"]) == (ann, COMMISSION, False)
    assert first["attribution"]["touch"] == "click"
    assert first["attribution"]["click_id"] == shop.ann_click

    for n in shop.notes[2:5]:  # subscription created/activated, the first renewal
        send(shop, n)
    renewal_1 = conversions(shop)["txn_renewal_1"]
    assert renewal_1["renewal"] is True and renewal_1["attribution"]["touch"] == "subscription"
    assert credited(shop)["txn_renewal_1"] == (ann, COMMISSION, "pending")

    send(shop, note(shop, "refund_pending"))  # not approved yet: nothing changes
    assert credited(shop)["txn_renewal_1"] == (ann, COMMISSION, "pending")
    assert conversions(shop)["txn_renewal_1"]["refunded"] == 0
    send(shop, note(shop, "refund_approved"))
    assert credited(shop)["txn_renewal_1"] == (ann, AFTER_REFUND, "partially_refunded")
    assert conversions(shop)["txn_renewal_1"]["refunded"] == REFUND

    send(shop, note(shop, "renewal_2"))
    assert credited(shop)["txn_renewal_2"] == (ann, COMMISSION, "pending")
    send(shop, note(shop, "chargeback"))
    assert credited(shop)["txn_renewal_2"] == (ann, 0, "reversed")
    send(shop, note(shop, "chargeback_reverse"))
    assert credited(shop)["txn_renewal_2"] == (ann, COMMISSION, "pending")

    send(shop, note(shop, "renewal_3"))
    assert credited(shop)["txn_renewal_3"] == (ann, COMMISSION, "pending")
    assert conversions(shop)["txn_renewal_3"]["attribution"]["touch"] == "subscription"

    before_cancel = credited(shop)
    send(shop, note(shop, "canceled"))
    assert credited(shop) == before_cancel  # earlier payments keep their commission
    send(shop, note(shop, "renewal_late"))

    assert credited(shop) == final(shop)
    ann_earns = earnings(shop, shop.ann)
    assert ann_earns["pending"] == COMMISSION + AFTER_REFUND + COMMISSION + COMMISSION
    assert ann_earns["reversed"] == COMMISSION - AFTER_REFUND  # the chargeback came back
    assert (ann_earns["approved"], ann_earns["paid"]) == (0, 0)
    bob_earns = earnings(shop, shop.bob)
    assert (bob_earns["pending"], bob_earns["reversed"]) == (0, 0)

    # Paddle retrying any of them changes nothing
    entries = ledger_rows(app)
    for n in shop.notes:
        resp = post(shop, body_of(n), signed(body_of(n)))
        assert resp.status_code == 200 and resp.get_json()["duplicate"] is True
    assert credited(shop) == final(shop) and ledger_rows(app) == entries


# --- the same notifications in other orders -------------------------------------------------------

ORDERS = {
    # the cancellation first; the refund approved before it was pending and before its payment;
    # the chargeback reversal before the chargeback; renewals (one naming Bob) before the checkout
    "issue": ["canceled", "refund_approved", "renewal_late", "renewal_3", "chargeback_reverse",
              "renewal_2", "chargeback", "renewal_1", "refund_pending", "completed",
              "sub_activated", "sub_created", "paid"],
    # the subscription's notices before any payment, then everything backwards
    "subscription_first": ["sub_activated", "sub_created", "renewal_late", "canceled",
                           "chargeback", "chargeback_reverse", "renewal_3", "renewal_2",
                           "refund_approved", "refund_pending", "renewal_1", "completed", "paid"],
    "reversed": ["renewal_late", "canceled", "renewal_3", "chargeback_reverse", "chargeback",
                 "renewal_2", "refund_approved", "refund_pending", "renewal_1", "sub_activated",
                 "sub_created", "completed", "paid"],
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_any_arrival_order_gives_the_same_commissions(app, shop, order):
    names = ORDERS[order]
    assert sorted(names) == sorted(n.name for n in shop.notes)
    for name in names:
        send(shop, note(shop, name))
    assert credited(shop) == final(shop)
    assert conversions(shop)["txn_renewal_1"]["refunded"] == REFUND
    # what each partner has earned net is the same; only the reversed bucket remembers the path
    assert earnings(shop, shop.ann)["pending"] == COMMISSION * 3 + AFTER_REFUND
    assert earnings(shop, shop.bob)["pending"] == 0


# --- signatures -----------------------------------------------------------------------------------

def test_forged_stale_and_replaced_secrets_get_401_and_store_nothing(app, shop):
    body = body_of(shop.notes[1])
    refused = {
        "forged": signed(body, secret="pdl_ntfset_01forged"),
        "stale": signed(body, ts=NOW - 3600),  # right secret, an hour old
        "future": signed(body, ts=NOW + 3600),
        "placeholder": signed(body, secret=PLACEHOLDER),  # the secret PATCH replaced
        "tampered": signed(body.replace(b'"65215"', b'"99999"')),
        "missing": {"Content-Type": "application/json"},
    }
    for why, headers in refused.items():
        resp = post(shop, body, headers)
        assert resp.status_code == 401, why
        assert resp.get_json()["error"]["code"] == "invalid_signature", why
    assert stored_deliveries(app) == 0 and conversions(shop) == {} and ledger_rows(app) == 0
    send(shop, shop.notes[1])  # the same body, properly signed, goes through
    assert stored_deliveries(app) == 1 and list(conversions(shop)) == [FIRST]


# --- backfill -------------------------------------------------------------------------------------

def listing(items: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    return {"data": items, "meta": {"request_id": "req_journey", "pagination": {
        "per_page": 2, "next": next_url, "has_more": next_url is not None,
        "estimated_total": 4}}}


def fake_paddle(rsps: responses.RequestsMock, api: Api) -> None:
    """Transactions and adjustments, two pages each, as Paddle's API lists them."""
    page2 = f"{API_URL}/transactions?after=txn_renewal_1&status=completed%2Cpaid"
    rsps.get(f"{API_URL}/transactions",
             json=listing([note(api, "completed").data, note(api, "renewal_1").data], page2),
             match=[matchers.query_param_matcher({"status": "completed,paid"}, strict_match=False)])
    rsps.get(page2, json=listing([note(api, "renewal_2").data, note(api, "renewal_3").data]),
             match=[matchers.query_param_matcher({"after": "txn_renewal_1"}, strict_match=False)])
    adj2 = f"{API_URL}/adjustments?after=adj_refund&status=approved"
    rsps.get(f"{API_URL}/adjustments", json=listing([note(api, "refund_approved").data], adj2),
             match=[matchers.query_param_matcher({"status": "approved"}, strict_match=False)])
    rsps.get(adj2, json=listing([note(api, "chargeback").data]),
             match=[matchers.query_param_matcher({"after": "adj_refund"}, strict_match=False)])


def test_backfill_through_the_sdk_and_a_second_run_changes_nothing(app, shop):
    ann = shop.ann["id"]
    with responses.RequestsMock() as rsps:
        # connecting with an API key (and the destination's secret) checks the key once
        rsps.get(f"{API_URL}/transactions", json=listing([]),
                 match=[matchers.query_param_matcher({"per_page": "1"}, strict_match=False)])
        source = shop.ok("post", "/api/v1/sources", {"platform": "paddle", "api_key": API_KEY,
                                                     "webhook_secret": SECRET}, 201)
        assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {API_KEY}"
    since = T0 - DAY

    with responses.RequestsMock() as rsps:
        fake_paddle(rsps, shop)
        with app.app_context():
            first = backfill.run(source["id"], since, progress=False)
        assert len(rsps.calls) == 4  # two pages of each
    assert first == {"seen": 6, "new": 6, "already_stored": 0, "failed": 0}
    expected = {
        FIRST: (ann, COMMISSION, "pending"),
        "txn_renewal_1": (ann, AFTER_REFUND, "partially_refunded"),
        "txn_renewal_2": (ann, 0, "reversed"),          # charged back
        "txn_renewal_3": (ann, COMMISSION, "pending"),  # Bob's click, still Ann's customer
    }
    assert credited(shop) == expected
    assert all(c["subscription_id"] == SUB for c in conversions(shop).values())
    ann_earns = earnings(shop, shop.ann)
    assert ann_earns["pending"] == COMMISSION * 2 + AFTER_REFUND
    assert ann_earns["reversed"] == COMMISSION + (COMMISSION - AFTER_REFUND)
    assert earnings(shop, shop.bob)["pending"] == 0
    entries, stored = ledger_rows(app), stored_deliveries(app)

    with responses.RequestsMock() as rsps:
        fake_paddle(rsps, shop)
        with app.app_context():
            again = backfill.run(source["id"], since, progress=False)
    assert again == {"seen": 6, "new": 0, "already_stored": 6, "failed": 0}
    assert credited(shop) == expected
    assert (ledger_rows(app), stored_deliveries(app)) == (entries, stored)
    assert earnings(shop, shop.ann) == ann_earns


# --- a free trial: the checkout is no sale, only evidence ---------------------------------------

def trial_checkout(api: Api) -> Note:
    """The first transaction of a trial totals zero: it is evidence (Identify), not a sale."""
    txn = transaction("transaction.completed", FIRST, T0, "web", {"tp_click": api.ann_click})
    for key in ("subtotal", "tax", "total", "grand_total", "earnings", "fee"):
        txn["details"]["totals"][key] = "0"
    return Note("trial", "transaction.completed", txn, T0)


@pytest.mark.parametrize("late", [False, True], ids=["in_order", "checkout_late"])
def test_trial_checkout_decides_renewals_in_any_order(app, shop, late):
    notes = [trial_checkout(shop), note(shop, "sub_activated"), note(shop, "renewal_3")]
    for n in (notes[2:] + notes[:2]) if late else notes:
        send(shop, n)
    assert credited(shop) == {"txn_renewal_3": (shop.ann["id"], COMMISSION, "pending")}
