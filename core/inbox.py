"""The webhook inbox (dj-stripe's habit): store the verified delivery first, process it after.

`store` commits the raw body under UNIQUE(source_id, delivery_key) before the platform gets its
2xx, so an answered delivery is never lost. `process` translates and applies it in its own
transaction; an error stays on the row and `touchpoint jobs run` retries it. The same delivery
twice is one row, and a row already processed is not processed again.
"""
from __future__ import annotations

import json
import traceback
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from core.connectors import Connector, Delivery
from core.events import PersonalDataErasure, PersonalDataRequest
from core.db import Database
from core.ingest import IngestContext, apply
from core.models import Program, Source, WebhookDelivery
from core.sources import context

MAX_ATTEMPTS = 3
PRIVACY_EVENTS = (PersonalDataRequest, PersonalDataErasure)


def store(db: Database, source: Source, delivery: Delivery) -> tuple[int, bool]:
    """(row id, created). A duplicate returns the existing row with created False."""
    key = delivery.delivery_id[:255]
    with db.write() as s:
        existing = s.exec(select(WebhookDelivery.id).where(
            WebhookDelivery.source_id == source.id, WebhookDelivery.delivery_key == key)).first()
        if existing is not None:
            return existing, False
    try:
        with db.write() as s:
            row = WebhookDelivery(program_id=source.program_id, source_id=source.id,
                                  delivery_key=key, topic=delivery.topic[:200],
                                  headers=dict(delivery.headers), body=delivery.body)
            s.add(row)
            s.flush()
            return row.id, True  # type: ignore[return-value]
    except IntegrityError:  # a concurrent worker stored the same delivery first
        with db.session() as s:
            existing = s.exec(select(WebhookDelivery.id).where(
                WebhookDelivery.source_id == source.id,
                WebhookDelivery.delivery_key == key)).one()
        return existing, False


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
                program = s.get(Program, row.program_id)
                ctx_source = context(source, connector)
                parsed = _reparse(connector, ctx_source, row)
                ctx = IngestContext(session=s, program=program, origin=source.id,
                                    platform=connector.id, source=source, connector=connector,
                                    source_ctx=ctx_source)
                events = connector.translate(parsed)
                if source.status != "active":
                    # An uninstalled account's orders no longer count, but privacy requests
                    # (which arrive days after an uninstall) must still be carried out.
                    events = [e for e in events if isinstance(e, PRIVACY_EVENTS)]
                apply(ctx, events)
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
    for task in after_commit:
        try:
            task()
        except Exception:  # noqa: BLE001 - write-back is best effort, never fails a delivery
            current_app.logger.warning("write-back failed", exc_info=True)
    return "processed"


def _reparse(connector: Connector, source, row: WebhookDelivery) -> Delivery:  # type: ignore[no-untyped-def]
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
