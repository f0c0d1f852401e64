"""/admin/review: held conversions with their reasons, Release / Reject behind CSRF, the
navigation's badge, the rule switches, and nothing of another program reachable."""
from __future__ import annotations

import re

import pytest

from tests.core.fraud.steps import buy, earnings, reviews
from tests.core.web.test_admin import csrf_token, login, make_user, post_form
from tests.factories import new_program


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.ok("post", "/api/v1/partners", {"name": "Ann Lee", "email": "ann.lee@gmail.com",
                                                  "key": "ann"}, 201)
    api.reward(event="sale", value=10)
    api.selfie = buy(api, "o-self", 10000, ref="ann", email="Ann.Lee+x@gmail.com")
    api.burner = buy(api, "o-burner", 4000, ref="ann", email="bot@mailinator.com")
    api.clean = buy(api, "o-clean", 6000, ref="ann", email="reader@proton.me")
    api.email = make_user(app, api.program_id)
    return api


def page(client, path: str = "/admin/review/") -> str:
    resp = client.get(path)
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def test_needs_sign_in(client, shop):
    resp = client.get("/admin/review/")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]
    assert client.post(f"/admin/review/{shop.selfie['id']}/release").status_code in (302, 400)
    assert reviews(shop)[0]["state"] == "held"


def test_lists_held_conversions_with_reasons_and_badge(client, shop):
    login(client, shop.email)
    html = page(client)
    assert "o-self" in html and "o-burner" in html and "o-clean" not in html
    assert "Self-referral" in html and "is the partner&#39;s own" in html
    assert "Disposable email" in html and "mailinator.com" in html
    assert "10.00 USD" in html  # the commission at stake on o-self
    nav = page(client, "/admin/")
    assert re.search(r'Review <span class="pill"[^>]*>2</span>', nav)
    conversions = page(client, "/admin/conversions?status=held")
    assert "held for review" in conversions and "o-clean" not in conversions


def test_release_and_reject_through_the_forms(client, shop):
    login(client, shop.email)
    resp = post_form(client, "/admin/review/", f"/admin/review/{shop.selfie['id']}/release", {})
    assert resp.status_code == 302
    assert "released" in page(client)  # the flash
    assert earnings(shop, shop.ann)["pending"] == 600 + 1000
    resp = post_form(client, "/admin/review/", f"/admin/review/{shop.burner['id']}/reject", {})
    assert resp.status_code == 302
    html = page(client)
    assert "Nothing waits for review." in html and 'class="pill"' not in html.split("<main")[0]
    rejected = page(client, "/admin/review/?state=rejected")
    assert "o-burner" in rejected and shop.email in rejected
    assert "o-self" in page(client, "/admin/review/?state=released")
    # Deciding twice is refused with a message, changing nothing.
    post_form(client, "/admin/review/", f"/admin/review/{shop.burner['id']}/release", {})
    assert "not waiting for review" in page(client)
    assert earnings(shop, shop.ann)["pending"] == 1600


def test_forms_need_the_csrf_token(client, shop):
    login(client, shop.email)
    resp = client.post(f"/admin/review/{shop.selfie['id']}/release")
    assert resp.status_code == 400
    resp = client.post("/admin/review/rules", data={"fast_conversion_seconds": "99"})
    assert resp.status_code == 400
    assert reviews(shop)[0]["state"] == "held"
    assert shop.ok("get", "/api/v1/program")["fraud_rules"]["fast_conversion_seconds"] == 10


def test_another_programs_conversion_is_404(app, client, shop):
    other = new_program(app, domain="other.example")
    other_email = make_user(app, other.program_id, "owner@other.example")
    login(client, other_email)
    assert "o-self" not in page(client)
    token = csrf_token(client, "/admin/review/")
    resp = client.post(f"/admin/review/{shop.selfie['id']}/release", data={"csrf_token": token})
    assert resp.status_code == 404
    assert client.post(f"/admin/review/{shop.selfie['id']}/approve",
                       data={"csrf_token": token}).status_code == 404
    assert reviews(shop)[0]["state"] == "held"


def test_rule_switches_and_thresholds(client, shop):
    login(client, shop.email)
    resp = post_form(client, "/admin/review/", "/admin/review/rules", {
        "self_referral": "on", "test_orders": "on", "click_flood": "on",
        "click_flood_max_clicks": "40", "click_flood_window_minutes": "30",
        "fast_conversion_seconds": "15"})
    assert resp.status_code == 302
    rules = shop.ok("get", "/api/v1/program")["fraud_rules"]
    assert rules["disposable_email"] is False and rules["fast_conversion"] is False
    assert (rules["click_flood_max_clicks"], rules["click_flood_window_minutes"],
            rules["fast_conversion_seconds"]) == (40, 30, 15)
    html = page(client)
    assert 'name="click_flood_max_clicks" value="40"' in html
    post_form(client, "/admin/review/", "/admin/review/rules",
              {"click_flood_max_clicks": "1", "fast_conversion_seconds": "15"})
    assert "click_flood_max_clicks" in page(client)
    post_form(client, "/admin/review/", "/admin/review/rules", {"fast_conversion_seconds": "ten"})
    assert "whole number" in page(client)
    assert shop.ok("get", "/api/v1/program")["fraud_rules"]["click_flood_max_clicks"] == 40
    assert buy(shop, "o-later", 1000, ref="ann", email="x@mailinator.com")["status"] == "pending"
