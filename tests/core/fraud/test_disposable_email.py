"""Disposable email domains (the maintained `disposable-email-domains` list) hold leads and
sales; a rejected conversion stays visible, earns nothing, and later refunds keep it at zero."""
from __future__ import annotations

from datetime import timedelta

from tests.core.fraud.steps import T0, buy, earnings, reviews, rules_fired, sign_up


def test_throwaway_lead_is_held_and_rejected(app, shop):
    lead = sign_up(shop, "u1", "Quick.Cash@Mailinator.com", ref="blog")
    assert lead["status"] == "held" and lead["partner_id"] == shop.blog["id"]
    [held] = reviews(shop)
    assert held["commission_at_stake"] == 200
    assert [r["rule"] for r in held["reasons"]] == ["disposable_email"]
    assert "mailinator.com" in held["reasons"][0]["message"]

    out = shop.ok("post", f"/api/v1/conversions/{lead['id']}/reject")
    assert out["state"] == "rejected" and out["conversion"]["status"] == "rejected"
    listed = shop.ok("get", "/api/v1/conversions?status=rejected")["data"]
    assert [c["id"] for c in listed] == [lead["id"]]  # still there, plainly marked
    assert earnings(shop, shop.blog) == {"currency": "USD", "pending": 0, "approved": 0,
                                         "reversed": 0, "paid": 0, "other_currencies": {}}
    # The same customer buys later: credited to the partner through the customer, screened
    # on its own, held again for the same email.
    sale = buy(shop, "o1", 8000, at=T0 + timedelta(days=1), customer="u1",
               email="quick.cash@mailinator.com")
    assert sale["partner_id"] == shop.blog["id"] and sale["status"] == "held"
    assert shop.post(f"/api/v1/conversions/{lead['id']}/release").status_code == 409


def test_subdomains_of_a_listed_domain_and_clean_addresses(app, shop):
    held = sign_up(shop, "u1", "x@inbox.mailinator.com", ref="blog")
    assert rules_fired(held["id"], shop) == ["disposable_email"]
    clean = sign_up(shop, "u2", "reader@proton.me", ref="blog")
    assert clean["status"] == "pending" and clean["commission"] == 200


def test_refund_of_rejected_sale_stays_zero(app, shop):
    sale = buy(shop, "o1", 10000, ref="blog", email="a@guerrillamail.com")
    assert sale["status"] == "held"
    shop.ok("post", f"/api/v1/conversions/{sale['id']}/reject")
    out = shop.ok("post", "/api/v1/track/refund", {"order_id": "o1", "amount": 4000,
                                                   "refund_id": "r1"})
    assert (out["status"], out["commission"], out["refunded"]) == ("rejected", 0, 4000)
    assert earnings(shop, shop.blog)["reversed"] == 0


def test_switched_off(app, shop):
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"disposable_email": False}})
    assert sign_up(shop, "u1", "x@mailinator.com", ref="blog")["status"] == "pending"
