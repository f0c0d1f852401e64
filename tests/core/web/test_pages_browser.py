"""/admin and /portal end to end in a real headless Chromium (Debian's /usr/bin/chromium):
sign in, read the figures, filter, export, watch a conversion arrive without a reload, and a
partner who cannot see another's data. Screenshots go to /tmp/tp-shots/."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.browser import chromium, needs_chromium, page_app, serving
from tests.core.test_journeys import click, sale, set_click_time
from tests.core.web.test_admin import PASSWORD, make_user
from tests.factories import new_program
from tests.fakes import fake

pytestmark = [needs_chromium, pytest.mark.browser]
SHOTS = Path("/tmp/tp-shots")
NOW = datetime.now(timezone.utc).replace(microsecond=0)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def site(db_url, tmp_path):
    app, port, base = page_app(db_url, tmp_path, (fake,))
    api = new_program(app, name="Acme Outfitters")
    api.email = make_user(app, api.program_id)
    api.ann = api.partner("Ann", key="ann", tags=["vip"])
    api.bob = api.partner("Bob", key="bob", tags=["newsletter"])
    api.reward(name="Standard 10%", event="sale", value=10)
    for days_ago in range(12):
        for who in (["ann"] * (days_ago % 4 + 2)) + ["bob"] * (days_ago % 3 + 1):
            set_click_time(app, click(api, ref=who), NOW - timedelta(days=days_ago, hours=2))
        if days_ago % 2 == 0:
            sale(api, f"a{days_ago}", 4000 + 500 * days_ago, NOW - timedelta(days=days_ago, hours=1),
                 customer=f"ca{days_ago}", ref="ann")
        if days_ago % 3 == 0:
            sale(api, f"b{days_ago}", 2500, NOW - timedelta(days=days_ago, hours=1),
                 customer=f"cb{days_ago}", ref="bob")
    api.base = base
    SHOTS.mkdir(exist_ok=True)
    with serving(app, port):
        yield api
    app.extensions["touchpoint_db"].dispose()


def sign_in(page, site) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.base}/admin/login")
    page.fill("input[name=email]", site.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base}/admin/")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_admin_end_to_end(site):
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP, accept_downloads=True)
        page.goto(f"{site.base}/admin/")
        assert "/admin/login" in page.url
        page.fill("input[name=email]", site.email)
        page.fill("input[name=password]", "wrong password!")
        page.click("button[type=submit]")
        assert "do not match" in page.inner_text(".flash.error")
        sign_in(page, site)

        # The figures: 6 sales of Ann (40.00 + 50.00 + ... + 90.00) and 4 of Bob (25.00 each).
        revenue = sum(4000 + 500 * d for d in range(0, 12, 2)) + 2500 * 4
        assert page.inner_text('[data-card="revenue"]').replace("\n", "") == f"{revenue / 100:,.2f} USD"
        assert page.inner_text('[data-card="conversions"]') == "10"
        assert page.locator("svg.chart rect.bar").count() >= 8
        assert page.inner_text("#leaderboard tbody tr:first-child") .startswith("1")
        page.screenshot(path=str(SHOTS / "admin-overview-desktop.png"), full_page=True)

        # Filter the report by tag: only Ann's row.
        page.goto(f"{site.base}/admin/reports")
        page.select_option("select[name=tag]", "vip")
        page.wait_for_url("**tag=vip**")
        body = page.inner_text("#report tbody")
        assert "Ann" in body and "Bob" not in body
        page.click("nav.tabs >> text=Day")
        page.wait_for_url("**group_by=day**")
        assert "tag=vip" in page.url and page.input_value("select[name=period]") == "30d"
        page.screenshot(path=str(SHOTS / "admin-reports-desktop.png"), full_page=True)

        # Export the report as CSV (a real download).
        with page.expect_download() as info:
            page.click("a.export")
        text = Path(info.value.path()).read_text()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows[-1]["label"] == "Total" and rows[-1]["currency"] == "USD"
        assert int(rows[-1]["revenue_minor_units"]) == sum(4000 + 500 * d for d in range(0, 12, 2))

        # Live: a sale posted through the API shows up on the open overview without a reload.
        page.goto(f"{site.base}/admin/")
        page.evaluate("window.__marker = 'same page'")
        sale(site, "live-1", 12345, datetime.now(timezone.utc), customer="live", ref="bob")
        page.wait_for_selector("#live-feed li.fresh >> text=123.45 USD", timeout=15000)
        assert page.evaluate("window.__marker") == "same page"  # no reload happened
        page.wait_for_function("document.querySelector('[data-card=conversions]').textContent == '11'",
                               timeout=15000)

        # The partner's page explains each credit; the phone layout stays readable.
        page.goto(f"{site.base}/admin/partners/{site.ann['id']}")
        reason = site.ok("get", f"/api/v1/conversions?partner_id={site.ann['id']}")["data"][0]["attribution"]["reason"]
        assert reason and reason in page.inner_text("table")
        phone = browser.new_page(viewport=PHONE)
        sign_in(phone, site)
        phone.screenshot(path=str(SHOTS / "admin-overview-phone.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width  # no sideways scrolling of the page itself
        phone.goto(f"{site.base}/admin/reports")
        phone.screenshot(path=str(SHOTS / "admin-reports-phone.png"), full_page=True)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_partner_portal_end_to_end(site):
    with chromium() as browser:
        admin = browser.new_page(viewport=DESKTOP)
        sign_in(admin, site)
        admin.goto(f"{site.base}/admin/partners/{site.ann['id']}")
        admin.click("text=Create portal invitation")
        invite = admin.input_value("#invite-url")
        assert invite.startswith(f"{site.base}/portal/login/")

        context = browser.new_context(viewport=DESKTOP)  # the partner's own browser
        partner = context.new_page()
        partner.goto(invite)
        partner.wait_for_url(f"{site.base}/portal/")
        text = partner.inner_text("main")
        assert "Hello, Ann" in text and "Bob" not in text
        assert "?ref=ann" in partner.input_value("#ref-url")
        partner.click("[data-copy='#ref-url']")
        partner.wait_for_selector("button.copied")
        partner.screenshot(path=str(SHOTS / "portal-desktop.png"), full_page=True)

        # Guessing Bob's conversion id: 404, and the admin pages stay closed.
        bob_sale = sale(site, "b0", 2500, NOW - timedelta(hours=1), customer="cb0", ref="bob")
        resp = partner.goto(f"{site.base}/portal/conversions/{bob_sale['id']}")
        assert resp.status == 404
        partner.goto(f"{site.base}/admin/partners/{site.bob['id']}")
        assert "/admin/login" in partner.url

        phone = browser.new_context(viewport=PHONE).new_page()
        phone.goto(invite)
        phone.wait_for_url(f"{site.base}/portal/")
        phone.screenshot(path=str(SHOTS / "portal-phone.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width
