"""Whole journeys through the public API: click, lead, sale, renewal, refund, under both models."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.db import get_db
from core.jobs import approve_due
from tests.factories import new_program

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def iso(dt: datetime) -> str:
    return dt.isoformat()


def click(api, ref=None, link=None, prev=None, ua="Mozilla/5.0 (X11; Linux x86_64) Chrome/120"):
    body = {"publishable_key": api.publishable_key, "url": "https://shop.example/?ref=x"}
    if ref:
        body["ref"] = ref
    if link:
        body["link"] = link
    if prev:
        body["previous_click_id"] = prev
    resp = api.client.post("/api/v1/track/click", json=body, headers={"User-Agent": ua})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["click_id"]


def set_click_time(app, click_id, when):
    from core.models import Click

    with app.app_context(), get_db().write() as s:
        c = s.get(Click, click_id)
        c.created_at = when
        s.add(c)


def sale(api, order, amount, at, **kw):
    body = {"customer_id": kw.pop("customer", "c1"), "order_id": order, "amount": amount,
            "currency": kw.pop("currency", "USD"), "occurred_at": iso(at), **kw}
    resp = api.post("/api/v1/track/sale", json=body)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    api.reward(event="sale", value=10)
    return api


def test_click_sale_refund_journey(app, shop):
    c = click(shop, ref="ann")
    set_click_time(app, c, T0 - timedelta(days=2))
    lead = shop.ok("post", "/api/v1/track/lead", {"customer_id": "c1", "click_id": c,
                                                  "email": "Cat@Example.com",
                                                  "occurred_at": iso(T0 - timedelta(days=1))})
    assert lead["partner_id"] == shop.ann["id"] and lead["event"] == "sign_up"
    conv = sale(shop, "o1", 10005, T0)
    assert conv["partner_id"] == shop.ann["id"]
    assert conv["commission"] == 1001  # 10% of 100.05 = 10.005 -> half-up 10.01
    assert conv["attribution"]["touch"] == "customer"
    assert conv["status"] == "pending"
    again = sale(shop, "o1", 10005, T0)
    assert again["id"] == conv["id"] and again["commission"] == 1001
    ref = shop.ok("post", "/api/v1/track/refund", {"order_id": "o1", "amount": 2501,
                                                   "refund_id": "r1"})
    assert ref["status"] == "partially_refunded" and ref["refunded"] == 2501
    assert ref["commission"] == 751  # 1001 * 7504/10005 = 750.75 -> 751
    shop.ok("post", "/api/v1/track/refund", {"order_id": "o1", "amount": 2501, "refund_id": "r1"})
    full = shop.ok("post", "/api/v1/track/refund", {"order_id": "o1"})
    assert full["status"] == "reversed" and full["commission"] == 0
    earn = shop.ok("get", f"/api/v1/partners/{shop.ann['id']}/earnings")
    assert earn == {"currency": "USD", "pending": 0, "approved": 0, "reversed": 1001, "paid": 0,
                    "other_currencies": {}}


@pytest.mark.parametrize("model,winner", [("last_touch", "bob"), ("first_touch", "ann")])
def test_models_choose_between_clicks_of_one_visitor(app, shop, model, winner):
    shop.ok("patch", "/api/v1/program", {"attribution_model": model})
    first = click(shop, ref="ann")
    second = click(shop, ref="bob", prev=first)
    set_click_time(app, first, T0 - timedelta(days=5))
    set_click_time(app, second, T0 - timedelta(days=1))
    conv = sale(shop, "o1", 5000, T0, click_id=second)
    assert conv["partner_id"] == getattr(shop, winner)["id"]
    assert conv["attribution"]["model"] == model and conv["attribution"]["touch"] == "click"
    assert conv["commission"] == 500


def test_window_and_promo_priority(app, shop):
    shop.ok("post", "/api/v1/promo-codes", {"partner_id": shop.bob["id"], "code": "BOB10"})
    old = click(shop, ref="ann")
    set_click_time(app, old, T0 - timedelta(days=31))
    conv = sale(shop, "o1", 1000, T0, click_id=old)
    assert conv["partner_id"] is None and "window" in conv["attribution"]["reason"]
    fresh = click(shop, ref="ann")
    set_click_time(app, fresh, T0 - timedelta(days=1))
    conv = sale(shop, "o2", 1000, T0, customer="c2", click_id=fresh, promo_code="bob10")
    assert conv["partner_id"] == shop.bob["id"] and conv["attribution"]["touch"] == "promo_code"
    shop.ok("patch", "/api/v1/program", {"promo_code_priority": False})
    conv = sale(shop, "o3", 1000, T0, customer="c3", click_id=fresh, promo_code="BOB10")
    assert conv["partner_id"] == shop.ann["id"]


def test_refund_before_sale_waits(app, shop):
    c = click(shop, ref="ann")
    set_click_time(app, c, T0 - timedelta(hours=1))
    resp = shop.post("/api/v1/track/refund", json={"order_id": "o9", "amount": 500, "refund_id": "r"})
    assert resp.status_code == 202 and resp.get_json()["status"] == "waiting_for_sale"
    conv = sale(shop, "o9", 2000, T0, click_id=c)
    assert conv["refunded"] == 500 and conv["commission"] == 150
    assert conv["status"] == "partially_refunded"


def test_recurring_duration_and_customer_lock(app, shop):
    shop.reward(event="sale", value=20, duration_months=2, partner_tag="vip")
    vip = shop.partner("Vic", key="vic", tags=["vip"])
    c = click(shop, ref="vic")
    set_click_time(app, c, T0 - timedelta(hours=1))
    first = sale(shop, "inv1", 1000, T0, click_id=c, subscription_id="sub1")
    assert first["partner_id"] == vip["id"] and first["commission"] == 200
    renew1 = sale(shop, "inv2", 1000, T0 + timedelta(days=31), subscription_id="sub1")
    assert renew1["renewal"] and renew1["partner_id"] == vip["id"] and renew1["commission"] == 200
    renew3 = sale(shop, "inv3", 1000, T0 + timedelta(days=62), subscription_id="sub1")
    assert renew3["commission"] == 0  # past duration_months=2
    later = sale(shop, "o-later", 3000, T0 + timedelta(days=90))
    assert later["partner_id"] == vip["id"] and later["attribution"]["touch"] == "customer"


def test_first_payment_only(app, shop):
    shop.reward(event="sale", value=50, duration_months=0, partner_tag="once")
    once = shop.partner("Ona", key="ona", tags=["once"])
    c = click(shop, ref="ona")
    set_click_time(app, c, T0 - timedelta(hours=1))
    assert sale(shop, "i1", 1000, T0, click_id=c, subscription_id="s")["commission"] == 500
    assert sale(shop, "i2", 1000, T0 + timedelta(days=30), subscription_id="s")["commission"] == 0
    assert once["id"]


def test_hold_days_approval_and_payout_netting(app, shop):
    c = click(shop, ref="ann")
    set_click_time(app, c, T0 - timedelta(hours=1))
    sale(shop, "o1", 10000, T0, click_id=c)
    sale(shop, "o2", 5000, T0, click_id=c)
    with app.app_context():
        assert approve_due(T0 + timedelta(days=29)) == 0
        assert approve_due(T0 + timedelta(days=31)) == 2
        assert approve_due(T0 + timedelta(days=31)) == 0
    earn = shop.ok("get", f"/api/v1/partners/{shop.ann['id']}/earnings")
    assert (earn["pending"], earn["approved"]) == (0, 1500)
    paid = shop.ok("post", f"/api/v1/partners/{shop.ann['id']}/payouts", status=201)
    assert (paid["approved"], paid["paid"]) == (0, 1500)
    # A refund after the payout: a negative balance netted against the next payout.
    shop.ok("post", "/api/v1/track/refund", {"order_id": "o2", "refund_id": "late"})
    earn = shop.ok("get", f"/api/v1/partners/{shop.ann['id']}/earnings")
    assert (earn["approved"], earn["paid"], earn["reversed"]) == (-500, 1500, 500)
    sale(shop, "o3", 20000, T0 + timedelta(days=40), click_id=None)
    with app.app_context():
        approve_due(T0 + timedelta(days=80))
    paid = shop.ok("post", f"/api/v1/partners/{shop.ann['id']}/payouts", status=201)
    assert (paid["approved"], paid["paid"]) == (0, 1500 - 500 + 2000)


def test_other_currencies_never_added(app, shop):
    c = click(shop, ref="ann")
    set_click_time(app, c, T0 - timedelta(hours=1))
    sale(shop, "o1", 10000, T0, click_id=c)
    sale(shop, "o2", 8000, T0, click_id=c, currency="EUR")
    earn = shop.ok("get", f"/api/v1/partners/{shop.ann['id']}/earnings")
    assert earn["pending"] == 1000
    assert earn["other_currencies"] == {"EUR": {"pending": 800, "approved": 0, "reversed": 0,
                                                "paid": 0}}


def test_sale_input_errors_change_nothing(app, shop):
    for body, word in [({"customer_id": "c", "order_id": "o", "amount": 10.5, "currency": "USD"}, "amount"),
                       ({"customer_id": "c", "order_id": "o", "amount": "10", "currency": "USD"}, "amount"),
                       ({"customer_id": "c", "order_id": "o", "amount": 10, "currency": "usd"}, "currency"),
                       ({"customer_id": "c", "order_id": "o", "amount": -1, "currency": "USD"}, "amount"),
                       ({"order_id": "o", "amount": 1, "currency": "USD"}, "customer_id")]:
        resp = shop.post("/api/v1/track/sale", json=body)
        assert resp.status_code == 400 and word in resp.get_json()["error"]["message"], body
    assert shop.ok("get", "/api/v1/conversions")["data"] == []
    sale(shop, "o", 100, T0)
    resp = shop.post("/api/v1/track/sale", json={"customer_id": "c1", "order_id": "o",
                                                 "amount": 999, "currency": "USD"})
    assert resp.status_code == 409
