"""The webhook path with the fake connector: verify before storing, store before answering,
dedupe, keep errors on the row, and converge whatever the arrival order."""
from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import func, select

from core.db import get_db
from core.models import Click, Conversion, LedgerEntry, Source, WebhookDelivery
from core.sources import registry
from tests.factories import new_program
from tests.fakes import sign

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    api.source = api.ok("post", "/api/v1/sources", {"platform": "fake", "webhook_secret": "whsec"}, 201)
    return api


def deliver(api, payload, secret="whsec"):
    body = json.dumps(payload).encode()
    return api.client.post(api.source["webhook_url"].replace("http://touchpoint.test", ""),
                           data=body, headers={"X-Fake-Signature": sign(secret, body),
                                               "Content-Type": "application/json"})


def rows(app, model, *where):
    with app.app_context(), get_db().session() as s:
        return s.exec(select(model).where(*where)).all()


def test_source_created_with_webhook_url(app, shop):
    assert shop.source["webhook_url"] == f"http://touchpoint.test/webhooks/fake/{shop.source['id']}"
    with app.app_context(), get_db().session() as s:
        src = s.get(Source, shop.source["id"])
        assert "whsec" not in src.secrets_encrypted  # encrypted at rest
    resp = shop.post("/api/v1/sources", json={"platform": "nope"})
    assert resp.status_code == 400 and "platform" in resp.get_json()["error"]["message"]
    resp = shop.post("/api/v1/sources", json={"platform": "fake"})
    assert resp.status_code == 400 and "webhook_secret" in resp.get_json()["error"]["message"]
    resp = shop.post("/api/v1/sources", json={"platform": "fake", "webhook_secret": "x",
                                              "password": "y"})
    assert resp.status_code == 400 and "password" in resp.get_json()["error"]["message"]


def test_forged_signature_is_401_and_stores_nothing(app, shop):
    resp = deliver(shop, {"id": "d1", "topic": "sale", "order": "o1", "amount": 100,
                          "at": T0.isoformat()}, secret="wrong")
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "invalid_signature"
    assert rows(app, WebhookDelivery) == [] and rows(app, Conversion) == []
    resp = shop.client.post(f"/webhooks/fake/{shop.source['id']}", data=b"{}")
    assert resp.status_code == 401
    assert shop.client.post("/webhooks/fake/src_nope", data=b"{}").status_code == 404
    assert shop.client.post("/webhooks/nope/x", data=b"{}").status_code == 404


def test_same_delivery_twice_changes_nothing(app, shop):
    payload = {"id": "d1", "topic": "sale", "order": "o1", "amount": 1000, "ref": "ann",
               "at": T0.isoformat()}
    first = deliver(shop, payload)
    assert first.status_code == 200 and first.get_json()["status"] == "processed"
    second = deliver(shop, payload)
    assert second.status_code == 200 and second.get_json()["duplicate"] is True
    # A different delivery of the same order (a platform retry with a new id) is the same sale.
    deliver(shop, {**payload, "id": "d2"})
    assert len(rows(app, WebhookDelivery)) == 2
    [conv] = rows(app, Conversion)
    assert conv.commission == 100 and conv.partner_id == shop.ann["id"]
    assert len(rows(app, LedgerEntry)) == 1


def test_processing_error_is_kept_and_retried(app, shop):
    resp = deliver(shop, {"id": "boom1", "topic": "boom", "at": T0.isoformat()})
    assert resp.status_code == 200 and resp.get_json()["status"] == "failed"
    [row] = rows(app, WebhookDelivery)
    assert row.status == "failed" and "translate failed" in row.error


EVENTS = {
    "sale": {"topic": "sale", "order": "inv1", "amount": 10000, "paid_total": 11000,
             "aliases": ["ch_1"], "customer": "cus1", "subscription": "sub1"},
    "identify": {"topic": "identify", "customer": "cus1", "subscription": "sub1", "ref": "ann"},
    "refund": {"topic": "refund", "order": "ch_1", "amount": 2750, "cumulative": True},
    "dispute": {"topic": "dispute", "order": "ch_1", "dispute": "dp1", "status": "open"},
    "won": {"topic": "dispute", "order": "ch_1", "dispute": "dp1", "status": "won"},
}


@pytest.mark.parametrize("order", list(itertools.permutations(["sale", "identify", "refund",
                                                                "dispute", "won"]))[::12])
def test_any_arrival_order_gives_the_same_commission(app, shop, order):
    for i, name in enumerate(order):
        deliver(shop, {"id": f"d{i}", "at": T0.isoformat(), **EVENTS[name]})
    [conv] = rows(app, Conversion)
    assert conv.partner_id == shop.ann["id"]
    assert conv.refunded == 2750
    # 10% of 100.00 = 1000, minus 2750/11000 of it = 750; the dispute was won.
    assert conv.commission == 750 and conv.status == "partially_refunded"
    with app.app_context(), get_db().session() as s:
        net = s.exec(select(func.sum(LedgerEntry.amount)).where(
            LedgerEntry.to_bucket == "pending")).one() - (s.exec(select(func.sum(
                LedgerEntry.amount)).where(LedgerEntry.from_bucket == "pending")).one() or 0)
    assert net == 750


def test_lost_dispute_and_subscription_cancel(app, shop):
    base = {"customer": "cus1", "subscription": "sub1", "ref": "ann"}
    deliver(shop, {"id": "a", "topic": "sale", "order": "i1", "amount": 1000,
                   "at": T0.isoformat(), **base})
    deliver(shop, {"id": "b", "topic": "dispute", "order": "i1", "dispute": "x", "status": "lost",
                   "at": T0.isoformat()})
    deliver(shop, {"id": "c", "topic": "dispute", "order": "i1", "dispute": "x", "status": "open",
                   "at": T0.isoformat()})  # late "open" never undoes the outcome
    deliver(shop, {"id": "d", "topic": "cancel_subscription", "subscription": "sub1",
                   "at": (T0 + timedelta(days=10)).isoformat()})
    deliver(shop, {"id": "e", "topic": "sale", "order": "i2", "amount": 1000, "renewal": True,
                   "at": (T0 + timedelta(days=30)).isoformat(), **base})
    convs = {c.external_id: c for c in rows(app, Conversion)}
    assert convs["i1"].status == "reversed" and convs["i1"].commission == 0
    assert convs["i2"].status == "reversed" and convs["i2"].commission == 0


def test_disabled_source_ignores_deliveries(app, shop):
    with app.app_context(), get_db().write() as s:
        s.get(Source, shop.source["id"]).status = "disabled"
    resp = deliver(shop, {"id": "d1", "topic": "sale", "order": "o", "amount": 1,
                          "at": T0.isoformat()})
    assert resp.status_code == 200 and "not active" in resp.get_json()["ignored"]
    assert rows(app, Conversion) == []


def test_registry_is_the_argument(app):
    with app.app_context():
        assert registry().ids() == ["fake"]


def test_rotating_the_webhook_secret(app, shop):
    path = f"/api/v1/sources/{shop.source['id']}"
    assert shop.patch(path, json={}).status_code == 400
    assert shop.patch(path, json={"nope": "x"}).status_code == 400
    shop.ok("patch", path, {"webhook_secret": "rotated"})
    payload = {"id": "d1", "topic": "sale", "order": "o1", "amount": 100, "at": T0.isoformat()}
    assert deliver(shop, payload).status_code == 401
    assert deliver(shop, payload, secret="rotated").status_code == 200
    assert shop.delete(path).status_code == 200
    assert shop.get("/api/v1/sources").get_json()["data"] == []
    assert shop.patch(path, json={"webhook_secret": "x"}).status_code == 404
