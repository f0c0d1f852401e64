"""Outgoing webhooks, part 1: the transactional outbox.

An event exists exactly when the change that caused it was committed: `emit` adds an
`OutgoingEvent` row (and one `OutgoingDelivery` per subscribed endpoint) to the SAME session and
transaction as the conversion, ledger entry or payout it describes. A rollback, or the rollback
of a savepoint (the webhook inbox applies a delivery inside one), takes the event with it;
nothing is ever sent for a change that did not happen, and nothing is lost for one that did.
`core.outgoing_webhooks` sends the deliveries later, from `touchpoint jobs run`.

The payload is rendered just before the commit (a `before_commit` listener), from the objects'
final state in that transaction: a conversion created by ingest is announced with the partner
and commission it ended up with, not the blank row `_new_conversion` first inserted.

Programs without endpoints pay one indexed query per transaction that emits, and write nothing.

The three hooks callers use, each a single call at the place the change is written:
- `conversion_created(session, conversion)`: core.ingest, when a conversion row is inserted;
- `ledger_written(session, entries)`: core.ledger.reconcile, for commission.created/reversed;
- `payout_paid(session, payout)`: core.payouts, once the payout's status became paid.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from core.ids import new_id
from core.models import (
    Conversion, LedgerEntry, OutgoingDelivery, OutgoingEvent, Payout, WebhookEndpoint,
)

EVENT_TYPES = ("conversion.created", "commission.created", "commission.reversed", "payout.paid")

_PENDING = "tp_outbox_pending"
_ENDPOINTS = "tp_outbox_endpoints"

Render = Callable[[], dict[str, Any]]


def _subscribed(s: Session, program_id: str, event_type: str) -> list[str]:
    """Ids of the program's active endpoints that take `event_type` (cached per transaction)."""
    cache: dict[str, list[tuple[str, list[str]]]] = s.info.setdefault(_ENDPOINTS, {})
    if program_id not in cache:
        with s.no_autoflush:
            rows = s.exec(select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                WebhookEndpoint.program_id == program_id,
                WebhookEndpoint.status == "active")).all()
        cache[program_id] = [(eid, list(events or [])) for eid, events in rows]
    return [eid for eid, events in cache[program_id] if not events or event_type in events]


def emit(s: Session, program_id: str, event_type: str, render: Render,
         anchors: Iterable[Any] = ()) -> OutgoingEvent | None:
    """Queue `event_type` for the program's endpoints in this transaction. `render()` builds
    the `data` of the event just before commit; `anchors` are the rows that caused it: if a
    savepoint rollback removed any of them from the session, the event goes too."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown outgoing event type {event_type!r}")
    endpoints = _subscribed(s, program_id, event_type)
    if not endpoints:
        return None
    row = OutgoingEvent(id=new_id("evt"), program_id=program_id, type=event_type,
                        created_at=datetime.now(timezone.utc))
    s.add(row)
    s.info.setdefault(_PENDING, []).append((row, render, tuple(anchors), endpoints))
    return row


# --- the hooks -----------------------------------------------------------------------------------

def conversion_created(s: Session, conv: Conversion) -> None:
    """`conversion.created`, with the conversion as the API shows it at commit."""
    from core.conversions import conversion_out

    emit(s, conv.program_id, "conversion.created",
         lambda: {"conversion": conversion_out(conv).model_dump(mode="json")}, (conv,))


def ledger_written(s: Session, entries: list[LedgerEntry]) -> None:
    """`commission.created` for commission earned (or restored after a won dispute) and
    `commission.reversed` for commission taken back, one event per conversion, partner and
    direction in this batch of entries, with the amount that moved."""
    moved: dict[tuple[str, str, str, str, str], list[LedgerEntry]] = defaultdict(list)
    for e in entries:
        if e.to_bucket == "pending" and e.from_bucket in (None, "reversed"):
            kind = "commission.created"
        elif e.to_bucket == "reversed":
            kind = "commission.reversed"
        else:
            continue
        moved[(kind, e.program_id, e.conversion_id, e.partner_id, e.currency)].append(e)
    for (kind, program_id, conversion_id, partner_id, currency), rows in moved.items():
        amount = sum(r.amount for r in rows)
        full = any(r.kind == "reversed" for r in rows)
        emit(s, program_id, kind, _commission_render(s, conversion_id, partner_id, currency,
                                                     amount, kind, full), rows)


def _commission_render(s: Session, conversion_id: str, partner_id: str, currency: str,
                       amount: int, kind: str, full: bool) -> Render:
    def render() -> dict[str, Any]:
        from core.conversions import conversion_out

        conv = s.get(Conversion, conversion_id)
        data: dict[str, Any] = {
            "conversion_id": conversion_id, "partner_id": partner_id,
            "amount": amount, "currency": currency,
            "conversion": conversion_out(conv).model_dump(mode="json") if conv else None}
        if kind == "commission.reversed":
            data["full"] = full
        return data

    return render


def payout_paid(s: Session, payout: Payout) -> None:
    """`payout.paid`, with the payout as the API shows it."""
    from core.payouts import payout_out

    emit(s, payout.program_id, "payout.paid",
         lambda: {"payout": payout_out(s, payout).model_dump(mode="json")}, ())


# --- rendering at commit -------------------------------------------------------------------------

def envelope(row: OutgoingEvent, data: dict[str, Any]) -> dict[str, Any]:
    """What an endpoint receives: the event's id (to deduplicate), type, time and data."""
    return {"id": row.id, "type": row.type, "created_at": row.created_at.isoformat(),
            "program_id": row.program_id, "data": data}


def _still_here(s: OrmSession, objs: tuple[Any, ...]) -> bool:
    return all(obj in s for obj in objs)


@sa_event.listens_for(OrmSession, "before_commit")
def _render_pending(s: OrmSession) -> None:
    pending = s.info.pop(_PENDING, None)
    s.info.pop(_ENDPOINTS, None)
    if not pending:
        return
    kept = []
    for row, render, anchors, endpoints in pending:
        if row not in s:
            continue  # its savepoint rolled back: the change and its event are gone together
        if not _still_here(s, anchors):
            if row in s.new:
                s.expunge(row)
            else:
                s.delete(row)
            continue
        row.payload = envelope(row, render())
        s.add(row)
        kept.append((row, endpoints))
    # Events first, then their deliveries: without ORM relationships the unit of work does not
    # order inserts of different tables by their foreign keys.
    s.flush()
    for row, endpoints in kept:
        for endpoint_id in endpoints:
            s.add(OutgoingDelivery(id=new_id("whd"), program_id=row.program_id,
                                   endpoint_id=endpoint_id, event_id=row.id, event_type=row.type,
                                   next_attempt_at=row.created_at, created_at=row.created_at))


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _forget(s: OrmSession, transaction: Any) -> None:
    """The outermost transaction ended (a commit has already rendered its events): whatever is
    left was rolled back. A savepoint's end keeps the rest; `_still_here` sorts those out."""
    if transaction.parent is None:
        s.info.pop(_PENDING, None)
        s.info.pop(_ENDPOINTS, None)
