"""The issue's journey end to end, over HTTP, on SQLite and PostgreSQL: connect with REST keys
(faked store), orders with a click and a coupon, status changes, partial then full refund, a
forged delivery, and a backfill run twice."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import responses
from sqlmodel import func, select

from connectors.woocommerce import connector as woocommerce
from core.backfill import run as backfill
from core.db import get_db
from core.models import Click, Conversion, LedgerEntry, WebhookDelivery
from tests.connectors.woocommerce.helpers import body, headers, order
from tests.factories import new_program

API = "https://shop.example/wp-json/wc/v3"


@pytest.fixture
def connectors():
    return (woocommerce,)


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    api.ok("post", "/api/v1/promo-codes", {"partner_id": api.bob["id"], "code": "BOB10"})
    api.reward(event="sale", value=10)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/webhooks", json=[])
        for i in range(4):
            rsps.post(f"{API}/webhooks", json={"id": 300 + i})
        api.source = api.ok("post", "/api/v1/sources", {
            "platform": "woocommerce", "store_url": "https://shop.example",
            "consumer_key": "ck_x", "consumer_secret": "cs_y"}, 201)
        api.secret = [c.request for c in rsps.calls if c.request.method == "POST"][0]
    import json
    api.secret = json.loads(api.secret.body)["secret"]
    return api


def send(api, o, topic="order.updated", delivery="1", secret=None):
    raw = body(o)
    return api.client.post(f"/webhooks/woocommerce/{api.source['id']}", data=raw,
                           headers=headers(raw, topic, delivery, secret or api.secret))


def conv(app, order_id):
    with app.app_context(), get_db().session() as s:
        return s.exec(select(Conversion).where(Conversion.external_id == str(order_id))).one()


def click_for(api, app, ref):
    resp = api.client.post("/api/v1/track/click", json={"publishable_key": api.publishable_key,
                                                        "ref": ref})
    cid = resp.get_json()["click_id"]
    with app.app_context(), get_db().write() as s:
        c = s.get(Click, cid)
        c.created_at = datetime(2017, 3, 21, tzinfo=timezone.utc)  # the day before the sample order
    return cid


def test_connecting_shows_what_it_did(shop):
    assert shop.source["account"] == "https://shop.example"
    assert len(shop.source["actions"]) == 4 and "order.created" in shop.source["actions"][0]
    assert shop.source["webhook_url"].endswith(f"/webhooks/woocommerce/{shop.source['id']}")


def test_order_journey(app, shop):
    cid = click_for(shop, app, "ann")
    assert send(shop, order(status="pending", click=cid), "order.created", "1").status_code == 200
    assert send(shop, order(status="processing", click=cid), delivery="2").status_code == 200
    for n in range(3, 6):  # the same paid order updated again and again: one sale
        send(shop, order(status="completed", click=cid), delivery=str(n))
    c = conv(app, 727)
    assert (c.partner_id, c.amount, c.paid_total, c.commission) == (shop.ann["id"], 1800, 2935, 180)
    assert c.attribution["touch"] == "click" and c.attribution["evidence"] == "meta_data"
    # A partial refund of 10.00 of 29.35, then a second one, then the rest.
    send(shop, order(status="completed", click=cid, refunds=((731, "10.00"),)), delivery="6")
    assert conv(app, 727).commission == 119  # 180 * 19.35 / 29.35 = 118.67
    send(shop, order(status="completed", click=cid, refunds=((731, "10.00"), (732, "5.00"))), delivery="7")
    assert conv(app, 727).commission == 88  # 180 * 14.35 / 29.35 = 88.01
    send(shop, order(status="refunded", click=cid, refunds=((731, "10.00"), (732, "5.00"), (733, "14.35"))), delivery="8")
    c = conv(app, 727)
    assert (c.status, c.commission, c.refunded) == ("reversed", 0, 2935)
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(func.count()).select_from(Conversion)).one() == 1


def test_coupon_case_insensitive_and_cancel(app, shop):
    send(shop, order(status="processing", coupons=("bob10",), order_id=800), delivery="1")
    c = conv(app, 800)
    assert c.partner_id == shop.bob["id"] and c.attribution["touch"] == "promo_code"
    send(shop, order(status="cancelled", coupons=("bob10",), order_id=800), delivery="2")
    assert (conv(app, 800).status, conv(app, 800).commission) == ("reversed", 0)
    earn = shop.ok("get", f"/api/v1/partners/{shop.bob['id']}/earnings")
    assert (earn["pending"], earn["reversed"]) == (0, 180)


def test_billing_email_of_an_earlier_lead(app, shop):
    cid = click_for(shop, app, "ann")
    shop.ok("post", "/api/v1/track/lead", {"customer_id": "u1", "email": "John.Doe@example.com",
                                           "click_id": cid, "occurred_at": "2017-03-21T12:00:00Z"})
    send(shop, order(status="processing", order_id=900), delivery="1")
    c = conv(app, 900)
    assert c.partner_id == shop.ann["id"] and c.attribution["evidence"] == "email"


def test_forged_delivery_is_401_and_ping_is_answered(app, shop):
    assert send(shop, order(), secret="forged").status_code == 401
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(func.count()).select_from(WebhookDelivery)).one() == 0
    ping = shop.client.post(f"/webhooks/woocommerce/{shop.source['id']}", data=b"webhook_id=300",
                            content_type="application/x-www-form-urlencoded")
    assert ping.status_code == 200


def test_backfill_twice_changes_nothing(app, shop):
    orders = [order(status="completed", order_id=1000 + i, coupons=("BOB10",)) for i in range(3)]
    since = datetime.now(timezone.utc) - timedelta(days=30)
    with app.app_context():
        for expected_new in (3, 0):
            with responses.RequestsMock() as rsps:
                rsps.get(f"{API}/orders", json=orders, headers={"X-WP-TotalPages": "1"})
                counts = backfill(shop.source["id"], since, progress=False)
            assert (counts["new"], counts["seen"]) == (expected_new, 3)
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(func.count()).select_from(Conversion)).one() == 3
        assert s.exec(select(func.count()).select_from(LedgerEntry)).one() == 3


def test_removing_the_source_removes_its_webhooks(app, shop):
    with responses.RequestsMock() as rsps:
        for i in range(4):
            rsps.delete(f"{API}/webhooks/{300 + i}", json={})
        assert shop.delete(f"/api/v1/sources/{shop.source['id']}").status_code == 200
        assert len(rsps.calls) == 4


def test_a_failed_order_paid_later_still_counts(app, shop):
    """WooCommerce lets the customer pay a failed order again: the failure must not cancel it."""
    cid = click_for(shop, app, "ann")
    send(shop, order(status="failed", click=cid, order_id=950, paid=False), delivery="1")
    send(shop, order(status="processing", click=cid, order_id=950), delivery="2")
    c = conv(app, 950)
    assert (c.partner_id, c.status, c.commission) == (shop.ann["id"], "pending", 180)


def test_deleting_a_paid_order_reverses_it(app, shop):
    send(shop, order(status="processing", coupons=("BOB10",), order_id=960), delivery="1")
    raw = body({"id": 960})  # what WooCommerce sends for order.deleted
    resp = shop.client.post(f"/webhooks/woocommerce/{shop.source['id']}", data=raw,
                            headers=headers(raw, "order.deleted", "2", shop.secret))
    assert resp.status_code == 200
    assert (conv(app, 960).status, conv(app, 960).commission) == ("reversed", 0)


def test_order_attribution_landing_page_credits_the_partner(app, shop):
    o = order(status="processing", order_id=970, meta={
        "_wc_order_attribution_source_type": "referral",
        "_wc_order_attribution_session_entry": "https://shop.example/?ref=ann"})
    send(shop, o, delivery="1")
    c = conv(app, 970)
    assert c.partner_id == shop.ann["id"] and c.attribution["evidence"] == "order_attribution"


def test_unsigned_requests_store_at_most_our_pings(app, shop):
    url = f"/webhooks/woocommerce/{shop.source['id']}"
    form = "application/x-www-form-urlencoded"
    assert shop.client.post(url, data=b"webhook_id=999", content_type=form).status_code == 401
    assert shop.client.post(url, data=body(order()), content_type="application/json").status_code == 401
    for _ in range(2):
        assert shop.client.post(url, data=b"webhook_id=301", content_type=form).status_code == 200
    with app.app_context(), get_db().session() as s:
        rows = s.exec(select(WebhookDelivery)).all()
        assert [(r.topic, r.status) for r in rows] == [("ping", "processed")]
        assert s.exec(select(func.count()).select_from(Conversion)).one() == 0
