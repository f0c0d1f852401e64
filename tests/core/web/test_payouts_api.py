"""Payouts through API v1, on SQLite and PostgreSQL: create from approved commissions, pay once
(also when many requests press "pay" at the same moment), cancel, net refunds after payment,
schedules and minimums, and the PayPal / Wise mass-payout files."""
from __future__ import annotations

import csv
import io
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import func, select

from core.db import get_db
from core.jobs import run_due
from core.models import LedgerEntry, Payout, PayoutItem, PayoutRun, Program
from tests.conftest import FIXTURES
from tests.factories import new_program

NOW = datetime.now(timezone.utc)


def count(app, model, *where) -> int:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def sale(api, order, amount, ref, currency="USD", days_ago=40):
    body = {"customer_id": f"c-{order}", "order_id": order, "amount": amount,
            "currency": currency, "ref": ref,
            "occurred_at": (NOW - timedelta(days=days_ago)).isoformat()}
    return api.ok("post", "/api/v1/track/sale", body)


def jobs(app, now=None):
    """What `touchpoint jobs run` does, at `now`."""
    with app.app_context():
        return run_due(now or datetime.now(timezone.utc))


def earnings(api, partner):
    return api.ok("get", f"/api/v1/partners/{partner['id']}/earnings")


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    api.reward(event="sale", value=10)
    return api


def test_create_pay_and_pay_again(app, shop):
    sale(shop, "o1", 10000, "ann")
    sale(shop, "o2", 5000, "ann")
    sale(shop, "o3", 3000, "bob")
    sale(shop, "o4", 4000, "bob", days_ago=1)  # still in its holding period
    jobs(app)
    made = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    assert [(p["partner_name"], p["amount"], p["currency"], p["status"]) for p in made] == [
        ("Ann", 1500, "USD", "created"), ("Bob", 300, "USD", "created")]
    ann = made[0]
    assert sorted(i["amount"] for i in ann["items"]) == [500, 1000]
    # Created is not paid: the balance stays approved, but a second run reserves nothing twice.
    assert (earnings(shop, shop.ann)["approved"], earnings(shop, shop.ann)["paid"]) == (1500, 0)
    assert shop.ok("post", "/api/v1/payouts", {}, 201)["data"] == []
    resp = shop.post("/api/v1/payouts", json={"partner_id": shop.ann["id"]})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "nothing_due"

    paid = shop.ok("post", f"/api/v1/payouts/{ann['id']}/pay", {"reference": "PP-BATCH-7"})
    assert paid["status"] == "paid" and paid["reference"] == "PP-BATCH-7" and paid["paid_at"]
    assert earnings(shop, shop.ann) | {"other_currencies": {}} == {
        "currency": "USD", "pending": 0, "approved": 0, "reversed": 0, "paid": 1500,
        "other_currencies": {}}
    entries = count(app, LedgerEntry)
    again = shop.post(f"/api/v1/payouts/{ann['id']}/pay", json={"reference": "PP-BATCH-8"})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "already_paid"
    assert "PP-BATCH-7" in again.get_json()["error"]["message"]
    assert count(app, LedgerEntry) == entries and earnings(shop, shop.ann)["paid"] == 1500
    assert shop.ok("get", f"/api/v1/payouts/{ann['id']}")["reference"] == "PP-BATCH-7"
    listed = shop.ok("get", "/api/v1/payouts?status=paid")["data"]
    assert [p["id"] for p in listed] == [ann["id"]]
    assert len(shop.ok("get", f"/api/v1/payouts?partner_id={shop.bob['id']}")["data"]) == 1
    page1 = shop.ok("get", "/api/v1/payouts?limit=1")
    page2 = shop.ok("get", f"/api/v1/payouts?limit=1&cursor={page1['next_cursor']}")
    assert {page1["data"][0]["id"], page2["data"][0]["id"]} == {p["id"] for p in made}


def test_refund_after_payout_is_netted_against_the_next(app, shop):
    sale(shop, "o1", 10000, "ann")
    sale(shop, "o2", 5000, "ann")
    jobs(app)
    [first] = shop.ok("post", "/api/v1/payouts", {"partner_id": shop.ann["id"]}, 201)["data"]
    shop.ok("post", f"/api/v1/payouts/{first['id']}/pay", {"reference": "one"})
    shop.ok("post", "/api/v1/track/refund", {"order_id": "o2", "refund_id": "late"})
    earn = earnings(shop, shop.ann)
    assert (earn["approved"], earn["paid"], earn["reversed"]) == (-500, 1500, 500)
    # Only the clawback: nothing is due, nothing is created.
    assert shop.ok("post", "/api/v1/payouts", {}, 201)["data"] == []
    sale(shop, "o3", 20000, "ann")
    jobs(app)
    [second] = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    assert second["amount"] == 2000 - 500
    assert sorted(i["amount"] for i in second["items"]) == [-500, 2000]
    shop.ok("post", f"/api/v1/payouts/{second['id']}/pay", {"reference": "two"})
    earn = earnings(shop, shop.ann)
    assert (earn["approved"], earn["paid"]) == (0, 1500 - 500 + 2000)


def test_refund_between_create_and_pay_waits_for_the_next_payout(app, shop):
    sale(shop, "o1", 10000, "ann")
    jobs(app)
    [payout] = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    shop.ok("post", "/api/v1/track/refund", {"order_id": "o1", "amount": 4000, "refund_id": "r"})
    paid = shop.ok("post", f"/api/v1/payouts/{payout['id']}/pay", {"reference": "x"})
    assert paid["amount"] == 1000  # what the merchant transferred, as the file said
    earn = earnings(shop, shop.ann)
    assert (earn["approved"], earn["paid"]) == (-400, 1000)


def test_cancel_frees_the_balance(app, shop):
    sale(shop, "o1", 10000, "ann")
    jobs(app)
    [payout] = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    canceled = shop.ok("post", f"/api/v1/payouts/{payout['id']}/cancel")
    assert canceled["status"] == "canceled" and canceled["canceled_at"]
    resp = shop.post(f"/api/v1/payouts/{payout['id']}/pay", json={"reference": "late"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "payout_canceled"
    [again] = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    assert again["amount"] == 1000 and again["id"] != payout["id"]
    shop.ok("post", f"/api/v1/payouts/{again['id']}/pay", {"reference": "ok"})
    resp = shop.post(f"/api/v1/payouts/{again['id']}/cancel")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "already_paid"


def test_currencies_are_paid_apart(app, shop):
    sale(shop, "o1", 10000, "ann")
    sale(shop, "o2", 8000, "ann", currency="EUR")
    jobs(app)
    made = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    assert sorted((p["currency"], p["amount"]) for p in made) == [("EUR", 800), ("USD", 1000)]
    eur = shop.ok("get", "/api/v1/payouts?currency=EUR")["data"]
    assert [p["amount"] for p in eur] == [800]
    resp = shop.get("/api/v1/payouts/export?format=paypal")
    assert resp.status_code == 400 and "currency" in resp.get_json()["error"]["message"]


def test_legacy_pay_now_endpoint_records_a_payout(app, shop):
    sale(shop, "o1", 10000, "ann")
    jobs(app)
    out = shop.ok("post", f"/api/v1/partners/{shop.ann['id']}/payouts", status=201)
    assert (out["approved"], out["paid"]) == (0, 1000)
    [payout] = shop.ok("get", "/api/v1/payouts")["data"]
    assert (payout["status"], payout["amount"], payout["created_by"]) == ("paid", 1000, "api")
    out = shop.ok("post", f"/api/v1/partners/{shop.ann['id']}/payouts", status=201)
    assert out["paid"] == 1000 and len(shop.ok("get", "/api/v1/payouts")["data"]) == 1


def test_minimum_and_schedule(app, shop):
    prog = shop.ok("get", "/api/v1/program")
    assert (prog["payout_minimum"], prog["payout_schedule"]) == (0, "manual")
    for body, word in [({"payout_minimum": -1}, "payout_minimum"),
                       ({"payout_minimum": 10.5}, "payout_minimum"),
                       ({"payout_minimum": "100"}, "payout_minimum"),
                       ({"payout_schedule": "daily"}, "payout_schedule"),
                       ({"payout_schedule": None}, "payout_schedule")]:
        resp = shop.patch("/api/v1/program", json=body)
        assert resp.status_code == 400 and word in resp.get_json()["error"]["message"], body
    assert shop.ok("get", "/api/v1/program")["payout_schedule"] == "manual"
    prog = shop.ok("patch", "/api/v1/program", {"payout_minimum": 500,
                                                "payout_schedule": "weekly"})
    assert (prog["payout_minimum"], prog["payout_schedule"]) == (500, "weekly")

    sale(shop, "o1", 10000, "ann")  # 1000: due
    sale(shop, "o2", 3000, "bob")   # 300: below the minimum, waits
    monday = datetime(2031, 3, 3, 6, 0, tzinfo=timezone.utc)
    assert jobs(app, monday)["payouts_created"] == 1
    assert jobs(app, monday + timedelta(days=2))["payouts_created"] == 0  # same ISO week
    assert [p["partner_id"] for p in shop.ok("get", "/api/v1/payouts")["data"]] == [shop.ann["id"]]
    assert shop.ok("get", "/api/v1/payouts")["data"][0]["created_by"] == "schedule"
    sale(shop, "o3", 3000, "bob")   # Bob now has 600
    assert jobs(app, monday + timedelta(days=7))["payouts_created"] == 1
    assert count(app, PayoutRun) == 2
    resp = shop.post("/api/v1/payouts", json={"partner_id": shop.ann["id"]})
    assert resp.status_code == 409 and "minimum" in resp.get_json()["error"]["message"]

    shop.ok("patch", "/api/v1/program", {"payout_schedule": "monthly"})
    sale(shop, "o4", 9000, "ann")
    assert jobs(app, datetime(2031, 4, 1, tzinfo=timezone.utc))["payouts_created"] == 1
    assert jobs(app, datetime(2031, 4, 20, tzinfo=timezone.utc))["payouts_created"] == 0


def test_exports_in_the_providers_layouts(app, shop):
    sale(shop, "o1", 10050, "ann")
    sale(shop, "o2", 3000, "bob")
    jobs(app)
    made = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    resp = shop.get("/api/v1/payouts/export?format=paypal")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "touchpoint-payouts-paypal-USD.csv" in resp.headers["Content-Disposition"]
    sample = next(csv.reader(io.StringIO((FIXTURES / "payouts" / "paypal_payouts_web_sample.csv")
                                         .read_text())))
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert [len(r) for r in rows] == [len(sample)] * 2  # no header row, PayPal's six columns
    by_email = {r[0]: r for r in rows}
    ann = by_email["ann@partners.example"]
    assert ann[1:4] == ["10.05", "USD", made[0]["id"]] and ann[5] == sample[5] == "PAYPAL"
    assert len(ann[3]) <= 30 and " " not in ann[3] and len(ann[4]) <= 400
    assert by_email["bob@partners.example"][1] == "3.00"

    resp = shop.get("/api/v1/payouts/export?format=wise&currency=USD")
    header = (FIXTURES / "payouts" / "wise_send_by_email_header.csv").read_text().strip()
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0] == header
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert {r["name"]: (r["recipientEmail"], r["amount"], r["receiverType"],
                        r["amountCurrency"], r["sourceCurrency"], r["targetCurrency"])
            for r in rows} == {
        "Ann": ("ann@partners.example", "10.05", "PRIVATE", "target", "USD", "USD"),
        "Bob": ("bob@partners.example", "3.00", "PRIVATE", "target", "USD", "USD")}
    assert all(len(r["paymentReference"]) <= 18 for r in rows)

    shop.ok("post", f"/api/v1/payouts/{made[0]['id']}/pay", {"reference": "W1"})
    open_rows = shop.get("/api/v1/payouts/export?format=paypal").get_data(as_text=True)
    assert "ann@" not in open_rows and "bob@" in open_rows
    paid_rows = shop.get("/api/v1/payouts/export?format=paypal&status=paid").get_data(as_text=True)
    assert "ann@" in paid_rows and "bob@" not in paid_rows


def test_bad_input_is_4xx_and_changes_nothing(app, shop):
    sale(shop, "o1", 10000, "ann")
    jobs(app)
    other = new_program(app, name="Other", domain="other.example")
    stranger = other.partner("Zed")
    before = (count(app, Payout), count(app, PayoutItem), count(app, LedgerEntry))
    for body, word in [({"currency": "usd"}, "currency"), ({"partner": "x"}, "partner"),
                       ({"partner_id": 5}, "partner_id")]:
        resp = shop.post("/api/v1/payouts", json=body)
        assert resp.status_code == 400 and word in resp.get_json()["error"]["message"], body
    resp = shop.post("/api/v1/payouts", json={"partner_id": stranger["id"]})
    assert resp.status_code == 404
    resp = shop.client.post("/api/v1/payouts", data="[", headers={
        "Authorization": f"Bearer {shop.key}", "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert shop.client.post("/api/v1/payouts", json={}).status_code == 401
    assert (count(app, Payout), count(app, PayoutItem), count(app, LedgerEntry)) == before

    [payout] = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    before = (count(app, Payout, Payout.status == "paid"), count(app, LedgerEntry))
    for body, word in [({}, "reference"), ({"reference": ""}, "reference"),
                       ({"reference": "x", "paid_at": "yesterday"}, "paid_at"),
                       ({"reference": "x", "extra": 1}, "extra")]:
        resp = shop.post(f"/api/v1/payouts/{payout['id']}/pay", json=body)
        assert resp.status_code == 400 and word in resp.get_json()["error"]["message"], body
    assert shop.post("/api/v1/payouts/pay_nope/pay", json={"reference": "x"}).status_code == 404
    # Another program cannot see, pay, cancel or export this program's payout.
    assert other.get(f"/api/v1/payouts/{payout['id']}").status_code == 404
    assert other.post(f"/api/v1/payouts/{payout['id']}/pay",
                      json={"reference": "x"}).status_code == 404
    assert other.post(f"/api/v1/payouts/{payout['id']}/cancel").status_code == 404
    assert other.get("/api/v1/payouts/export?format=paypal").get_data(as_text=True) == ""
    for query, word in [("format=excel", "format"), ("", "format"),
                        ("format=wise&status=canceled", "status")]:
        resp = shop.get(f"/api/v1/payouts/export?{query}")
        assert resp.status_code == 400 and word in resp.get_json()["error"]["message"], query
    assert shop.get("/api/v1/payouts?status=lost").status_code == 400
    assert (count(app, Payout, Payout.status == "paid"), count(app, LedgerEntry)) == before


def test_two_admins_press_pay_at_once(app, shop):
    """Eight requests with their own clients and database sessions race to pay one payout."""
    sale(shop, "o1", 10000, "ann")
    sale(shop, "o2", 5000, "ann")
    jobs(app)
    [payout] = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    barrier = threading.Barrier(8)
    answers: list[tuple[int, str]] = []

    def press(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        resp = client.post(f"/api/v1/payouts/{payout['id']}/pay", json={"reference": f"ref-{i}"},
                           headers={"Authorization": f"Bearer {shop.key}"})
        answers.append((resp.status_code, (resp.get_json().get("error") or {}).get("code", "")))

    threads = [threading.Thread(target=press, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [(200, "")] + [(409, "already_paid")] * 7, answers
    assert count(app, LedgerEntry, LedgerEntry.kind == "paid") == 2
    assert earnings(shop, shop.ann)["paid"] == 1500
    assert earnings(shop, shop.ann)["approved"] == 0


def test_concurrent_creates_reserve_once(app, shop):
    sale(shop, "o1", 10000, "ann")
    sale(shop, "o2", 5000, "bob")
    jobs(app)
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def create() -> None:
        client = app.test_client()
        barrier.wait()
        resp = client.post("/api/v1/payouts", json={},
                           headers={"Authorization": f"Bearer {shop.key}"})
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) == {201}, statuses
    payouts = shop.ok("get", "/api/v1/payouts")["data"]
    assert sorted((p["partner_name"], p["amount"]) for p in payouts) == [("Ann", 1000),
                                                                          ("Bob", 500)]


def test_openapi_describes_payouts(app, shop):
    spec = shop.ok("get", "/api/v1/openapi.json")
    for path, method in [("/api/v1/payouts", "post"), ("/api/v1/payouts", "get"),
                         ("/api/v1/payouts/export", "get"), ("/api/v1/payouts/{payout_id}", "get"),
                         ("/api/v1/payouts/{payout_id}/pay", "post"),
                         ("/api/v1/payouts/{payout_id}/cancel", "post")]:
        assert method in spec["paths"][path], path
    props = spec["components"]["schemas"]["ProgramPatch"]["properties"]
    assert "payout_minimum" in props and "payout_schedule" in props
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(Program)).first().payout_schedule == "manual"
