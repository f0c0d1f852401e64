"""The Paddle issue's journey over HTTP, on SQLite and PostgreSQL: a checkout with a click,
renewals whose custom_data is empty or names another partner, a refund pending then approved,
a chargeback and its reversal, a cancellation; then the same notifications in another order."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from core.db import get_db
from core.models import Click, Conversion
from tests.conftest import fixture_json
from tests.connectors.paddle.test_app import connectors, deliver, shop  # noqa: F401 (fixtures)

T0 = datetime(2024, 4, 12, 10, 0, tzinfo=timezone.utc)
SUB = "sub_journey"


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def txn(txn_id: str, days: int, origin: str, custom_data: dict | None) -> dict:
    t = copy.deepcopy(fixture_json("paddle", "transaction.completed.data.json"))
    t.update(id=txn_id, origin=origin, custom_data=custom_data, subscription_id=SUB,
             billed_at=iso(T0 + timedelta(days=days)))
    t["payments"][0]["captured_at"] = iso(T0 + timedelta(days=days))
    return t


def adjustment(adj_id: str, txn_id: str, action: str, status: str, total: str) -> dict:
    a = copy.deepcopy(fixture_json("paddle", "adjustment.created.data.json"))
    a.update(id=adj_id, transaction_id=txn_id, action=action, status=status)
    a["totals"]["total"] = total
    return a


def notifications(click_id: str) -> list[tuple[str, dict]]:
    canceled = copy.deepcopy(fixture_json("paddle", "subscription.canceled.data.json"))
    canceled.update(id=SUB, canceled_at=iso(T0 + timedelta(days=75)))
    activated = copy.deepcopy(fixture_json("paddle", "subscription.activated.data.json"))
    activated.update(id=SUB, custom_data={"tp_click": click_id})
    return [
        ("transaction.paid", txn("txn_1", 0, "web", {"tp_click": click_id})),
        ("transaction.completed", txn("txn_1", 0, "web", {"tp_click": click_id})),
        ("subscription.activated", activated),
        ("transaction.completed", txn("txn_2", 30, "subscription_recurring", None)),
        ("transaction.completed", txn("txn_3", 60, "subscription_recurring", {"tp_ref": "bob"})),
        ("adjustment.created", adjustment("adj_r", "txn_2", "refund", "pending_approval", "13043")),
        ("adjustment.updated", adjustment("adj_r", "txn_2", "refund", "approved", "13043")),
        ("adjustment.created", adjustment("adj_c", "txn_3", "chargeback", "approved", "65215")),
        ("adjustment.created", adjustment("adj_cr", "txn_3", "chargeback_reverse", "approved", "65215")),
        ("subscription.canceled", canceled),
        ("transaction.completed", txn("txn_4", 90, "subscription_recurring", None)),
    ]


@pytest.fixture
def journey(app, shop):  # noqa: F811
    shop.ok("post", "/api/v1/rewards", {"event": "sale", "type": "percent", "value": 20,
                                        "partner_tag": "paddle"}, 201)
    shop.bob = shop.partner("Bob", key="bob")
    # Ann gets the 20% rule through her tag; the fixture's shop has a 10% base rule too.
    from core.models import PartnerTag
    with app.app_context(), get_db().write() as s:
        s.add(PartnerTag(program_id=shop.program_id, partner_id=shop.ann["id"], tag="paddle"))
    resp = shop.client.post("/api/v1/track/click", json={"publishable_key": shop.publishable_key,
                                                         "ref": "ann"})
    click_id = resp.get_json()["click_id"]
    with app.app_context(), get_db().write() as s:
        s.get(Click, click_id).created_at = T0 - timedelta(days=1)
    return shop, notifications(click_id)


def commissions(app) -> dict[str, tuple[str | None, int, str]]:
    with app.app_context(), get_db().session() as s:
        return {c.external_id: (c.partner_id, c.commission, c.status)
                for c in s.exec(select(Conversion))}


def expected(shop) -> dict:
    ann = shop.ann["id"]
    # revenue 599.00 (total 652.15 less 53.15 tax); 20% = 119.80
    return {"txn_1": (ann, 11980, "pending"),
            "txn_2": (ann, 9584, "partially_refunded"),  # 130.43 of 652.15 refunded
            "txn_3": (ann, 11980, "pending"),             # chargeback, then reversed
            "txn_4": (ann, 0, "reversed")}                # after the cancellation


def test_journey_in_order(app, journey):
    shop, notes = journey
    for i, (topic, data) in enumerate(notes):
        resp = deliver(shop, topic, data, f"evt_{i}")
        assert resp.status_code == 200 and resp.get_json()["status"] == "processed", (topic, resp.get_json())
        if topic == "adjustment.created" and data["status"] == "pending_approval":
            assert commissions(app)["txn_2"] == (shop.ann["id"], 11980, "pending")
        if data.get("action") == "chargeback":
            assert commissions(app)["txn_3"][1:] == (0, "reversed")
    assert commissions(app) == expected(shop)
    earn = shop.ok("get", f"/api/v1/partners/{shop.ann['id']}/earnings")
    assert (earn["pending"], earn["reversed"]) == (11980 + 9584 + 11980, 11980 - 9584)
    bob = shop.ok("get", f"/api/v1/partners/{shop.bob['id']}/earnings")
    assert bob["pending"] == 0


def test_journey_in_another_order(app, journey):
    shop, notes = journey
    order = [9, 6, 8, 7, 10, 4, 3, 5, 2, 1, 0]  # cancellation and adjustments before their sales
    for i in order:
        topic, data = notes[i]
        assert deliver(shop, topic, data, f"evt_{i}").status_code == 200
    assert commissions(app) == expected(shop)


def test_forged_and_stale_signatures(app, journey):
    shop, notes = journey
    topic, data = notes[0]
    assert deliver(shop, topic, data, "evt_x", secret="forged").status_code == 401
    from connectors.paddle import webhooks
    webhooks_clock = webhooks._clock
    try:
        webhooks._clock = lambda: webhooks_clock() + 3600
        assert deliver(shop, topic, data, "evt_y").status_code == 401
    finally:
        webhooks._clock = webhooks_clock
    assert commissions(app) == {}
