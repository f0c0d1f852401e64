"""/admin/payouts, /admin/webhooks and the portal's payout history through the pages (test
client, CSRF and sign-in included), on SQLite and PostgreSQL; also the double click on "Pay"
by two signed-in admins at the same moment."""
from __future__ import annotations

import csv
import io
import re
import threading

import pytest
from sqlmodel import func, select

from core.db import get_db
from core.models import LedgerEntry, OutgoingDelivery, Payout, WebhookEndpoint
from tests.core.web.test_admin import csrf_token, login, make_user, post_form
from tests.core.web.test_payouts_api import earnings, jobs, sale
from tests.core.web.test_portal import invitation
from tests.factories import new_program


def count(app, model, *where) -> int:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


@pytest.fixture
def shop(app):
    api = new_program(app, name="Acme")
    api.email = make_user(app, api.program_id)
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    api.reward(event="sale", value=10)
    sale(api, "o1", 10000, "ann")
    sale(api, "o2", 4000, "bob")
    sale(api, "o3", 9000, "ann", days_ago=1)  # pending: not in a payout yet
    jobs(app)
    return api


def test_admin_creates_exports_and_pays(app, client, shop):
    login(client, shop.email)
    html = client.get("/admin/payouts/").get_data(as_text=True)
    assert "Due now" in html and "10.00 USD" in html and "4.00 USD" in html
    resp = post_form(client, "/admin/payouts/", "/admin/payouts/create", {})
    assert resp.status_code == 302
    html = client.get("/admin/payouts/").get_data(as_text=True)
    assert "2 payouts created" in html
    ids = re.findall(r'data-payout="(pay_[a-z0-9]+)"', html)
    assert len(ids) == 2

    csv_text = client.get("/admin/payouts/export.csv?format=paypal&currency=USD").get_data(
        as_text=True)
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert sorted(r[0] for r in rows) == ["ann@partners.example", "bob@partners.example"]
    wise = client.get("/admin/payouts/export.csv?format=wise&currency=USD").get_data(as_text=True)
    assert wise.startswith("name,recipientEmail,paymentReference,")
    resp = client.get("/admin/payouts/export.csv?format=excel")
    assert resp.status_code == 302

    ann_id = next(p["id"] for p in shop.ok("get", "/api/v1/payouts")["data"]
                  if p["partner_id"] == shop.ann["id"])
    detail = client.get(f"/admin/payouts/{ann_id}").get_data(as_text=True)
    assert "o1" in detail and "Mark paid" in detail
    resp = post_form(client, "/admin/payouts/", f"/admin/payouts/{ann_id}/pay", {"reference": ""})
    assert "reference" in client.get("/admin/payouts/").get_data(as_text=True)
    assert shop.ok("get", f"/api/v1/payouts/{ann_id}")["status"] == "created"
    post_form(client, "/admin/payouts/", f"/admin/payouts/{ann_id}/pay", {"reference": "PP-1"})
    html = client.get("/admin/payouts/").get_data(as_text=True)
    assert "marked paid (reference PP-1)" in html and "PP-1" in html
    assert shop.ok("get", f"/api/v1/payouts/{ann_id}")["paid_by"] == shop.email
    assert earnings(shop, shop.ann)["paid"] == 1000
    post_form(client, "/admin/payouts/", f"/admin/payouts/{ann_id}/pay", {"reference": "PP-2"})
    assert "already paid" in client.get("/admin/payouts/").get_data(as_text=True)
    assert earnings(shop, shop.ann)["paid"] == 1000

    bob_id = next(i for i in ids if i != ann_id)
    post_form(client, "/admin/payouts/", f"/admin/payouts/{bob_id}/cancel", {})
    assert shop.ok("get", f"/api/v1/payouts/{bob_id}")["status"] == "canceled"


def test_two_admins_double_click_pay(app, shop):
    """Two admins, each signed in on two devices, press "Pay" at the same moment: one
    payment, and three "already paid" messages."""
    second = make_user(app, shop.program_id, "partner-manager@shop.example")
    [payout] = shop.ok("post", "/api/v1/payouts", {"partner_id": shop.ann["id"]}, 201)["data"]
    clients = []
    for email in (shop.email, second, shop.email, second):
        c = app.test_client()
        login(c, email)
        clients.append((c, csrf_token(c, "/admin/payouts/")))
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def press(c, token, ref) -> None:
        barrier.wait()
        resp = c.post(f"/admin/payouts/{payout['id']}/pay",
                      data={"reference": ref, "csrf_token": token})
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=press, args=(c, token, f"click-{i}"))
               for i, (c, token) in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [302] * 4
    assert count(app, Payout, Payout.status == "paid") == 1
    assert count(app, LedgerEntry, LedgerEntry.kind == "paid") == 1
    assert earnings(shop, shop.ann)["paid"] == 1000
    flashes = [c.get("/admin/payouts/").get_data(as_text=True) for c, _ in clients]
    assert sum(f.count("marked paid") for f in flashes) == 1
    assert sum(f.count("already paid") for f in flashes) == 3


def test_payout_settings_form(app, client, shop):
    login(client, shop.email)
    post_form(client, "/admin/payouts/", "/admin/payouts/settings",
              {"payout_minimum": "50.00", "payout_schedule": "monthly"})
    prog = shop.ok("get", "/api/v1/program")
    assert (prog["payout_minimum"], prog["payout_schedule"]) == (5000, "monthly")
    for data in ({"payout_minimum": "ten", "payout_schedule": "monthly"},
                 {"payout_minimum": "1.005", "payout_schedule": "monthly"},
                 {"payout_minimum": "-3", "payout_schedule": "monthly"},
                 {"payout_minimum": "1", "payout_schedule": "hourly"}):
        post_form(client, "/admin/payouts/", "/admin/payouts/settings", data)
        assert 'class="flash error"' in client.get("/admin/payouts/").get_data(as_text=True)
    prog = shop.ok("get", "/api/v1/program")
    assert (prog["payout_minimum"], prog["payout_schedule"]) == (5000, "monthly")
    html = client.get("/admin/payouts/").get_data(as_text=True)
    assert "below minimum" in html and 'value="50.00"' in html


def test_pages_need_sign_in_csrf_and_own_program(app, client, shop):
    [payout] = shop.ok("post", "/api/v1/payouts", {"partner_id": shop.ann["id"]}, 201)["data"]
    assert client.get("/admin/payouts/").status_code == 302
    assert client.get("/admin/webhooks/").status_code == 302
    other = new_program(app, name="Other", domain="other.example")
    other.email = make_user(app, other.program_id, "owner@other.example")
    login(client, other.email)
    assert client.get(f"/admin/payouts/{payout['id']}").status_code == 404
    resp = post_form(client, "/admin/payouts/", f"/admin/payouts/{payout['id']}/pay",
                     {"reference": "stolen"})
    assert resp.status_code == 404
    assert "Ann" not in client.get("/admin/payouts/").get_data(as_text=True)
    resp = client.post(f"/admin/payouts/{payout['id']}/pay", data={"reference": "no-token"})
    assert resp.status_code == 400
    assert shop.ok("get", f"/api/v1/payouts/{payout['id']}")["status"] == "created"


def test_portal_payout_history(app, client, shop):
    [ann] = shop.ok("post", "/api/v1/payouts", {"partner_id": shop.ann["id"]}, 201)["data"]
    shop.ok("post", f"/api/v1/payouts/{ann['id']}/pay", {"reference": "PP-ANN-1"})
    [bob] = shop.ok("post", "/api/v1/payouts", {"partner_id": shop.bob["id"]}, 201)["data"]
    link = invitation(app, client, shop, shop.ann["id"])
    partner = app.test_client()
    partner.get(link)
    html = partner.get("/portal/payouts").get_data(as_text=True)
    assert "PP-ANN-1" in html and "10.00 USD" in html and "paid" in html
    assert "4.00 USD" not in html  # Bob's payout is Bob's
    assert 'href="/portal/payouts"' in partner.get("/portal/").get_data(as_text=True)
    shop.ok("post", f"/api/v1/payouts/{bob['id']}/cancel")
    [again] = shop.ok("post", "/api/v1/payouts", {"partner_id": shop.bob["id"]}, 201)["data"]
    bob_link = invitation(app, app.test_client(), shop, shop.bob["id"])
    bob_client = app.test_client()
    bob_client.get(bob_link)
    html = bob_client.get("/portal/payouts").get_data(as_text=True)
    assert "on its way" in html and html.count("4.00 USD") >= 1 and "canceled" not in html
    assert again["amount"] == 400


def test_admin_webhooks_page(app, client, shop, httpserver):
    httpserver.expect_request("/in", method="POST").respond_with_data("nope", status=503)
    login(client, shop.email)
    resp = post_form(client, "/admin/webhooks/", "/admin/webhooks/",
                     {"url": httpserver.url_for("/in"), "events": ["conversion.created"],
                      "description": "CRM"})
    assert resp.status_code == 302
    [endpoint] = shop.ok("get", "/api/v1/webhook-endpoints")["data"]
    assert endpoint["events"] == ["conversion.created"]
    html = client.get("/admin/webhooks/").get_data(as_text=True)
    assert "whsec_" in html and "CRM" in html
    post_form(client, "/admin/webhooks/", "/admin/webhooks/", {"url": "ftp://x.example"})
    assert "url" in client.get("/admin/webhooks/").get_data(as_text=True)
    assert count(app, WebhookEndpoint) == 1

    sale(shop, "o9", 1000, "ann", days_ago=1)
    jobs(app)
    html = client.get("/admin/webhooks/").get_data(as_text=True)
    assert "conversion.created" in html and "503" in html and "HTTP 503" in html
    [d] = shop.ok("get", "/api/v1/webhook-deliveries")["data"]
    page = client.get(f"/admin/webhooks/deliveries/{d['id']}").get_data(as_text=True)
    assert "503" in page and "o9" in page
    post_form(client, "/admin/webhooks/", f"/admin/webhooks/deliveries/{d['id']}/retry", {})
    assert "Queued" in client.get("/admin/webhooks/").get_data(as_text=True)
    post_form(client, "/admin/webhooks/", f"/admin/webhooks/{endpoint['id']}/status",
              {"status": "disabled"})
    assert shop.ok("get", f"/api/v1/webhook-endpoints/{endpoint['id']}")["status"] == "disabled"
    post_form(client, "/admin/webhooks/", f"/admin/webhooks/{endpoint['id']}/delete", {})
    assert shop.ok("get", "/api/v1/webhook-endpoints")["data"] == []
    assert count(app, OutgoingDelivery) == 1  # the log stays
