"""Conversions faster after the winning click than a person can buy (or before the click)
are held; the minimum is a setting."""
from __future__ import annotations

from datetime import timedelta

from tests.core.fraud.steps import T0, buy, clicked, reviews, sign_up


def test_sale_three_seconds_after_the_click_is_held(app, shop):
    c = clicked(app, shop, "ann", ago=timedelta(seconds=3))
    conv = buy(shop, "o1", click_id=c)
    assert conv["status"] == "held"
    [held] = reviews(shop)
    assert [r["rule"] for r in held["reasons"]] == ["fast_conversion"]
    assert held["reasons"][0]["message"].startswith("Converted 3 seconds after the click")


def test_click_recorded_after_the_sale_is_held(app, shop):
    c = clicked(app, shop, "ann", ago=timedelta(seconds=-90))  # within the clock-skew allowance
    conv = buy(shop, "o1", click_id=c)
    assert conv["partner_id"] == shop.ann["id"] and conv["status"] == "held"
    assert "90 seconds before its click" in reviews(shop)[0]["reasons"][0]["message"]


def test_a_minute_is_human_unless_the_minimum_says_otherwise(app, shop):
    c = clicked(app, shop, "ann", ago=timedelta(seconds=60))
    assert buy(shop, "o1", click_id=c)["status"] == "pending"
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"fast_conversion_seconds": 120}})
    c2 = clicked(app, shop, "ann", ago=timedelta(seconds=60), at=T0 + timedelta(days=1))
    assert buy(shop, "o2", customer="c2", click_id=c2, at=T0 + timedelta(days=1))["status"] == "held"


def test_fast_lead_and_the_switch(app, shop):
    c = clicked(app, shop, "blog", ago=timedelta(seconds=2))
    assert sign_up(shop, "u1", "reader@proton.me", click_id=c)["status"] == "held"
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"fast_conversion": False}})
    c = clicked(app, shop, "blog", ago=timedelta(seconds=2))
    assert sign_up(shop, "u2", "other@proton.me", click_id=c)["status"] == "pending"
