"""The webhook inbox (dj-stripe's habit): store the verified delivery, answer, apply in batches.

`receive` commits the raw body under UNIQUE(source_id, delivery_key) before anything else, so a
delivery the platform sees answered is never lost, and then drains the source: the first request
to find the source's drain lock free applies every stored delivery of that source, oldest first,
up to BATCH per transaction, while requests arriving meanwhile only store and answer (their
deliveries are in the drainer's next batch). One commit per batch instead of one per delivery, and
the program, the source's secrets and the reward rules are read once per batch. On SQLite a
delivery is stored as a file first (`core.spool`), which the drainer moves into the table: taking
a delivery then never waits for SQLite's one writer, which the drainer holds.

A batch that fails is rolled back and redone one delivery per transaction (`process`), so a bad
delivery is marked `failed`, for `touchpoint jobs run` to retry, without holding back the others.
The same delivery twice is one row, and a processed row is never applied again. A crash loses no
answered delivery: rows still `received` (and files still waiting) are applied by the source's
next delivery or by `touchpoint jobs run`.
"""
from __future__ import annotations

import json
import threading
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from core import privacy
from core.connectors import Connector, Delivery
from core.events import PersonalDataErasure, PersonalDataRequest
from core.db import Database
from core.ingest import IngestContext, apply, prepare
from core.models import Program, Source, WebhookDelivery
from core.sources import context

MAX_ATTEMPTS = 3
BATCH = 100
# A request drains for at most this long, well inside the server's 30 s worker timeout; what is
# left is taken by the next delivery's request (or `jobs run`).
DRAIN_SECONDS = 10.0
PRIVACY_EVENTS = (PersonalDataRequest, PersonalDataErasure)


def receive(db: Database, connector: Connector, source: Source, delivery: Delivery) -> tuple[str, bool]:
    """Store a verified delivery, then drain its source; returns (status, created). The status
    is `processed` or `failed` once applied, `received` while another request is applying it."""
    # A visitor's IP address in a payload (a shop's `browser_ip`) is dropped before storing, for
    # webhooks and backfills alike: none is ever stored.
    delivery = privacy.without_addresses(delivery)
    key = delivery.delivery_id[:255]
    if db.spool is None:
        row_id, status, created = _store(db, source, delivery)
    else:  # SQLite: a file, so taking a delivery never waits for the drainer's transaction
        found = _lookup(db, source.id, key)
        if found is None:
            row_id, status = None, "received"
            created = db.spool.put(source.id, source.program_id, key, delivery)
        else:
            (row_id, status), created = found, False
    if status == "failed":
        return process(db, connector, row_id), created  # a platform's retry: try it again now
    if status == "received":
        _, held = _drain(db, connector, source.id)
        if held:  # else the drainer has it (busy sources answer without another read)
            found = _lookup(db, source.id, key)
            status = found[1] if found is not None else "received"
    return status, created


def _store(db: Database, source: Source, delivery: Delivery) -> tuple[int, str, bool]:
    """One INSERT that does nothing for a delivery already stored (by this request's platform
    retrying, or a concurrent worker: ON CONFLICT waits for its commit), then its row."""
    key = delivery.delivery_id[:255]
    with db.statement() as conn:
        row_id = conn.execute(_INSERT[db.engine.dialect.name], {
            "program_id": source.program_id, "source_id": source.id, "delivery_key": key,
            "topic": delivery.topic[:200], "headers": dict(delivery.headers), "body": delivery.body,
            "received_at": datetime.now(timezone.utc)}).scalar()
        if row_id is not None:
            return row_id, "received", True
        found = conn.execute(_LOOKUP, {"source_id": source.id, "key": key}).one()
        return found[0], found[1], False


def _move_spooled(db: Database, source_id: str, limit: int = BATCH) -> int:
    """Move up to `limit` waiting files of the source into the inbox table, in one transaction
    (the drain lock's holder only); returns how many files were taken. A file whose delivery is
    already a row (a crash after the commit, or the same delivery after its file was moved) is
    only removed."""
    if db.spool is None:
        return 0
    items = db.spool.waiting(source_id, limit)
    if not items:
        return 0
    with db.write() as s:
        stored = set(s.exec(select(WebhookDelivery.delivery_key).where(
            WebhookDelivery.source_id == source_id,
            WebhookDelivery.delivery_key.in_([w.key for w in items]))).all())  # type: ignore[attr-defined]
        rows = [{"program_id": w.program_id, "source_id": source_id, "delivery_key": w.key,
                 "topic": w.topic[:200], "headers": w.headers, "body": w.body,
                 "status": "received", "attempts": 0,
                 "received_at": datetime.fromtimestamp(w.received_ns / 1e9, timezone.utc)}
                for w in items if w.key not in stored]
        if rows:  # one executemany, not an ORM object and a statement each
            s.execute(insert(WebhookDelivery), rows)
    db.spool.remove(items)
    return len(items)


def move_all_spooled(db: Database) -> int:
    """Every source's waiting files into the table (`touchpoint jobs run`, after a crash left
    some with no delivery since to drain them); a source being drained is left to its drainer."""
    if db.spool is None:
        return 0
    with db.session() as s:
        source_ids = s.exec(select(Source.id)).all()
    moved = 0
    for source_id in source_ids:
        if not db.spool.has_waiting(source_id):
            continue
        with db.try_lock(f"inbox:{source_id}") as mine:
            while mine and (n := _move_spooled(db, source_id)):
                moved += n
    return moved


def drain(db: Database, connector: Connector, source_id: str,
          seconds: float = DRAIN_SECONDS) -> int:
    """Apply the source's stored deliveries unless another request already is; returns how many.
    After `seconds` with deliveries still waiting, a thread of this worker goes on with them."""
    return _drain(db, connector, source_id, seconds)[0]


def _drain(db: Database, connector: Connector, source_id: str,
           seconds: float = DRAIN_SECONDS) -> tuple[int, bool]:
    """(how many applied, whether this caller ever held the lock)."""
    deadline = time.monotonic() + seconds
    done, held = 0, False
    while time.monotonic() < deadline:
        with db.try_lock(f"inbox:{source_id}") as mine:
            if not mine:
                return done, held
            held = True
            while time.monotonic() < deadline:
                _move_spooled(db, source_id)
                applied = _apply_batch(db, connector, source_id)
                done += applied
                if applied < BATCH:
                    break  # all that waited when the batch was read; later ones: just below
        # A request that stored after our last batch found the lock taken and left its
        # delivery to us: look once more, now that the lock is free.
        if not _waiting(db, source_id):
            return done, held
    _continue_in_background(db, connector, source_id)
    return done, held


_continuing: set[str] = set()
_continuing_guard = threading.Lock()


def _continue_in_background(db: Database, connector: Connector, source_id: str) -> None:
    """The request has drained its share (its answer must not wait longer, nor the server's
    worker timeout strike), the backlog is not done: one thread per source and process drains
    the rest, under the same lock, so it never waits for the source's next delivery."""
    with _continuing_guard:
        if source_id in _continuing:
            return
        _continuing.add(source_id)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        try:
            with app.app_context():
                drain(db, connector, source_id, seconds=float("inf"))
        except Exception:  # noqa: BLE001 - what is left stays stored for `touchpoint jobs run`
            app.logger.exception("background drain of %s stopped", source_id)
        finally:
            with _continuing_guard:
                _continuing.discard(source_id)

    threading.Thread(target=run, name=f"drain-{source_id}", daemon=True).start()


def _waiting(db: Database, source_id: str) -> bool:
    if db.spool is not None and db.spool.has_waiting(source_id):
        return True
    with db.single_connection() as conn:  # after every drain: no transaction around it
        return conn.execute(_ANY_WAITING, {"source_id": source_id}).first() is not None


def _apply_batch(db: Database, connector: Connector, source_id: str) -> int:
    """Apply up to BATCH received deliveries in one transaction; on any error, one by one."""
    ids: list[int] = []
    after_commit: list = []
    try:
        with db.write() as s:
            rows = s.exec(select(WebhookDelivery).where(
                WebhookDelivery.source_id == source_id, WebhookDelivery.status == "received")
                .order_by(WebhookDelivery.id).limit(BATCH)).all()
            if not rows:
                return 0
            ids = [r.id for r in rows]  # type: ignore[misc]
            source = s.get(Source, source_id)
            program = s.get(Program, source.program_id)
            ctx = _context(s, connector, source, program)
            batch = [_events(connector, source, _reparse(row)) for row in rows]
            # What every delivery of the batch will read, fetched at once (core.batch_reads);
            # their writes wait for one flush.
            prepare(ctx, [e for events in batch for e in events])
            for row, events in zip(rows, batch):
                apply(ctx, events, flush=False)
                s.expunge(row)  # read only: marked processed below, in one statement
            s.flush()
            s.exec(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(  # type: ignore[call-overload]
                status="processed", error=None, attempts=WebhookDelivery.attempts + 1,
                processed_at=datetime.now(timezone.utc)))
            after_commit = ctx.after_commit
    except Exception:  # noqa: BLE001 - redone one by one below, where errors are kept per row
        if not ids:
            raise
        for row_id in ids:
            process(db, connector, row_id)
        return len(ids)
    _run_after_commit(after_commit)
    return len(ids)


def _lookup(db: Database, source_id: str, key: str) -> tuple[int, str] | None:
    """(row id, status) of the stored delivery; None while it is not a row (a file still
    waiting in the spool, or never stored)."""
    with db.single_connection() as conn:  # twice per delivery: no ORM session
        row = conn.execute(_LOOKUP, {"source_id": source_id, "key": key}).first()
    return (row[0], row[1]) if row is not None else None


def _insert_delivery(dialect) -> Any:  # type: ignore[no-untyped-def]
    table = WebhookDelivery.__table__
    columns = ("program_id", "source_id", "delivery_key", "topic", "headers", "body", "received_at")
    return dialect.insert(table).values(
        {**{name: bindparam(name, type_=table.c[name].type) for name in columns},
         "status": "received", "attempts": 0},
    ).on_conflict_do_nothing(index_elements=[table.c.source_id, table.c.delivery_key]
                             ).returning(table.c.id)


# Built once, as every delivery runs it (building and keying a statement costs more than
# running it).
_INSERT = {"postgresql": _insert_delivery(postgresql), "sqlite": _insert_delivery(sqlite)}
_ANY_WAITING = select(WebhookDelivery.id).where(
    WebhookDelivery.source_id == bindparam("source_id"),
    WebhookDelivery.status == "received").limit(1)
_LOOKUP = select(WebhookDelivery.id, WebhookDelivery.status).where(
    WebhookDelivery.source_id == bindparam("source_id"),
    WebhookDelivery.delivery_key == bindparam("key"))


def _context(s, connector: Connector, source: Source, program: Program) -> IngestContext:  # type: ignore[no-untyped-def]
    return IngestContext(session=s, program=program, origin=source.id, platform=connector.id,
                         source=source, connector=connector, source_ctx=context(source, connector))


def _events(connector: Connector, source: Source, delivery: Delivery) -> list:
    events = connector.translate(delivery)
    if source.status != "active":
        # An uninstalled account's orders no longer count, but privacy requests
        # (which arrive days after an uninstall) must still be carried out.
        events = [e for e in events if isinstance(e, PRIVACY_EVENTS)]
    return events


def _apply(ctx: IngestContext, connector: Connector, source: Source, delivery: Delivery) -> None:
    apply(ctx, _events(connector, source, delivery))


def _run_after_commit(tasks: list) -> None:
    for task in tasks:
        try:
            task()
        except Exception:  # noqa: BLE001 - write-back is best effort, never fails a delivery
            current_app.logger.warning("write-back failed", exc_info=True)


def process(db: Database, connector: Connector, delivery_id: int) -> str:
    """Translate and apply one stored delivery. Returns its status."""
    after_commit = []
    for attempt in range(MAX_ATTEMPTS):
        try:
            with db.write() as s:
                row = s.exec(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                             .with_for_update()).one()
                if row.status == "processed":
                    return row.status
                source = s.get(Source, row.source_id)
                ctx = _context(s, connector, source, s.get(Program, row.program_id))
                _apply(ctx, connector, source, _reparse(row))
                row.status, row.error = "processed", None
                row.attempts += 1
                row.processed_at = datetime.now(timezone.utc)
                s.add(row)
                after_commit = ctx.after_commit
            break
        except (IntegrityError, OperationalError):
            # Two workers raced on the same order: the loser retries and finds the winner's rows.
            if attempt == MAX_ATTEMPTS - 1:
                return _fail(db, delivery_id)
        except Exception:  # noqa: BLE001 - the error is kept on the row for the retry job
            return _fail(db, delivery_id)
    _run_after_commit(after_commit)
    return "processed"


def _reparse(row: WebhookDelivery) -> Delivery:
    """Rebuild the Delivery from the stored row (the signature was checked on arrival)."""
    try:
        payload = json.loads(row.body)
    except ValueError:
        payload = None
    return Delivery(delivery_id=row.delivery_key, topic=row.topic, payload=payload,
                    body=row.body, headers=row.headers or {})


def _fail(db: Database, delivery_id: int) -> str:
    error = traceback.format_exc()[-4000:]
    current_app.logger.error("delivery %s failed:\n%s", delivery_id, error)
    with db.write() as s:
        row = s.get(WebhookDelivery, delivery_id)
        row.status, row.error = "failed", error
        row.attempts += 1
        s.add(row)
    return "failed"


def retry_failed(db: Database, registry, limit: int = 1000) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Process deliveries that failed or were never processed (a crash after storing)."""
    counts = {"processed": 0, "failed": 0}
    move_all_spooled(db)
    with db.session() as s:
        rows = s.exec(select(WebhookDelivery.id, Source.platform)
                      .join(Source, Source.id == WebhookDelivery.source_id)
                      .where(WebhookDelivery.status != "processed",
                             WebhookDelivery.attempts < 10)
                      .order_by(WebhookDelivery.id).limit(limit)).all()
    for delivery_id, platform in rows:
        connector = registry.get(platform)
        if connector is not None:
            counts[process(db, connector, delivery_id)] += 1
    return counts
