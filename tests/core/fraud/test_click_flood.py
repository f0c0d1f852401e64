"""Click floods: many clicks for the partner from the winning click's device (IP and browser)
or visitor shortly before the conversion hold it; the threshold and window are settings."""
from __future__ import annotations

from datetime import timedelta

from tests.core.fraud.steps import buy, clicked, reviews, rules_fired


def burst(app, shop, n: int, ref: str = "ann", minutes_ago: int = 30, **kw) -> str:
    """`n` clicks for `ref`, one a second, ending `minutes_ago` before T0; the last one's id."""
    last = ""
    for i in range(n):
        last = clicked(app, shop, ref, ago=timedelta(minutes=minutes_ago, seconds=n - i), **kw)
    return last


def test_flood_from_one_device_is_held(app, shop):
    winner = burst(app, shop, 20)
    conv = buy(shop, "o1", click_id=winner)
    assert conv["status"] == "held"
    [held] = reviews(shop)
    assert [r["rule"] for r in held["reasons"]] == ["click_flood"]
    assert held["reasons"][0]["message"].startswith("20 clicks for this partner from one device")


def test_below_the_threshold_outside_the_window_or_another_partner(app, shop):
    burst(app, shop, 10, ref="blog")  # another partner's clicks do not count for Ann
    burst(app, shop, 10, minutes_ago=120)  # Ann's, but two hours before: outside the hour
    winner = burst(app, shop, 19)
    conv = buy(shop, "o1", click_id=winner)
    assert conv["status"] == "pending" and rules_fired(conv["id"], shop) == []


def test_flood_of_one_visitor_across_browsers(app, shop):
    # A script rotating user agents but keeping its visitor chain (previous_click_id).
    prev = None
    for i in range(20):
        prev = clicked(app, shop, "ann", ago=timedelta(minutes=20, seconds=20 - i), prev=prev,
                       ua=f"Mozilla/5.0 (Windows NT 10.0) Agent/{i}")
    conv = buy(shop, "o1", click_id=prev)
    [held] = reviews(shop)
    assert held["conversion_id"] == conv["id"]
    assert "from one visitor" in held["reasons"][0]["message"]


def test_threshold_and_switch_are_settings(app, shop):
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"click_flood_max_clicks": 50}})
    assert buy(shop, "o1", click_id=burst(app, shop, 20))["status"] == "pending"
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"click_flood_max_clicks": 5,
                                                         "click_flood_window_minutes": 10}})
    # The 20 clicks above ended 30 minutes before the sale: outside a 10-minute window.
    assert buy(shop, "o2", customer="c2", click_id=burst(app, shop, 5, minutes_ago=2))["status"] == "held"
    shop.ok("patch", "/api/v1/program", {"fraud_rules": {"click_flood": False}})
    assert buy(shop, "o3", customer="c3", click_id=burst(app, shop, 30, minutes_ago=1))["status"] == "pending"
