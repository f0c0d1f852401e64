"""Due work for `touchpoint jobs run` (cron it every few minutes): approve commissions whose
holding period ended, retry deliveries that failed, forget old IP salts, create the payouts a
program's schedule makes due, and send the outgoing webhooks waiting in the outbox."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func
from sqlmodel import select

from core import inbox, outgoing_webhooks, payouts
from core.db import get_db
from core.ledger import signed_into
from core.models import Conversion, LedgerEntry, Program


def approve_due(now: datetime) -> int:
    """pending -> approved for conversions older than the program's hold_days; disputed
    (held) ones wait. Returns how many ledger entries were written."""
    db = get_db()
    written = 0
    with db.write() as s:
        for program in s.exec(select(Program)).all():
            cutoff = now - timedelta(days=program.hold_days)
            pending = signed_into("pending")
            rows = s.exec(
                select(LedgerEntry.conversion_id, LedgerEntry.partner_id, LedgerEntry.currency,
                       func.sum(pending))
                .join(Conversion, Conversion.id == LedgerEntry.conversion_id)
                .where(LedgerEntry.program_id == program.id, Conversion.occurred_at <= cutoff,
                       Conversion.status != "held")
                .group_by(LedgerEntry.conversion_id, LedgerEntry.partner_id, LedgerEntry.currency)
            ).all()
            for conversion_id, partner_id, currency, amount in rows:
                if amount and amount > 0:
                    s.add(LedgerEntry(program_id=program.id, partner_id=partner_id,
                                      conversion_id=conversion_id, currency=currency,
                                      kind="approved", from_bucket="pending",
                                      to_bucket="approved", amount=int(amount)))
                    conv = s.get(Conversion, conversion_id)
                    if conv is not None and conv.status == "pending":
                        conv.status = "approved"
                        s.add(conv)
                    written += 1
    return written


def refresh_statistics(engine: Any = None) -> None:
    """Let SQLite's planner know the tables' shapes (PostgreSQL's autovacuum does this itself);
    without statistics it may pick a narrow index for a report and read every row."""
    engine = engine or get_db().engine
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def run_due(now: datetime) -> dict[str, Any]:
    ext = current_app.extensions["touchpoint"]
    refresh_statistics()
    approved = approve_due(now)
    retried = inbox.retry_failed(get_db(), ext["registry"])
    salts = ext["clicks"].forget_old_salts(now)
    payouts_created = payouts.run_scheduled(get_db(), now)  # after approving: includes today's
    sent = outgoing_webhooks.dispatch_due(get_db(), ext["vault"], now)
    return {"approved": approved, "deliveries_processed": retried["processed"],
            "deliveries_failed": retried["failed"], "salts_forgotten": salts,
            "payouts_created": payouts_created, "webhooks_sent": sent["sent"],
            "webhooks_retrying": sent["retrying"], "webhooks_failed": sent["failed"],
            "webhooks_postponed": sent["postponed"]}
