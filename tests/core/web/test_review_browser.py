"""/admin/review in a real headless Chromium: the badge in the navigation, the reasons, Release
and Reject through the page's own forms (CSRF token included), the rule switches, desktop and
phone layouts. Screenshots go to /tmp/tp-shots/."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.browser import chromium, needs_chromium, page_app, serving
from tests.core.fraud.steps import buy, earnings
from tests.core.test_journeys import click, set_click_time
from tests.core.web.test_admin import make_user
from tests.core.web.test_pages_browser import DESKTOP, PHONE, SHOTS, sign_in
from tests.factories import new_program
from tests.fakes import fake

pytestmark = [needs_chromium, pytest.mark.browser]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def site(db_url, tmp_path):
    app, port, base = page_app(db_url, tmp_path, (fake,))
    api = new_program(app, name="Acme Outfitters")
    api.email = make_user(app, api.program_id)
    api.ann = api.ok("post", "/api/v1/partners", {"name": "Ann Lee", "email": "ann.lee@gmail.com",
                                                  "key": "ann"}, 201)
    api.blog = api.ok("post", "/api/v1/partners", {"name": "Deal Blog", "email": "ed@dealblog.example",
                                                   "key": "blog"}, 201)
    api.reward(event="sale", value=10)
    api.selfie = buy(api, "1001", 12900, at=NOW - timedelta(hours=5), ref="ann",
                     email="annlee+shop@gmail.com")
    api.burner = buy(api, "1002", 4500, at=NOW - timedelta(hours=4), ref="blog",
                     email="x7@mailinator.com")
    fast = click(api, ref="blog")
    set_click_time(app, fast, NOW - timedelta(hours=3, seconds=4))
    api.fast = buy(api, "1003", 8800, at=NOW - timedelta(hours=3), click_id=fast,
                   email="qa@dealblog.example")
    buy(api, "1004", 5000, at=NOW - timedelta(hours=2), ref="ann", email="reader@proton.me")
    api.base = base
    SHOTS.mkdir(exist_ok=True)
    with serving(app, port):
        yield api
    app.extensions["touchpoint_db"].dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_review_end_to_end(site):
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        sign_in(page, site)
        assert page.inner_text("nav.nav a[href='/admin/review/'] .pill") == "3"
        page.click("nav.nav >> text=Review")
        page.wait_for_url(f"{site.base}/admin/review/")
        rows = page.locator("table.review tbody tr")
        assert rows.count() == 3
        fast_row = page.locator(f"tr[data-id='{site.fast['id']}']")
        reasons = fast_row.inner_text()
        assert "Partner's test order" in reasons and "Too fast after the click" in reasons
        assert "Converted 4 seconds after the click" in reasons
        page.screenshot(path=str(SHOTS / "admin-review-desktop.png"), full_page=True)

        page.locator(f"tr[data-id='{site.selfie['id']}'] >> text=Release").click()
        page.wait_for_selector(".flash.ok")
        assert "1001 released" in page.inner_text(".flash.ok")
        assert page.inner_text("nav.nav a[href='/admin/review/'] .pill") == "2"
        assert earnings(site, site.ann)["pending"] == 1290 + 500

        page.locator(f"tr[data-id='{site.burner['id']}'] >> text=Reject").click()
        page.wait_for_selector(".flash.ok")
        page.click("nav.tabs >> text=Rejected")
        assert "1002" in page.inner_text("table.review") and site.email in page.inner_text("table.review")
        assert earnings(site, site.blog)["pending"] == 0
        page.screenshot(path=str(SHOTS / "admin-review-rejected-desktop.png"), full_page=True)

        # The conversions page marks what waits for review.
        page.goto(f"{site.base}/admin/conversions")
        assert "held for review" in page.inner_text(f"tr[data-id='{site.fast['id']}']")
        assert "rejected" in page.inner_text(f"tr[data-id='{site.burner['id']}']")
        page.screenshot(path=str(SHOTS / "admin-conversions-review-desktop.png"), full_page=True)

        # Switch a rule off from the page.
        page.goto(f"{site.base}/admin/review/#rules")
        page.uncheck("input[name=fast_conversion]")
        page.fill("input[name=click_flood_max_clicks]", "30")
        page.click("#rules button[type=submit]")
        page.wait_for_selector(".flash.ok")
        rules = site.ok("get", "/api/v1/program")["fraud_rules"]
        assert rules["fast_conversion"] is False and rules["click_flood_max_clicks"] == 30
        assert not page.is_checked("input[name=fast_conversion]")

        phone = browser.new_page(viewport=PHONE)
        sign_in(phone, site)
        phone.goto(f"{site.base}/admin/review/")
        phone.screenshot(path=str(SHOTS / "admin-review-phone.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width
