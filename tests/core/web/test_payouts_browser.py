"""Payouts and webhooks pages in a real headless Chromium: the admin creates payouts, downloads
the PayPal file, double-clicks "Pay" (one payment), adds a webhook endpoint and reads the delivery
log; the partner reads their payout history. Screenshots go to /tmp/tp-shots/."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.jobs import run_due
from tests.browser import chromium, needs_chromium, page_app, serving
from tests.core.web.test_admin import make_user
from tests.core.web.test_pages_browser import DESKTOP, PHONE, SHOTS, sign_in
from tests.factories import new_program
from tests.fakes import fake

pytestmark = [needs_chromium, pytest.mark.browser]
NOW = datetime.now(timezone.utc)


@pytest.fixture
def site(db_url, tmp_path):
    app, port, base = page_app(db_url, tmp_path, (fake,))
    api = new_program(app, name="Acme Outfitters")
    api.email = make_user(app, api.program_id)
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    api.cat = api.partner("Cat", key="cat")
    api.reward(name="Standard 10%", event="sale", value=10)
    for i, (who, amount) in enumerate([("ann", 12000), ("ann", 8050), ("bob", 30000),
                                       ("cat", 900), ("bob", 4500)]):
        api.ok("post", "/api/v1/track/sale", {
            "customer_id": f"c{i}", "order_id": f"o{i}", "amount": amount, "currency": "USD",
            "ref": who, "occurred_at": (NOW - timedelta(days=40 + i)).isoformat()})
    api.ok("patch", "/api/v1/program", {"payout_minimum": 500})
    with app.app_context():
        run_due(NOW)
    api.app, api.base = app, base
    SHOTS.mkdir(exist_ok=True)
    with serving(app, port):
        yield api
    app.extensions["touchpoint_db"].dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_payouts_in_the_browser(site):
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP, accept_downloads=True)
        sign_in(page, site)
        page.click("nav >> text=Payouts")
        page.wait_for_url("**/admin/payouts/")
        due = page.inner_text("#due")
        assert "Bob" in due and "34.50 USD" in due and "below minimum" in due  # Cat: 0.90
        page.click("#create-payouts")
        page.wait_for_selector(".flash.ok >> text=2 payouts created")
        rows = page.locator("#open li[data-payout]")
        assert rows.count() == 2
        page.screenshot(path=str(SHOTS / "admin-payouts-desktop.png"), full_page=True)

        with page.expect_download() as info:
            page.click("a.export >> text=PayPal CSV")
        paypal = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
        assert sorted((r[0], r[1], r[5]) for r in paypal) == [
            ("ann@partners.example", "20.05", "PAYPAL"), ("bob@partners.example", "34.50", "PAYPAL")]

        # The impatient double click on "Pay": one payment.
        ann_row = page.locator("#open li[data-payout]", has_text="Ann")
        ann_row.locator("input[name=reference]").fill("PAYPAL-BATCH-1")
        ann_row.locator("button.primary").dblclick()
        page.wait_for_selector("#history >> text=PAYPAL-BATCH-1")
        earnings = site.ok("get", f"/api/v1/partners/{site.ann['id']}/earnings")
        assert (earnings["approved"], earnings["paid"]) == (0, 2005)
        assert len(site.ok("get", "/api/v1/payouts?status=paid")["data"]) == 1
        assert page.locator("#open li[data-payout]").count() == 1

        page.click("#history >> text=Ann")
        assert "o0" in page.inner_text("#items") and "PAYPAL-BATCH-1" in page.inner_text("main")

        phone = browser.new_page(viewport=PHONE)
        sign_in(phone, site)
        phone.goto(f"{site.base}/admin/payouts/")
        phone.screenshot(path=str(SHOTS / "admin-payouts-phone.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width

        # The partner's history, in their own browser.
        page.goto(f"{site.base}/admin/partners/{site.ann['id']}")
        page.click("text=Create portal invitation")
        invite = page.input_value("#invite-url")
        partner = browser.new_context(viewport=PHONE).new_page()
        partner.goto(invite)
        partner.click("nav >> text=Payouts")
        partner.wait_for_url("**/portal/payouts")
        table = partner.inner_text("#payouts")
        assert "PAYPAL-BATCH-1" in table and "20.05 USD" in table and "Bob" not in table
        partner.screenshot(path=str(SHOTS / "portal-payouts-phone.png"), full_page=True)
        width = partner.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_webhooks_in_the_browser(site, httpserver):
    httpserver.expect_request("/events", method="POST").respond_with_data("ok")
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        sign_in(page, site)
        page.click("nav >> text=Webhooks")
        page.fill("#add-endpoint input[name=url]", httpserver.url_for("/events"))
        page.fill("#add-endpoint input[name=description]", "Accounting")
        page.check("#add-endpoint input[value='payout.paid']")
        page.click("#add-endpoint button[type=submit]")
        page.wait_for_selector(".flash.ok")
        page.click("#endpoints summary")
        assert page.input_value("#endpoints input[aria-label='Signing secret']").startswith("whsec_")

        [payout] = site.ok("post", "/api/v1/payouts", {"partner_id": site.bob["id"]},
                           201)["data"]
        site.ok("post", f"/api/v1/payouts/{payout['id']}/pay", {"reference": "WISE-9"})
        with site.app.app_context():
            assert run_due(datetime.now(timezone.utc))["webhooks_sent"] == 1
        page.reload()
        page.evaluate("window.scrollTo(0, 0)")
        log = page.inner_text("#deliveries")
        assert "payout.paid" in log and "succeeded" in log and "200" in log
        page.screenshot(path=str(SHOTS / "admin-webhooks-desktop.png"), full_page=True)
        page.click("#deliveries >> text=" + page.inner_text("#deliveries tbody tr td a"))
        assert "WISE-9" in page.inner_text("pre.snippet")
        page.screenshot(path=str(SHOTS / "admin-webhook-delivery-desktop.png"), full_page=True)
        phone = browser.new_page(viewport=PHONE)
        sign_in(phone, site)
        phone.goto(f"{site.base}/admin/webhooks/")
        phone.screenshot(path=str(SHOTS / "admin-webhooks-phone.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width
