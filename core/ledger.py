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

from core import outbox
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
    """{(partner_id, currency, bucket): balance} for the entries matching `where`: one grouped
    query over the (from, to) pairs, folded into buckets here."""
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    q = (select(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.from_bucket,
                LedgerEntry.to_bucket, func.sum(LedgerEntry.amount))
         .where(*where)
         .group_by(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.from_bucket,
                   LedgerEntry.to_bucket))
    for partner_id, currency, frm, to, total in s.exec(q):
        if to is not None:
            out[(partner_id, currency, to)] += int(total)
        if frm is not None:
            out[(partner_id, currency, frm)] -= int(total)
    return out


def conversion_balances(s: Session, conversion_id: str) -> dict[tuple[str, str], Balances]:
    """{(partner_id, currency): Balances} of one conversion."""
    result: dict[tuple[str, str], Balances] = defaultdict(Balances)
    for (partner_id, currency, bucket), amount in _bucket_sums(
            s, LedgerEntry.conversion_id == conversion_id).items():
        setattr(result[(partner_id, currency)], bucket,
                getattr(result[(partner_id, currency)], bucket) + amount)
    return dict(result)


def after_entries(balances: dict[tuple[str, str], Balances],
                  entries: list[LedgerEntry]) -> dict[tuple[str, str], Balances]:
    """The balances once `entries` are added: what a re-read would give, without the query."""
    out = {key: Balances(b.pending, b.approved, b.paid, b.reversed) for key, b in balances.items()}
    for e in entries:
        bal = out.setdefault((e.partner_id, e.currency), Balances())
        if e.to_bucket is not None:
            setattr(bal, e.to_bucket, getattr(bal, e.to_bucket) + e.amount)
        if e.from_bucket is not None:
            setattr(bal, e.from_bucket, getattr(bal, e.from_bucket) - e.amount)
    return out


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
              currency: str, target: int, note: str | None = None,
              balances: dict[tuple[str, str], Balances] | None = None) -> list[LedgerEntry]:
    """Append what makes the conversion's net commission equal `target` for `partner_id`
    (and zero for anyone else, should the credited partner ever change). `balances`, when the
    caller knows them (a conversion created in this transaction has none), saves the query."""
    entries: list[LedgerEntry] = []
    if balances is None:
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
    outbox.ledger_written(s, entries)  # commission.created / commission.reversed, same transaction
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
