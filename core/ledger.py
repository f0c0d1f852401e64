"""The append-only commission ledger.

Every entry moves an amount between buckets: None -> pending (earned), pending -> approved,
approved -> paid, pending/approved -> reversed, reversed -> pending (restored). Nothing is ever
updated or deleted; to change a commission we post the difference between the target and what the
ledger already holds (pretix's reconcile-to-total habit), so replays and reorderings converge.
A reversal of money already paid out is taken from `approved`, which may go negative: the
partner's next payout nets it, so nothing is lost.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import case, func
from sqlmodel import Session, select

from core.models import LedgerEntry

BUCKETS = ("pending", "approved", "paid", "reversed")
EARNING = ("pending", "approved", "paid")


@dataclass
class Balances:
    pending: int = 0
    approved: int = 0
    paid: int = 0
    reversed: int = 0

    @property
    def net(self) -> int:
        """What the partner has earned on it, after reversals."""
        return self.pending + self.approved + self.paid


def _bucket_sums(s: Session, *where: object) -> dict[tuple[str, str, str], int]:
    """{(partner_id, currency, bucket): balance} for the entries matching `where`."""
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for col, sign in ((LedgerEntry.to_bucket, 1), (LedgerEntry.from_bucket, -1)):
        q = (select(LedgerEntry.partner_id, LedgerEntry.currency, col, func.sum(LedgerEntry.amount))
             .where(col.is_not(None), *where)
             .group_by(LedgerEntry.partner_id, LedgerEntry.currency, col))
        for partner_id, currency, bucket, total in s.exec(q):
            out[(partner_id, currency, bucket)] += sign * int(total)
    return out


def conversion_balances(s: Session, conversion_id: str) -> dict[tuple[str, str], Balances]:
    """{(partner_id, currency): Balances} of one conversion."""
    result: dict[tuple[str, str], Balances] = defaultdict(Balances)
    for (partner_id, currency, bucket), amount in _bucket_sums(
            s, LedgerEntry.conversion_id == conversion_id).items():
        setattr(result[(partner_id, currency)], bucket,
                getattr(result[(partner_id, currency)], bucket) + amount)
    return result


def partner_balances(s: Session, program_id: str, partner_id: str) -> dict[str, Balances]:
    """{currency: Balances} of one partner."""
    result: dict[str, Balances] = defaultdict(Balances)
    for (_, currency, bucket), amount in _bucket_sums(
            s, LedgerEntry.program_id == program_id, LedgerEntry.partner_id == partner_id).items():
        setattr(result[currency], bucket, getattr(result[currency], bucket) + amount)
    return result


def _entry(program_id: str, partner_id: str, conversion_id: str, currency: str, kind: str,
           frm: str | None, to: str | None, amount: int, note: str | None = None) -> LedgerEntry:
    return LedgerEntry(program_id=program_id, partner_id=partner_id, conversion_id=conversion_id,
                       currency=currency, kind=kind, from_bucket=frm, to_bucket=to, amount=amount,
                       note=note)


def reconcile(s: Session, *, program_id: str, conversion_id: str, partner_id: str | None,
              currency: str, target: int, note: str | None = None) -> list[LedgerEntry]:
    """Append what makes the conversion's net commission equal `target` for `partner_id`
    (and zero for anyone else, should the credited partner ever change)."""
    entries: list[LedgerEntry] = []
    balances = conversion_balances(s, conversion_id)
    for (pid, cur), bal in balances.items():
        if (pid, cur) != (partner_id, currency) and bal.net != 0:
            entries += _reverse(program_id, pid, conversion_id, cur, bal, bal.net, True, note)
    if partner_id is not None:
        bal = balances.get((partner_id, currency), Balances())
        delta = target - bal.net
        if delta < 0:
            entries += _reverse(program_id, partner_id, conversion_id, currency, bal, -delta,
                                target == 0, note)
        elif delta > 0:
            restore = min(delta, max(bal.reversed, 0))
            if restore:
                entries.append(_entry(program_id, partner_id, conversion_id, currency, "restored",
                                      "reversed", "pending", restore, note))
            if delta - restore:
                entries.append(_entry(program_id, partner_id, conversion_id, currency, "earned",
                                      None, "pending", delta - restore, note))
    for e in entries:
        s.add(e)
    return entries


def _reverse(program_id: str, partner_id: str, conversion_id: str, currency: str, bal: Balances,
             amount: int, full: bool, note: str | None) -> list[LedgerEntry]:
    kind = "reversed" if full else "partially_reversed"
    from_pending = min(amount, max(bal.pending, 0))
    out = []
    if from_pending:
        out.append(_entry(program_id, partner_id, conversion_id, currency, kind, "pending",
                          "reversed", from_pending, note))
    if amount - from_pending:
        out.append(_entry(program_id, partner_id, conversion_id, currency, kind, "approved",
                          "reversed", amount - from_pending, note))
    return out


def status_of_earning(bal: Balances) -> str:
    """pending while any of it is pending, approved once it all is (or was paid)."""
    if bal.pending > 0:
        return "pending"
    if bal.approved + bal.paid > 0:
        return "approved"
    return "pending"


# Kept for reports: SQL expression of the signed movement into a bucket.
def signed_into(bucket: str):  # type: ignore[no-untyped-def]
    return case((LedgerEntry.to_bucket == bucket, LedgerEntry.amount),
                (LedgerEntry.from_bucket == bucket, -LedgerEntry.amount), else_=0)
