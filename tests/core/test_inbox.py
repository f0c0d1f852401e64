"""The inbox's drain: deliveries stored while another request holds the source's drain lock are
applied by that request, a batch with a bad delivery still applies the others, and a delivery left
`received` (a crash between storing and applying) is applied by the source's next delivery."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from sqlmodel import select

from core import inbox
from core.connectors import Delivery
from core.db import get_db
from core.models import Conversion, LedgerEntry, Source, WebhookDelivery
from tests.factories import new_program
from tests.fakes import fake

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    api.source = api.ok("post", "/api/v1/sources", {"platform": "fake", "webhook_secret": "whsec"}, 201)
    return api


def delivery(n: int, topic: str = "sale") -> Delivery:
    payload = {"id": f"d{n}", "topic": topic, "order": f"o{n}", "amount": 1000, "ref": "ann",
               "at": T0.isoformat()}
    body = json.dumps(payload).encode()
    return Delivery(delivery_id=f"d{n}", topic=topic, payload=payload, body=body, headers={})


def statuses(app) -> dict[str, str]:
    with app.app_context(), get_db().session() as s:
        return {r.delivery_key: r.status for r in s.exec(select(WebhookDelivery))}


def waiting(app, db, source_id: str) -> int:
    """Stored, not applied: rows `received`, and on SQLite files waiting in the spool."""
    spooled = len(db.spool.waiting(source_id, 1000)) if db.spool is not None else 0
    return spooled + list(statuses(app).values()).count("received")


def test_deliveries_stored_during_a_drain_are_applied_by_the_drainer(app, shop):
    with app.app_context():
        db = get_db()
        with db.session() as s:
            source = s.get(Source, shop.source["id"])
        with db.try_lock(f"inbox:{source.id}") as mine:
            assert mine
            # Another request holds the lock: these only store and answer "received".
            answers = [inbox.receive(db, fake, source, delivery(n)) for n in range(5)]
            assert answers == [("received", True)] * 5
            with db.try_lock(f"inbox:{source.id}") as again:
                assert not again  # the lock excludes other holders, even in one process
        assert waiting(app, db, source.id) == 5
        # The holder's next look (or the next delivery) applies all of them, in one batch.
        assert inbox.drain(db, fake, source.id) == 5
        with db.session() as s:
            convs = s.exec(select(Conversion)).all()
            assert sorted(c.external_id for c in convs) == [f"o{n}" for n in range(5)]
            assert {c.commission for c in convs} == {100}
            assert len(s.exec(select(LedgerEntry)).all()) == 5
        assert set(statuses(app).values()) == {"processed"}


def test_a_bad_delivery_in_a_batch_fails_alone(app, shop):
    with app.app_context():
        db = get_db()
        with db.session() as s:
            source = s.get(Source, shop.source["id"])
        with db.try_lock(f"inbox:{source.id}"):
            for n in range(3):
                inbox.receive(db, fake, source, delivery(n))
            inbox.receive(db, fake, source, delivery(3, topic="boom"))
            inbox.receive(db, fake, source, delivery(4))
        assert inbox.drain(db, fake, source.id) == 5
    assert statuses(app) == {"d0": "processed", "d1": "processed", "d2": "processed",
                             "d3": "failed", "d4": "processed"}
    with app.app_context(), get_db().session() as s:
        assert len(s.exec(select(Conversion)).all()) == 4


def test_a_delivery_left_received_is_applied_by_the_next_one(app, shop):
    with app.app_context():
        db = get_db()
        with db.session() as s:
            source = s.get(Source, shop.source["id"])
        row_id, status, created = inbox._store(db, source, delivery(1))  # then the worker died
        assert (status, created) == ("received", True)
        assert inbox.receive(db, fake, source, delivery(2)) == ("processed", True)
        assert inbox.receive(db, fake, source, delivery(1)) == ("processed", False)
    assert statuses(app) == {"d1": "processed", "d2": "processed"}


def test_a_backlog_left_at_the_time_limit_is_drained_in_the_background(app, shop):
    with app.app_context():
        db = get_db()
        with db.session() as s:
            source = s.get(Source, shop.source["id"])
        for n in range(3):
            inbox._store(db, source, delivery(n))
        # The request's time is up at once: a thread of this process takes the backlog.
        assert inbox.drain(db, fake, source.id, seconds=0) == 0
        deadline = time.monotonic() + 20
        while set(statuses(app).values()) != {"processed"} and time.monotonic() < deadline:
            time.sleep(0.05)
    assert statuses(app) == {"d0": "processed", "d1": "processed", "d2": "processed"}


def test_deliveries_left_waiting_by_a_crash_are_applied_by_jobs_run(app, shop):
    """A delivery taken while the source is being drained waits (on SQLite as a file, not a row:
    no wait for the drainer's write transaction; on PostgreSQL as a `received` row); the same
    delivery again is still one; `touchpoint jobs run` applies what a crash left waiting. On
    SQLite, a file whose row was committed before a crash is only removed."""
    with app.app_context():
        db = get_db()
        with db.session() as s:
            source = s.get(Source, shop.source["id"])
        with db.try_lock(f"inbox:{source.id}"):
            assert inbox.receive(db, fake, source, delivery(1)) == ("received", True)
            assert inbox.receive(db, fake, source, delivery(1)) == ("received", False)
            assert inbox.receive(db, fake, source, delivery(2)) == ("received", True)
        assert waiting(app, db, source.id) == 2
        if db.spool is not None:
            assert statuses(app) == {}
            assert [w.key for w in db.spool.waiting(source.id, 10)] == ["d1", "d2"]
        # The server died here; `touchpoint jobs run` moves and applies what waited.
        assert inbox.retry_failed(db, {"fake": fake}) == {"processed": 2, "failed": 0}
        assert statuses(app) == {"d1": "processed", "d2": "processed"}
        assert waiting(app, db, source.id) == 0
        if db.spool is not None:
            # A crash between the move's commit and the file's removal: the same file again,
            # its row committed. The next drain finds it stored and only removes it.
            assert db.spool.put(source.id, source.program_id, "d2", delivery(2))
            assert inbox.drain(db, fake, source.id) == 0
            assert db.spool.waiting(source.id, 10) == []
        with db.session() as s:
            assert len(s.exec(select(WebhookDelivery)).all()) == 2
            assert len(s.exec(select(Conversion)).all()) == 2
