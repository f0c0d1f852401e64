"""Payouts: approved commission grouped per partner and currency, then paid once.

The lifecycle, and why it is shaped so:

1. **Create** (`create_payouts`: the admin page, `POST /api/v1/payouts`, or the program's
   `payout_schedule` from `touchpoint jobs run`). For every partner and currency, the amount
   *available* is each conversion's `approved` ledger balance minus what open (status `created`)
   payouts already reserve of it. A conversion whose approved balance went negative (a refund
   after it was paid) is included with its negative amount, so the payout nets it. A payout is
   made when the net is positive and at least the program's `payout_minimum`; the rest waits.
   Creating moves no ledger entry: the items (`PayoutItem`) reserve the amounts, so the approved
   balances stay what the earnings API shows until the money really left. Creation takes the
   program row `FOR UPDATE` on PostgreSQL (SQLite's `BEGIN IMMEDIATE` serialises writers
   already), so two admins creating at once cannot reserve the same balance twice.
2. **Pay** (`pay_payout`, with the merchant's reference). A conditional
   `UPDATE payout SET status='paid' ... WHERE id=? AND status='created'` decides who pays: of
   two concurrent requests the database lets exactly one change the row (PostgreSQL re-checks
   the WHERE after the first commits; SQLite runs them one after the other), and only the one
   that changed it writes the ledger movements (approved -> paid per item; paid -> approved for
   a netted negative item) and the `payout.paid` event. The other gets 409 `already_paid`.
3. **Cancel** (`cancel_payout`): the same conditional UPDATE to `canceled`; its reservations
   lapse and the balances are available again.

A refund that lands between create and pay is taken from `approved` by `core.ledger` (it may go
negative) and is netted against the next payout, exactly as a refund after payment. Conversions
held for review (`core.fraud`) have no approved balance, so they are never paid.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core import outbox
from core.db import Database
from core.errors import ApiError, not_found
from core.ids import new_id
from core.ledger import signed_into
from core.models import LedgerEntry, Partner, Payout, PayoutItem, PayoutRun, Program
from core.money import Money
from core.schemas import PayoutItemOut, PayoutOut

SCHEDULES = ("manual", "weekly", "monthly")

Key = tuple[str, str]  # (partner_id, currency)


def available(s: Session, program_id: str, partner_id: str | None = None,
              currency: str | None = None) -> dict[Key, dict[str, int]]:
    """{(partner, currency): {conversion_id: amount}}: approved balances not yet reserved by an
    open payout. Amounts may be negative (a refund after payment, to be netted)."""
    where = [LedgerEntry.program_id == program_id,
             or_(LedgerEntry.to_bucket == "approved", LedgerEntry.from_bucket == "approved")]
    if partner_id:
        where.append(LedgerEntry.partner_id == partner_id)
    if currency:
        where.append(LedgerEntry.currency == currency)
    out: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pid, cur, cid, total in s.exec(
            select(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.conversion_id,
                   func.sum(signed_into("approved")))
            .where(*where)
            .group_by(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.conversion_id)):
        if total:
            out[(pid, cur)][cid] += int(total)
    reserved = [Payout.program_id == program_id, Payout.status == "created"]
    if partner_id:
        reserved.append(Payout.partner_id == partner_id)
    if currency:
        reserved.append(Payout.currency == currency)
    for pid, cur, cid, total in s.exec(
            select(Payout.partner_id, Payout.currency, PayoutItem.conversion_id,
                   func.sum(PayoutItem.amount))
            .join(PayoutItem, PayoutItem.payout_id == Payout.id)
            .where(*reserved)
            .group_by(Payout.partner_id, Payout.currency, PayoutItem.conversion_id)):
        out[(pid, cur)][cid] -= int(total)
    return {key: {cid: amt for cid, amt in items.items() if amt}
            for key, items in out.items() if any(items.values())}


def _lock_program(s: Session, program_id: str) -> Program:
    """The program row, locked for this transaction on PostgreSQL (a no-op on SQLite, whose
    write transactions are serialised by BEGIN IMMEDIATE)."""
    program = s.exec(select(Program).where(Program.id == program_id).with_for_update()).one()
    return program


def create_payouts(s: Session, program_id: str, *, created_by: str,
                   partner_id: str | None = None, currency: str | None = None,
                   minimum: int | None = None, now: datetime | None = None) -> list[Payout]:
    """Create a payout for every (partner, currency) whose available net is positive and at
    least `minimum` (default: the program's `payout_minimum`). Returns them, largest first."""
    program = _lock_program(s, program_id)
    now = now or datetime.now(timezone.utc)
    created = []
    for (pid, cur), items in sorted(available(s, program_id, partner_id, currency).items()):
        net = sum(items.values())
        if net <= 0 or net < minimum_in(program, cur, minimum):
            continue
        payout = Payout(id=new_id("pay"), program_id=program_id, partner_id=pid, currency=cur,
                        amount=net, created_by=created_by, created_at=now)
        s.add(payout)
        s.flush()
        for cid, amount in sorted(items.items()):
            s.add(PayoutItem(payout_id=payout.id, conversion_id=cid, program_id=program_id,
                             amount=amount))
        created.append(payout)
    s.flush()
    return sorted(created, key=lambda p: (-p.amount, p.partner_id, p.currency))


def minimum_in(program: Program, currency: str, minimum: int | None = None) -> int:
    """The minimum payout in `currency`. It is an amount of the program's currency (5000 is
    50.00 USD); without exchange rates it cannot be carried into another currency (5000 would be
    5,000 JPY), so earnings in other currencies are paid whenever their net is positive."""
    floor = program.payout_minimum if minimum is None else minimum
    return floor if currency == program.currency else 0


def get_payout(s: Session, program_id: str, payout_id: str) -> Payout:
    payout = s.get(Payout, payout_id)
    if payout is None or payout.program_id != program_id:
        raise not_found("payout")
    return payout


def _refuse(s: Session, program_id: str, payout_id: str) -> ApiError:
    """Why a payout could not change status: it is gone, paid, or canceled."""
    s.expire_all()
    payout = get_payout(s, program_id, payout_id)
    if payout.status == "paid":
        ref = f" (reference {payout.reference})" if payout.reference else ""
        return ApiError("already_paid", f"payout {payout_id} was already paid{ref}; "
                        "nothing was paid again", 409)
    return ApiError("payout_canceled", f"payout {payout_id} is canceled; create a new one", 409)


def pay_payout(s: Session, program_id: str, payout_id: str, *, reference: str | None,
               paid_by: str, paid_at: datetime | None = None) -> Payout:
    """Mark a created payout paid and move its items approved -> paid in the ledger. Exactly
    one of any number of concurrent calls succeeds; the others raise 409 `already_paid`."""
    paid_at = paid_at or datetime.now(timezone.utc)
    changed = s.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.program_id == program_id,
               Payout.status == "created")
        .values(status="paid", reference=reference, paid_at=paid_at, paid_by=paid_by)
        .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise _refuse(s, program_id, payout_id)
    payout = s.get(Payout, payout_id)
    s.refresh(payout)
    for item in s.exec(select(PayoutItem).where(PayoutItem.payout_id == payout_id)):
        # A negative item nets a refund after an earlier payout: paid gives back to approved.
        frm, to = ("approved", "paid") if item.amount > 0 else ("paid", "approved")
        s.add(LedgerEntry(program_id=program_id, partner_id=payout.partner_id,
                          conversion_id=item.conversion_id, currency=payout.currency,
                          kind="paid", from_bucket=frm, to_bucket=to, amount=abs(item.amount),
                          payout_id=payout_id, note=reference))
    outbox.payout_paid(s, payout)
    s.flush()
    return payout


def cancel_payout(s: Session, program_id: str, payout_id: str) -> Payout:
    """Cancel a created payout: its reservations lapse. A paid payout cannot be canceled."""
    changed = s.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.program_id == program_id,
               Payout.status == "created")
        .values(status="canceled", canceled_at=datetime.now(timezone.utc))
        .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise _refuse(s, program_id, payout_id)
    payout = s.get(Payout, payout_id)
    s.refresh(payout)
    return payout


# --- the schedule --------------------------------------------------------------------------------

def period_of(schedule: str, now: datetime) -> str | None:
    """The period a scheduled run belongs to: ISO week ("2026-W09") or month ("2026-03");
    None for manual. The first `jobs run` in a period creates that period's payouts."""
    if schedule == "weekly":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if schedule == "monthly":
        return f"{now.year}-{now.month:02d}"
    return None


def run_scheduled(db: Database, now: datetime) -> int:
    """Create the due payouts of every program on a schedule; returns how many were created.
    Each program's run is one transaction whose `PayoutRun` row (primary key program+period)
    makes a second, concurrent `jobs run` fail on insert and skip it."""
    with db.session() as s:
        due = [(p.id, period_of(p.payout_schedule, now)) for p in s.exec(
            select(Program).where(Program.payout_schedule != "manual"))]
    made = 0
    for program_id, period in due:
        if period is None:
            continue
        try:
            with db.write() as s:
                if s.get(PayoutRun, (program_id, period)) is not None:
                    continue
                run = PayoutRun(program_id=program_id, period=period, created_at=now)
                s.add(run)
                s.flush()
                run.payouts = len(create_payouts(s, program_id, created_by="schedule", now=now))
                s.add(run)
                made += run.payouts
        except IntegrityError:
            continue  # another runner did this program's period
    return made


# --- reading -------------------------------------------------------------------------------------

def payout_out(s: Session, payout: Payout) -> PayoutOut:
    items = s.exec(select(PayoutItem).where(PayoutItem.payout_id == payout.id)
                   .order_by(PayoutItem.conversion_id)).all()
    partner = s.get(Partner, payout.partner_id)
    return PayoutOut(
        id=payout.id, partner_id=payout.partner_id, partner_name=partner.name if partner else "",
        currency=payout.currency, amount=payout.amount, status=payout.status,
        reference=payout.reference, created_by=payout.created_by, paid_by=payout.paid_by,
        created_at=payout.created_at, paid_at=payout.paid_at, canceled_at=payout.canceled_at,
        items=[PayoutItemOut(conversion_id=i.conversion_id, amount=i.amount) for i in items])


def due_summary(s: Session, program: Program) -> list[dict[str, Any]]:
    """What a run would pay now, per partner and currency, for the admin page."""
    names = dict(s.exec(select(Partner.id, Partner.name)
                        .where(Partner.program_id == program.id)).all())
    rows: list[dict[str, Any]] = []
    for (pid, cur), items in available(s, program.id).items():
        net = sum(items.values())
        rows.append({"partner_id": pid, "partner": names.get(pid, pid), "currency": cur,
                     "amount": net, "conversions": len(items),
                     "due": net > 0 and net >= minimum_in(program, cur),
                     "label": Money(net, cur).format()})
    return sorted(rows, key=lambda r: (not r["due"], -r["amount"], r["partner"]))
