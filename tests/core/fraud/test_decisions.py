"""The review API's edges: refusals change nothing, another program's ids are 404, settings are
validated by name, and disputes of held conversions settle as usual after release."""
from __future__ import annotations

from sqlmodel import func, select

from core.db import get_db
from core.models import Conversion, LedgerEntry
from tests.core.fraud.steps import buy, earnings, reviews
from tests.factories import new_program


def count(app, model) -> int:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_program_shows_every_rule_with_defaults(app, shop):
    assert shop.ok("get", "/api/v1/program")["fraud_rules"] == {
        "self_referral": True, "disposable_email": True, "test_orders": True,
        "click_flood": True, "click_flood_max_clicks": 20, "click_flood_window_minutes": 60,
        "fast_conversion": True, "fast_conversion_seconds": 10}


def test_bad_rule_settings_are_400_by_name_and_change_nothing(app, shop):
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"fast_conversion_seconds": 30}})
    before = shop.ok("get", "/api/v1/program")
    for body, word in [({"fraud_rules": {"click_flood_max_clicks": 1}}, "click_flood_max_clicks"),
                       ({"fraud_rules": {"fast_conversion_seconds": "soon"}}, "fast_conversion_seconds"),
                       ({"fraud_rules": {"velocity": True}}, "velocity"),
                       ({"fraud_rules": {"self_referral": None}}, "self_referral"),
                       ({"fraud_rules": None}, "fraud_rules"),
                       ({"fraud_rules": ["self_referral"]}, "fraud_rules")]:
        resp = shop.patch("/api/v1/program", json=body)
        assert resp.status_code == 400, (body, resp.get_json())
        assert word in resp.get_json()["error"]["message"], body
    assert shop.ok("get", "/api/v1/program") == before
    assert before["fraud_rules"]["fast_conversion_seconds"] == 30


def test_decisions_on_what_is_not_held_change_nothing(app, shop):
    clean = buy(shop, "o1", ref="ann", email="reader@proton.me")
    held = buy(shop, "o2", ref="ann", email="ann.lee@gmail.com")
    entries = count(app, LedgerEntry)
    resp = shop.post(f"/api/v1/conversions/{clean['id']}/reject")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "not_held"
    assert shop.post("/api/v1/conversions/cnv_missing/release").status_code == 404
    other = new_program(app, domain="other.example")
    resp = other.post(f"/api/v1/conversions/{held['id']}/release")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    assert other.ok("get", "/api/v1/reviews")["data"] == []
    assert other.get(f"/api/v1/reviews?partner_id={shop.ann['id']}").status_code == 404
    assert shop.get("/api/v1/reviews?state=pending").status_code == 400
    assert count(app, LedgerEntry) == entries
    assert [r["conversion_id"] for r in reviews(shop)] == [held["id"]]
    shop.ok("post", f"/api/v1/conversions/{held['id']}/reject")
    resp = shop.post(f"/api/v1/conversions/{held['id']}/release")
    assert resp.status_code == 409 and "rejected" in resp.get_json()["error"]["message"]
    assert count(app, LedgerEntry) == entries  # a rejection posts nothing: nothing was credited


def test_reviews_filter_by_partner_and_page(app, shop):
    for i in range(3):
        buy(shop, f"a{i}", ref="ann", email="ann.lee@gmail.com", customer=f"a{i}")
    buy(shop, "b1", ref="blog", email="qa@annsblog.example")
    assert len(reviews(shop)) == 4
    mine = shop.ok("get", f"/api/v1/reviews?partner_id={shop.blog['id']}")["data"]
    assert [r["conversion"]["external_id"] for r in mine] == ["b1"]
    first = shop.ok("get", "/api/v1/reviews?limit=2")
    rest = shop.ok("get", f"/api/v1/reviews?limit=2&cursor={first['next_cursor']}")
    assert len(first["data"]) == 2 and len(rest["data"]) == 2 and rest["next_cursor"] is None


def test_dispute_on_a_held_sale_then_release(app, shop):
    """Held, disputed, released (still disputed: nothing), dispute won: credited."""
    from datetime import timedelta

    from tests.core.fraud.steps import T0
    from tests.core.web.test_webhooks import deliver

    shop.source = shop.ok("post", "/api/v1/sources", {"platform": "fake", "webhook_secret": "whsec"}, 201)
    at = T0.isoformat()
    deliver(shop, {"id": "d1", "topic": "sale", "order": "o1", "amount": 10000, "ref": "ann",
                   "customer": "c1", "email": "ann.lee@gmail.com", "at": at})
    deliver(shop, {"id": "d2", "topic": "dispute", "order": "o1", "dispute": "dp1",
                   "status": "open", "at": (T0 + timedelta(days=1)).isoformat()})
    [held] = reviews(shop)
    out = shop.ok("post", f"/api/v1/conversions/{held['conversion_id']}/release")
    assert (out["conversion"]["status"], out["conversion"]["commission"]) == ("held", 0)
    assert earnings(shop, shop.ann)["pending"] == 0
    deliver(shop, {"id": "d3", "topic": "dispute", "order": "o1", "dispute": "dp1",
                   "status": "won", "at": (T0 + timedelta(days=9)).isoformat()})
    [conv] = shop.ok("get", "/api/v1/conversions")["data"]
    assert (conv["status"], conv["commission"]) == ("pending", 1000)
    assert earnings(shop, shop.ann)["pending"] == 1000
    with app.app_context(), get_db().session() as s:
        assert s.get(Conversion, conv["id"]).review == "released"
