"""A partner's own test orders: the customer's email at the partner's own domain holds the
conversion; public mailbox providers never count as anyone's own domain."""
from __future__ import annotations

from tests.core.fraud.steps import buy, reviews, rules_fired


def test_order_from_the_partners_domain_is_held(app, shop):
    conv = buy(shop, "o1", 2500, ref="blog", email="QA@AnnsBlog.example")
    assert conv["status"] == "held"
    [held] = reviews(shop)
    assert [r["rule"] for r in held["reasons"]] == ["test_orders"]
    assert "annsblog.example" in held["reasons"][0]["message"]


def test_the_partners_own_mailbox_at_their_domain_fires_both(app, shop):
    conv = buy(shop, "o1", ref="blog", email="editor+test@annsblog.example")
    assert rules_fired(conv["id"], shop) == ["self_referral", "test_orders"]


def test_public_provider_is_nobodys_domain(app, shop):
    # Ann's own address is at gmail.com; another gmail.com customer is just a customer.
    conv = buy(shop, "o1", ref="ann", email="reader@gmail.com")
    assert conv["status"] == "pending" and conv["commission"] == 1000


def test_switched_off(app, shop):
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"test_orders": False}})
    assert buy(shop, "o1", ref="blog", email="qa@annsblog.example")["status"] == "pending"
