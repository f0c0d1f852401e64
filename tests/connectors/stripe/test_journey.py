"""Issue 4's "done" journey over HTTP, on SQLite and PostgreSQL: a click, a subscription Checkout
that carries it, the first payment, two renewals, a partial refund on one, a lost dispute on the
other, the cancellation, and a late renewal that earns nothing. All deliveries are signed Stripe
events in the current API shape, built from the published fixtures."""
from __future__ import annotations

from typing import Any

import pytest

from connectors.stripe import connector as stripe_connector
from tests.connectors.stripe import helpers as h
from tests.factories import new_program

BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.4 Safari/605.1.15")


@pytest.fixture
def connectors():
    return (stripe_connector,)


@pytest.fixture
def journey(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.reward(event="sale", type="percent", value=20, duration_months=12)
    api.source = api.ok("post", "/api/v1/sources", {"platform": "stripe",
                                                    "webhook_secret": h.SECRET}, 201)
    api.path = h.webhook_path(api.source)
    api.sent = 0
    return api


def send(api: Any, event_type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    """Sign and POST one event; returns the event so a test can send it again."""
    api.sent += 1
    event = h.stripe_event(f"evt_journey_{api.sent}", event_type, obj, created)
    resp = h.signed_post(api.client, api.path, event)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"received": True, "status": "processed", "duplicate": False}
    return event


def click(api: Any) -> str:
    resp = api.client.post("/api/v1/track/click", json={
        "publishable_key": api.publishable_key, "ref": "ann",
        "url": "https://shop.example/pricing?ref=ann"}, headers={"User-Agent": BROWSER})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["click_id"]


def test_subscription_journey(app, journey):
    api = journey
    click_id = click(api)
    t0 = h.now() + 60  # after the click; each later payment a month apart

    def paid(invoice_id: str, pi: str, at: int, reason: str) -> None:
        send(api, "invoice.paid", h.subscription_invoice(invoice_id, at, reason), at)
        send(api, "invoice_payment.paid", h.invoice_payment(invoice_id, pi, at), at)

    send(api, "checkout.session.completed", h.subscription_checkout(click_id, "in_first", t0), t0)
    paid("in_first", "pi_first", t0, "subscription_create")
    paid("in_renew_1", "pi_renew_1", t0 + 30 * h.DAY, "subscription_cycle")
    paid("in_renew_2", "pi_renew_2", t0 + 60 * h.DAY, "subscription_cycle")
    refund = send(api, "charge.refunded",
                  h.charge("ch_renew_1", "pi_renew_1", amount=6000, refunded=1500),
                  t0 + 40 * h.DAY)
    send(api, "charge.dispute.created",
         h.dispute("dp_renew_2", "ch_renew_2", "pi_renew_2", "needs_response"), t0 + 65 * h.DAY)
    held = h.conversions(app)["in_renew_2"]
    assert (held.commission, held.status) == (0, "held")
    send(api, "charge.dispute.closed",
         h.dispute("dp_renew_2", "ch_renew_2", "pi_renew_2", "lost"), t0 + 80 * h.DAY)
    send(api, "customer.subscription.deleted", h.canceled_subscription(t0 + 85 * h.DAY),
         t0 + 85 * h.DAY)
    paid("in_late", "pi_late", t0 + 90 * h.DAY, "subscription_cycle")

    convs = h.conversions(app)
    assert set(convs) == {"in_first", "in_renew_1", "in_renew_2", "in_late"}  # checkout: no sale
    got = {k: (c.partner_id, c.renewal, c.amount, c.commission, c.status)
           for k, c in convs.items()}
    ann = api.ann["id"]
    assert got == {
        "in_first": (ann, False, 5000, 1000, "pending"),                # 20% of 50.00 (no tax)
        "in_renew_1": (ann, True, 5000, 750, "partially_refunded"),     # a quarter refunded
        "in_renew_2": (ann, True, 5000, 0, "reversed"),                 # dispute lost
        "in_late": (ann, True, 5000, 0, "reversed"),                    # after cancellation
    }
    first = convs["in_first"]
    assert first.click_id == click_id  # the click the Checkout carried in client_reference_id
    assert all(c.subscription_id == h.SUBSCRIPTION for c in convs.values())
    assert api.ok("get", f"/api/v1/partners/{ann}/earnings") == {
        "currency": "USD", "pending": 1750, "approved": 0, "reversed": 1250, "paid": 0,
        "other_currencies": {}}
    listed = api.ok("get", f"/api/v1/conversions?partner_id={ann}")["data"]
    assert sorted((c["external_id"], c["commission"], c["status"]) for c in listed) == sorted(
        (k, v[3], v[4]) for k, v in got.items())

    # The same event again (Stripe retries): stored once, nothing changes.
    before, rows = h.state(app), h.counts(app)
    again = h.signed_post(api.client, api.path, refund)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert (h.state(app), h.counts(app)) == (before, rows)


def test_forged_and_stale_signatures_are_refused_and_store_nothing(app, journey):
    api = journey
    at = h.now()
    invoice = h.subscription_invoice("in_forged", at, "subscription_create")
    invoice["metadata"] = {"tp_ref": "ann"}
    event = h.stripe_event("evt_forged", "invoice.paid", invoice, at)
    before = h.counts(app)

    forged = h.signed_post(api.client, api.path, event, secret="whsec_someone_else")
    stale = h.signed_post(api.client, api.path, event, signed_at=at - 301)
    unsigned = api.client.post(api.path, json=event)

    for resp in (forged, stale, unsigned):
        assert resp.status_code == 401, resp.get_json()
        assert resp.get_json()["error"]["code"] == "invalid_signature"
    assert h.counts(app) == before == {"deliveries": 0, "conversions": 0, "ledger": 0}
    # Signed within the tolerance, the same event is taken.
    assert h.signed_post(api.client, api.path, event, signed_at=at - 290).status_code == 200
    assert h.counts(app)["conversions"] == 1


def test_manual_setup_replaces_the_secret_with_patch(app, journey):
    """The merchant rolls the endpoint's secret in Stripe and PATCHes it in: the old one is refused
    from then on, the new one taken, and the source keeps its id and webhook URL."""
    api = journey
    at = h.now()
    invoice = h.subscription_invoice("in_rolled", at, "subscription_create")
    event = h.stripe_event("evt_rolled", "invoice.paid", invoice, at)
    patched = api.ok("patch", f"/api/v1/sources/{api.source['id']}",
                     {"webhook_secret": "whsec_rolled"})
    assert patched["webhook_url"] == api.source["webhook_url"]
    assert h.signed_post(api.client, api.path, event).status_code == 401
    assert h.counts(app)["deliveries"] == 0
    resp = h.signed_post(api.client, api.path, event, secret="whsec_rolled")
    assert resp.status_code == 200 and resp.get_json()["status"] == "processed"
