"""The Paddle connector inside the app: `POST /webhooks/paddle/<source_id>` with real core.

Only this connector is registered, so the test does not depend on the others. The clock the
signature check reads is fixed through `webhooks._clock`; nothing waits or reads the real time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlmodel import select

from connectors.paddle import connector as paddle
from connectors.paddle import webhooks
from core.db import get_db
from core.models import Conversion, WebhookDelivery
from tests.conftest import fixture_json
from tests.factories import new_program

SECRET = "pdl_ntfset_01test_secretkey"
NOW = 1_713_000_000
TXN = "txn_01hv8wptq8987qeep44cyrewp9"


@pytest.fixture
def connectors():
    return (paddle,)


@pytest.fixture
def shop(app, monkeypatch):
    monkeypatch.setattr(webhooks, "_clock", lambda: NOW)
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    api.source = api.ok("post", "/api/v1/sources", {"platform": "paddle",
                                                    "webhook_secret": SECRET}, 201)
    return api


def deliver(api: Any, topic: str, data: dict[str, Any], event_id: str, secret: str = SECRET):
    body = json.dumps({"event_id": event_id, "event_type": topic,
                       "occurred_at": "2024-04-12T10:18:49.738971Z",
                       "notification_id": f"ntf_{event_id}", "data": data}).encode()
    digest = hmac.new(secret.encode(), f"{NOW}:".encode() + body, hashlib.sha256).hexdigest()
    return api.client.post(api.source["webhook_url"].replace("http://touchpoint.test", ""),
                           data=body, headers={"Paddle-Signature": f"ts={NOW};h1={digest}",
                                               "Content-Type": "application/json"})


def rows(app: Any, model: Any) -> list[Any]:
    with app.app_context(), get_db().session() as s:
        return list(s.exec(select(model)).all())


def referred(name: str) -> dict[str, Any]:
    txn = fixture_json("paddle", f"{name}.data.json")
    txn["custom_data"] = {"tp_ref": "ann"}
    return txn


def test_source_gets_its_paddle_webhook_url(shop):
    assert shop.source["webhook_url"] == \
        f"http://touchpoint.test/webhooks/paddle/{shop.source['id']}"


def test_paid_then_completed_is_one_sale_with_commission_on_revenue(app, shop):
    assert deliver(shop, "transaction.paid", referred("transaction.paid"), "evt_1").status_code == 200
    resp = deliver(shop, "transaction.completed", referred("transaction.completed"), "evt_2")
    assert resp.status_code == 200 and resp.get_json()["status"] == "processed"
    [conv] = rows(app, Conversion)
    assert conv.external_id == TXN
    assert (conv.amount, conv.paid_total, conv.currency) == (59900, 65215, "USD")
    assert conv.partner_id == shop.ann["id"]
    assert conv.commission == 5990  # 10 % of 599.00, tax excluded
    assert len(rows(app, WebhookDelivery)) == 2


def test_same_event_again_is_a_duplicate(app, shop):
    deliver(shop, "transaction.completed", referred("transaction.completed"), "evt_1")
    again = deliver(shop, "transaction.completed", referred("transaction.completed"), "evt_1")
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert len(rows(app, WebhookDelivery)) == 1


def test_forged_signature_is_401_and_stores_nothing(app, shop):
    resp = deliver(shop, "transaction.completed", referred("transaction.completed"), "evt_1",
                   secret="wrong")
    assert resp.status_code == 401
    assert rows(app, WebhookDelivery) == [] and rows(app, Conversion) == []


def test_full_refund_reverses_the_commission(app, shop):
    deliver(shop, "transaction.completed", referred("transaction.completed"), "evt_1")
    refund = fixture_json("paddle", "adjustment.updated.data.json")
    refund.update(status="approved", transaction_id=TXN)
    refund["totals"].update(total="65215", subtotal="59900", tax="5315")
    assert deliver(shop, "adjustment.updated", refund, "evt_2").status_code == 200
    [conv] = rows(app, Conversion)
    assert conv.refunded == 65215
    assert conv.commission == 0
