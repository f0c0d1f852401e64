"""Outgoing webhooks end to end, on SQLite and PostgreSQL: endpoints registered through the API,
events written in the transaction of their change, delivered by `touchpoint jobs run` to a real
HTTP receiver (pytest-httpserver), signed, retried with backoff, and shown in the delivery log."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import func, select
from werkzeug import Response

from core import outgoing_webhooks as hooks
from core.db import get_db
from core.jobs import run_due
from core.models import OutgoingDelivery, OutgoingEvent, WebhookEndpoint
from tests.factories import new_program

NOW = datetime.now(timezone.utc)


def count(app, model, *where) -> int:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def jobs(app, now=None):
    with app.app_context():
        return run_due(now or datetime.now(timezone.utc))


def sale(api, order, amount, ref="ann", days_ago=40):
    return api.ok("post", "/api/v1/track/sale", {
        "customer_id": f"c-{order}", "order_id": order, "amount": amount, "currency": "USD",
        "ref": ref, "occurred_at": (NOW - timedelta(days=days_ago)).isoformat()})


class Receiver:
    """A merchant's endpoint: checks every signature and keeps what it was sent."""

    def __init__(self, httpserver, secret_of):
        self.server, self.secret_of, self.got = httpserver, secret_of, []
        self.status = 200
        httpserver.expect_request("/hook", method="POST").respond_with_handler(self.handle)

    def handle(self, request):
        body = request.get_data()
        signed = hooks.verify_signature(self.secret_of(), request.headers["Touchpoint-Signature"],
                                        body)
        event = json.loads(body)
        self.got.append({"event": event, "signed": signed, "headers": dict(request.headers)})
        assert request.headers["Touchpoint-Event-Id"] == event["id"]
        return Response("ok" if self.status < 300 else "down", status=self.status)

    def types(self) -> list[str]:
        return [g["event"]["type"] for g in self.got]


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    return api


@pytest.fixture
def hook(shop, httpserver):
    endpoint = shop.ok("post", "/api/v1/webhook-endpoints",
                       {"url": httpserver.url_for("/hook"), "description": "books"}, 201)
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == []
    receiver = Receiver(httpserver, lambda: endpoint["secret"])
    receiver.endpoint = endpoint
    return receiver


def test_every_event_is_delivered_signed(app, shop, hook):
    conv = sale(shop, "o1", 10000)
    assert count(app, OutgoingEvent) == 2  # written with the sale, before any dispatch
    assert hook.got == []
    result = jobs(app)  # approves the sale and sends the two events
    assert result["webhooks_sent"] == 2
    assert hook.types() == ["conversion.created", "commission.created"]
    assert all(g["signed"] for g in hook.got)
    created = hook.got[0]["event"]
    assert created["data"]["conversion"]["id"] == conv["id"]
    # Rendered at commit: the conversion as credited, not the blank row first inserted.
    assert created["data"]["conversion"]["partner_id"] == shop.ann["id"]
    assert created["data"]["conversion"]["commission"] == 1000
    commission = hook.got[1]["event"]["data"]
    assert (commission["amount"], commission["currency"], commission["partner_id"]) == (
        1000, "USD", shop.ann["id"])
    t, v1 = hook.got[0]["headers"]["Touchpoint-Signature"].split(",")
    assert t.startswith("t=") and v1.startswith("v1=") and len(v1) == 3 + 64

    shop.ok("post", "/api/v1/track/refund", {"order_id": "o1", "amount": 2500, "refund_id": "r"})
    [payout] = shop.ok("post", "/api/v1/payouts", {}, 201)["data"]
    shop.ok("post", f"/api/v1/payouts/{payout['id']}/pay", {"reference": "B-42"})
    jobs(app)
    assert hook.types()[2:] == ["commission.reversed", "payout.paid"]
    reversed_ = hook.got[2]["event"]["data"]
    assert (reversed_["amount"], reversed_["full"]) == (250, False)
    paid = hook.got[3]["event"]["data"]["payout"]
    assert (paid["id"], paid["amount"], paid["reference"], paid["status"]) == (
        payout["id"], 750, "B-42", "paid")
    assert jobs(app)["webhooks_sent"] == 0  # nothing is sent twice

    # A new secret signs what is sent from then on.
    old = hook.endpoint["secret"]
    new = shop.ok("post", f"/api/v1/webhook-endpoints/{hook.endpoint['id']}/rotate-secret")
    assert new["secret"].startswith("whsec_") and new["secret"] != old
    hook.endpoint["secret"] = new["secret"]
    sale(shop, "o2", 1000, days_ago=1)
    jobs(app)
    assert all(g["signed"] for g in hook.got[4:]) and len(hook.got) == 6
    assert not hooks.verify_signature(old, hook.got[5]["headers"]["Touchpoint-Signature"],
                                      json.dumps(hook.got[5]["event"], separators=(",", ":"),
                                                 sort_keys=True).encode())

    log = shop.ok("get", "/api/v1/webhook-deliveries")["data"]
    assert len(log) == 6 and {d["status"] for d in log} == {"succeeded"}
    first = log[0]
    assert first["attempts"] == 1 and first["last_status_code"] == 200
    assert first["attempt_log"][0]["status_code"] == 200
    assert first["attempt_log"][0]["duration_ms"] >= 0 and first["attempt_log"][0]["error"] is None
    assert first["payload"]["type"] == first["event_type"]
    one = shop.ok("get", f"/api/v1/webhook-deliveries/{first['id']}")
    assert one["id"] == first["id"]
    assert len(shop.ok("get", "/api/v1/webhook-deliveries?event_type=payout.paid")["data"]) == 1


def test_failures_are_retried_with_backoff_then_given_up(app, shop, hook, monkeypatch):
    hook.status = 500
    sale(shop, "o1", 10000, days_ago=1)  # pending: only conversion.created and commission.created
    t0 = datetime.now(timezone.utc)
    # The first fails; the endpoint's other delivery waits with it instead of failing too.
    result = jobs(app, t0)
    assert (result["webhooks_retrying"], result["webhooks_postponed"]) == (1, 1)
    [d] = shop.ok("get", "/api/v1/webhook-deliveries?event_type=conversion.created")["data"]
    [other] = shop.ok("get", "/api/v1/webhook-deliveries?event_type=commission.created")["data"]
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 500)
    assert "HTTP 500" in d["last_error"]
    due = datetime.fromisoformat(d["next_attempt_at"])
    assert timedelta(seconds=55) < due - t0 < timedelta(seconds=65)  # first backoff: 1 minute
    assert (other["attempts"], other["next_attempt_at"]) == (0, d["next_attempt_at"])
    assert jobs(app, t0 + timedelta(seconds=30))["webhooks_retrying"] == 0  # not due yet
    assert len(hook.got) == 1
    assert jobs(app, t0 + timedelta(minutes=2))["webhooks_retrying"] == 1
    d = shop.ok("get", f"/api/v1/webhook-deliveries/{d['id']}")
    assert d["attempts"] == 2 and len(d["attempt_log"]) == 2
    assert datetime.fromisoformat(d["next_attempt_at"]) - (t0 + timedelta(minutes=2)) > \
        timedelta(seconds=115)  # second backoff: 2 minutes
    assert len(hook.got) == 2

    # A receiver that is down for good: given up after MAX_ATTEMPTS.
    monkeypatch.setattr(hooks, "MAX_ATTEMPTS", 3)
    assert jobs(app, t0 + timedelta(hours=1))["webhooks_failed"] == 1
    d = shop.ok("get", f"/api/v1/webhook-deliveries/{d['id']}")
    assert (d["status"], d["attempts"], d["next_attempt_at"]) == ("failed", 3, None)
    assert shop.ok("get", "/api/v1/webhook-deliveries?status=failed")["data"][0]["id"] == d["id"]

    # Back up; the merchant asks for the failed one again.
    hook.status = 204
    retried = shop.ok("post", f"/api/v1/webhook-deliveries/{d['id']}/retry")
    assert retried["status"] == "pending"
    assert jobs(app, t0 + timedelta(days=2))["webhooks_sent"] == 2  # it, and the one waiting
    d = shop.ok("get", f"/api/v1/webhook-deliveries/{d['id']}")
    assert (d["status"], d["last_status_code"], len(d["attempt_log"])) == ("succeeded", 204, 4)
    assert [g["event"]["id"] for g in hook.got if g["event"]["type"] == "conversion.created"] \
        == [d["event_id"]] * 4  # the same event id on every retry
    resp = shop.post(f"/api/v1/webhook-deliveries/{d['id']}/retry")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "already_delivered"


def test_unreachable_receiver_is_logged(app, shop):
    shop.ok("post", "/api/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/nothing-here",
                                                 "events": ["conversion.created"]}, 201)
    sale(shop, "o1", 1000, days_ago=1)
    assert jobs(app)["webhooks_retrying"] == 1
    [d] = shop.ok("get", "/api/v1/webhook-deliveries")["data"]
    assert d["last_status_code"] is None and "Connection" in d["last_error"]
    assert d["attempt_log"][0]["error"] == d["last_error"]


def test_event_filter_and_disabled_endpoints(app, shop, hook, httpserver):
    only = shop.ok("post", "/api/v1/webhook-endpoints",
                   {"url": httpserver.url_for("/hook"), "events": ["payout.paid"]}, 201)
    sale(shop, "o1", 1000, days_ago=1)
    assert count(app, OutgoingDelivery, OutgoingDelivery.endpoint_id == only["id"]) == 0
    shop.ok("patch", f"/api/v1/webhook-endpoints/{hook.endpoint['id']}", {"status": "disabled"})
    sale(shop, "o2", 1000, days_ago=1)
    jobs(app)
    assert hook.got == []  # disabled before dispatch: o1's deliveries wait, o2 queued none
    shop.ok("patch", f"/api/v1/webhook-endpoints/{hook.endpoint['id']}", {"status": "active"})
    jobs(app)
    assert len(hook.got) == 2 and all(g["signed"] for g in hook.got)
    assert {g["event"]["data"]["conversion"]["external_id"] for g in hook.got} == {"o1"}
    listed = shop.ok("get", "/api/v1/webhook-endpoints")["data"]
    assert {e["id"] for e in listed} == {hook.endpoint["id"], only["id"]}
    assert all(e["secret"] is None for e in listed)
    shop.ok("delete", f"/api/v1/webhook-endpoints/{only['id']}")
    assert shop.get(f"/api/v1/webhook-endpoints/{only['id']}").status_code == 404
    assert len(shop.ok("get", "/api/v1/webhook-endpoints")["data"]) == 1


def test_no_event_without_its_change(app, shop, hook):
    """A rejected request, a rolled-back transaction and a rolled-back savepoint leave no
    event: the outbox shares the transaction of the change."""
    from core.ingest import IngestContext, apply
    from core import events as ev
    from core.models import Program
    from core.money import Money

    sale(shop, "o1", 1000, days_ago=1)
    events_before = count(app, OutgoingEvent)
    resp = shop.post("/api/v1/track/sale", json={"customer_id": "c-o1", "order_id": "o1",
                                                 "amount": 999, "currency": "USD"})
    assert resp.status_code == 409
    assert count(app, OutgoingEvent) == events_before

    def sale_event(order: str) -> ev.Sale:
        return ev.Sale(order_id=order, amount=Money(5000, "USD"), occurred_at=NOW,
                       customer_id="c9", referral=ev.Referral(ref="ann"))

    with app.app_context():
        db = get_db()
        with pytest.raises(RuntimeError):
            with db.write() as s:
                ctx = IngestContext(s, s.get(Program, shop.program_id), "api", "api")
                apply(ctx, [sale_event("o-rolled-back")])
                raise RuntimeError("the request failed after the sale was applied")
        with db.write() as s:
            program = s.get(Program, shop.program_id)
            try:
                with s.begin_nested():
                    apply(IngestContext(s, program, "api", "api"), [sale_event("o-savepoint")])
                    raise RuntimeError("applying failed")
            except RuntimeError:
                pass
            apply(IngestContext(s, program, "api", "api"), [sale_event("o-kept")])
    assert len(_event_types(app)) == events_before + 2  # only o-kept's conversion and commission
    kept = [e for e in _payloads(app) if e["type"] == "conversion.created"]
    assert [e["data"]["conversion"]["external_id"] for e in kept] == ["o1", "o-kept"]


def _event_types(app) -> list[str]:
    with app.app_context(), get_db().session() as s:
        return list(s.exec(select(OutgoingEvent.type)).all())


def _payloads(app):
    with app.app_context(), get_db().session() as s:
        return [e.payload for e in s.exec(select(OutgoingEvent).order_by(OutgoingEvent.created_at))]


def test_nothing_is_written_without_endpoints(app, shop):
    sale(shop, "o1", 1000)
    jobs(app)
    assert count(app, OutgoingEvent) == 0 and count(app, OutgoingDelivery) == 0


def test_bad_endpoints_are_refused_and_change_nothing(app, shop):
    other = new_program(app, name="Other", domain="other.example")
    mine = shop.ok("post", "/api/v1/webhook-endpoints", {"url": "https://books.example/in"}, 201)
    before = count(app, WebhookEndpoint)
    for body, word in [({"url": "ftp://books.example/in"}, "url"), ({"url": "books"}, "url"),
                       ({}, "url"), ({"url": "https://x.example", "events": ["sale.made"]},
                                     "events"),
                       ({"url": "https://x.example", "secret": "mine"}, "secret")]:
        resp = shop.post("/api/v1/webhook-endpoints", json=body)
        assert resp.status_code == 400 and word in resp.get_json()["error"]["message"], body
    for body, word in [({"url": "javascript:alert(1)"}, "url"), ({"status": "deleted"}, "status"),
                       ({"events": None}, "events")]:
        resp = shop.patch(f"/api/v1/webhook-endpoints/{mine['id']}", json=body)
        assert resp.status_code == 400 and word in resp.get_json()["error"]["message"], body
    assert shop.ok("get", f"/api/v1/webhook-endpoints/{mine['id']}")["url"] == \
        "https://books.example/in"
    assert other.get(f"/api/v1/webhook-endpoints/{mine['id']}").status_code == 404
    assert other.delete(f"/api/v1/webhook-endpoints/{mine['id']}").status_code == 404
    assert other.post(f"/api/v1/webhook-endpoints/{mine['id']}/rotate-secret").status_code == 404
    assert other.post("/api/v1/webhook-deliveries/whd_x/retry").status_code == 404
    assert shop.get("/api/v1/webhook-deliveries?status=lost").status_code == 400
    assert count(app, WebhookEndpoint) == before


def test_signature_verification():
    body = b'{"id":"evt_1"}'
    header = hooks.sign("whsec_k", body, 1_700_000_000)
    assert hooks.verify_signature("whsec_k", header, body, now=1_700_000_100)
    assert not hooks.verify_signature("whsec_other", header, body, now=1_700_000_100)
    assert not hooks.verify_signature("whsec_k", header, body + b" ", now=1_700_000_100)
    assert not hooks.verify_signature("whsec_k", header, body, now=1_700_000_000 + 3600)
    assert not hooks.verify_signature("whsec_k", "v1=abc", body)
    assert [hooks.backoff(n).total_seconds() for n in (1, 2, 3, 10, 20)] == [
        60, 120, 240, 6 * 3600, 6 * 3600]
