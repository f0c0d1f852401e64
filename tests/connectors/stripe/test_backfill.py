"""`touchpoint backfill` for a Stripe source, end to end: the source is connected with an API key
(Touchpoint creates the webhook endpoint), then `core.backfill.run` lists past events through the
SDK from a fake api.stripe.com (two pages, newest first, as Stripe lists them) and every event
goes down the webhook path. A second run stores nothing new and changes nothing."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.stripe import connector as stripe_connector
from core import backfill
from tests.connectors.stripe import helpers as h
from tests.factories import new_program

API = "https://api.stripe.com/v1"


@pytest.fixture
def connectors():
    return (stripe_connector,)


@pytest.fixture
def fake():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def history(start: int) -> list[dict[str, Any]]:
    """A subscription's first payment as Stripe emits it, oldest first: the invoice is paid before
    the Checkout Session completes, so the sale arrives with no referral and the session's
    `metadata.tp_ref` credits it afterwards; then part of it is refunded."""
    invoice = h.subscription_invoice("in_backfill", start, "subscription_create")
    session = h.subscription_checkout("", "in_backfill", start + 1)
    session.update(client_reference_id=None, metadata={"tp_ref": "ann"})
    return [
        h.stripe_event("evt_bf_1", "invoice.paid", invoice, start),
        h.stripe_event("evt_bf_2", "invoice_payment.paid",
                       h.invoice_payment("in_backfill", "pi_backfill", start), start),
        h.stripe_event("evt_bf_3", "checkout.session.completed", session, start + 1),
        h.stripe_event("evt_bf_4", "charge.refunded",
                       h.charge("ch_backfill", "pi_backfill", amount=6000, refunded=3000),
                       start + 60),
    ]


def fake_events_list(fake: Any, events: list[dict[str, Any]]) -> None:
    """GET /v1/events, newest first, two per page; the SDK asks for the next page with
    `starting_after=<last id seen>`."""
    newest = list(reversed(events))
    pages = {None: (newest[:2], True), newest[1]["id"]: (newest[2:], False)}

    def listing(request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        data, has_more = pages[query.get("starting_after", [None])[0]]
        body = {"object": "list", "url": "/v1/events", "has_more": has_more, "data": data}
        return 200, {}, json.dumps(body)

    fake.add_callback(responses.GET, f"{API}/events", callback=listing)


def test_backfill_twice(app, fake):
    api = new_program(app)
    ann = api.partner("Ann", key="ann")
    api.reward(event="sale", type="percent", value=20, duration_months=12)
    endpoint = h.fx("fixtures3.bundle.json")["resources"]["webhook_endpoint"]
    endpoint.update(secret="whsec_from_stripe")
    fake.post(f"{API}/webhook_endpoints", json=endpoint)
    source = api.ok("post", "/api/v1/sources", {"platform": "stripe", "api_key": "rk_test_bf"}, 201)

    start = h.now() - 3600
    fake_events_list(fake, history(start))
    # The invoice comes first with no referral: core asks lookup_referral, which reads the customer.
    fake.get(f"{API}/customers/{h.CUSTOMER}", json=h.fx("customer.json"))
    # Once the session credits the customer, the attribution is written back to Stripe.
    fake.post(f"{API}/customers/{h.CUSTOMER}", json=h.fx("customer.json"))

    since = datetime.fromtimestamp(start, tz=timezone.utc) - timedelta(days=1)
    with app.app_context():
        first = backfill.run(source["id"], since, progress=False)
    assert first == {"seen": 4, "new": 4, "already_stored": 0, "failed": 0}

    [conv] = h.conversions(app).values()
    assert (conv.external_id, conv.partner_id, conv.amount, conv.refunded) == (
        "in_backfill", ann["id"], 5000, 3000)
    assert (conv.commission, conv.status) == (500, "partially_refunded")  # 20% of 50.00, halved
    stored = h.counts(app)
    assert stored["deliveries"] == 4 and stored["ledger"] >= 2  # earned, then partly reversed
    assert api.ok("get", f"/api/v1/partners/{ann['id']}/earnings")["pending"] == 500
    lists = [c for c in fake.calls if urlsplit(c.request.url).path == "/v1/events"]
    assert parse_qs(urlsplit(lists[0].request.url).query)["created[gte]"] == [
        str(int(since.timestamp()))]
    written = [c for c in fake.calls if c.request.method == "POST"
               and c.request.url.endswith(f"/customers/{h.CUSTOMER}")]
    assert len(written) == 1
    assert parse_qs(written[0].request.body) == {"metadata[tp_partner]": ["ann"]}

    calls_before, state_before = len(fake.calls), h.state(app)
    with app.app_context():
        second = backfill.run(source["id"], since, progress=False)
    assert second == {"seen": 4, "new": 0, "already_stored": 4, "failed": 0}
    assert (h.state(app), h.counts(app)) == (state_before, stored)
    # Only the two pages were listed again: nothing was looked up or written back twice.
    assert [urlsplit(c.request.url).path for c in fake.calls[calls_before:]] == ["/v1/events"] * 2


def test_webhook_promotion_code_id_is_resolved_to_the_partner_code(app, fake):
    """A webhook names the promotion code by id; the partner registered the code customers type.
    With an API key, core's lookup_referral fetches the code and credits the partner."""
    api = new_program(app)
    ann = api.partner("Ann", key="ann")
    api.ok("post", "/api/v1/promo-codes", {"partner_id": ann["id"], "code": "ANN20"}, 201)
    api.reward(event="sale", type="percent", value=20)
    endpoint = h.fx("fixtures3.bundle.json")["resources"]["webhook_endpoint"]
    endpoint.update(secret=h.SECRET)
    fake.post(f"{API}/webhook_endpoints", json=endpoint)
    source = api.ok("post", "/api/v1/sources", {"platform": "stripe", "api_key": "rk_test_bf"}, 201)
    promo = h.fx("promotion_code.json")
    promo.update(id="promo_ann", code="ANN20")
    fake.get(f"{API}/promotion_codes/promo_ann", json=promo)
    fake.get(f"{API}/customers/{h.CUSTOMER}", json=h.fx("customer.json"))
    fake.post(f"{API}/customers/{h.CUSTOMER}", json=h.fx("customer.json"))  # the write-back

    at = h.now()
    invoice = h.subscription_invoice("in_promo", at, "subscription_create")
    discount = h.fx("discount.json")
    discount.update(promotion_code="promo_ann", invoice="in_promo")
    invoice["discounts"] = [discount]
    resp = h.signed_post(api.client, h.webhook_path(source),
                         h.stripe_event("evt_promo", "invoice.paid", invoice, at))
    assert resp.get_json()["status"] == "processed"

    conv = h.conversions(app)["in_promo"]
    assert (conv.partner_id, conv.commission) == (ann["id"], 1000)
    assert conv.hints["lookup"]["promo_codes"] == ["ANN20"]
