"""Self-referral through the API: the partner's own email (Gmail dots and +tags ignored) holds
the sale; release credits it as usual; the switch turns the rule off."""
from __future__ import annotations

from datetime import timedelta

from tests.core.fraud.steps import T0, buy, clicked, earnings, reviews, rules_fired, run_jobs


def test_partner_buying_through_own_link_is_held_then_released(app, shop):
    c = clicked(app, shop, "ann")
    conv = buy(shop, "o1", 10000, click_id=c, email="annlee+deals@googlemail.com")
    assert conv["status"] == "held" and conv["commission"] == 0
    assert conv["partner_id"] == shop.ann["id"]  # credited, just not paid
    [held] = reviews(shop)
    assert held["conversion_id"] == conv["id"] and held["state"] == "held"
    assert held["commission_at_stake"] == 1000 and held["commission_currency"] == "USD"
    assert [r["rule"] for r in held["reasons"]] == ["self_referral"]
    assert "(ann.lee@gmail.com)" in held["reasons"][0]["message"]
    assert "googlemail" not in str(held["reasons"])  # the customer's address is not kept there
    assert earnings(shop, shop.ann)["pending"] == 0
    listed = shop.ok("get", "/api/v1/conversions?status=held")["data"]
    assert [x["id"] for x in listed] == [conv["id"]]
    # Not approved by the jobs while held, whatever the date.
    run_jobs(app, T0 + timedelta(days=60))
    assert earnings(shop, shop.ann)["approved"] == 0

    out = shop.ok("post", f"/api/v1/conversions/{conv['id']}/release")
    assert out["state"] == "released" and out["reviewed_by"] == "api" and out["reviewed_at"]
    assert out["conversion"]["status"] == "pending" and out["conversion"]["commission"] == 1000
    assert earnings(shop, shop.ann)["pending"] == 1000
    assert reviews(shop) == [] and [r["conversion_id"] for r in reviews(shop, "released")] == [conv["id"]]
    # The same order delivered again keeps the admin's decision.
    assert buy(shop, "o1", 10000, click_id=c, email="annlee+deals@googlemail.com")["status"] == "pending"
    run_jobs(app, T0 + timedelta(days=31))
    assert (earnings(shop, shop.ann)["pending"], earnings(shop, shop.ann)["approved"]) == (0, 1000)


def test_someone_else_is_not_held(app, shop):
    c = clicked(app, shop, "ann")
    conv = buy(shop, "o1", click_id=c, email="ann.lee@outlook.com")
    assert conv["status"] == "pending" and conv["commission"] == 1000
    assert rules_fired(conv["id"], shop) == []


def test_switched_off_per_program(app, shop):
    out = shop.ok("patch", "/api/v1/program", {"fraud_rules": {"self_referral": False}})
    assert out["fraud_rules"]["self_referral"] is False
    assert out["fraud_rules"]["disposable_email"] is True  # the others keep their setting
    c = clicked(app, shop, "ann")
    assert buy(shop, "o1", click_id=c, email="ann.lee@gmail.com")["status"] == "pending"


def test_promo_code_self_referral(app, shop):
    shop.ok("post", "/api/v1/promo-codes", {"partner_id": shop.ann["id"], "code": "ANN10"}, 201)
    conv = buy(shop, "o1", promo_code="ann10", email="Ann.Lee@gmail.com")
    assert conv["status"] == "held" and rules_fired(conv["id"], shop) == ["self_referral"]


def test_same_card_as_the_partners_own_order(app, shop):
    """The payment identity: a platform's card fingerprint (here through a connector's webhook)
    seen on an order the partner placed under their own email holds a later order under
    another email."""
    from tests.core.web.test_webhooks import deliver

    shop.source = shop.ok("post", "/api/v1/sources", {"platform": "fake", "webhook_secret": "whsec"}, 201)

    def order(n: int, email: str, card: str) -> dict:
        resp = deliver(shop, {"id": f"d{n}", "topic": "sale", "order": f"o{n}", "amount": 5000,
                              "customer": f"cus{n}", "email": email, "card": card, "ref": "ann",
                              "at": (T0 + timedelta(minutes=n)).isoformat()})
        assert resp.status_code == 200
        [conv] = [c for c in shop.ok("get", "/api/v1/conversions")["data"]
                  if c["external_id"] == f"o{n}"]
        return conv

    first = order(1, "ann.lee@gmail.com", "fp_card_1")
    assert first["status"] == "held"
    second = order(2, "deals@elsewhere.example", "fp_card_1")
    assert second["status"] == "held" and second["commission"] == 0
    [reason] = [r for r in reviews(shop) if r["conversion_id"] == second["id"]][0]["reasons"]
    assert reason["rule"] == "self_referral" and "order o1" in reason["message"]
    third = order(3, "deals@elsewhere.example", "fp_card_2")
    assert third["status"] == "pending" and third["commission"] == 500


def test_same_card_through_the_track_api(app, shop):
    """A merchant's server sends the card's fingerprint with the sale (`payment_fingerprint`):
    the same rule, through the public API alone."""
    first = buy(shop, "o1", ref="ann", email="ann.lee@gmail.com", payment_fingerprint="fp_a")
    assert first["status"] == "held"
    second = buy(shop, "o2", ref="ann", email="deals@elsewhere.example", customer="c2",
                 payment_fingerprint="fp_a", at=T0 + timedelta(minutes=5))
    assert second["status"] == "held" and second["commission"] == 0
    assert rules_fired(second["id"], shop) == ["self_referral"]
    third = buy(shop, "o3", ref="ann", email="deals@elsewhere.example", customer="c3",
                payment_fingerprint="fp_b", at=T0 + timedelta(minutes=10))
    assert third["status"] == "pending" and third["commission"] > 0
    refused = shop.client.post("/api/v1/track/sale", json={
        "customer_id": "c4", "order_id": "o4", "amount": 100, "currency": "USD",
        "payment_fingerprint": ""}, headers={"Authorization": f"Bearer {shop.key}"})
    assert refused.status_code == 400 and "payment_fingerprint" in refused.get_data(as_text=True)
