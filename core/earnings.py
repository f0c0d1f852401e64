"""A partner's earnings by state, and payouts (approved -> paid, negative balances netted)."""
from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from core.ledger import partner_balances, signed_into
from core.models import LedgerEntry, Program
from core.schemas import EarningsOut


def earnings(s: Session, program: Program, partner_id: str) -> EarningsOut:
    by_currency = partner_balances(s, program.id, partner_id)
    main = by_currency.pop(program.currency, None)
    others = {cur: {"pending": b.pending, "approved": b.approved, "reversed": b.reversed,
                    "paid": b.paid} for cur, b in sorted(by_currency.items())}
    return EarningsOut(currency=program.currency, pending=main.pending if main else 0,
                       approved=main.approved if main else 0,
                       reversed=main.reversed if main else 0, paid=main.paid if main else 0,
                       other_currencies=others)


def pay_out(s: Session, program: Program, partner_id: str) -> int:
    """Move every conversion's approved balance to paid, in the program's currency. A negative
    balance (a refund after an earlier payout) moves too, so it is netted in this payout.
    Returns the amount paid; nothing moves when the net is not positive."""
    approved = signed_into("approved")
    rows = s.exec(select(LedgerEntry.conversion_id, func.sum(approved))
                  .where(LedgerEntry.program_id == program.id,
                         LedgerEntry.partner_id == partner_id,
                         LedgerEntry.currency == program.currency)
                  .group_by(LedgerEntry.conversion_id)).all()
    balances = [(cid, int(total)) for cid, total in rows if total]
    net = sum(total for _, total in balances)
    if net <= 0:
        return 0
    for cid, total in balances:
        if total > 0:
            s.add(LedgerEntry(program_id=program.id, partner_id=partner_id, conversion_id=cid,
                              currency=program.currency, kind="paid", from_bucket="approved",
                              to_bucket="paid", amount=total))
        else:
            # A clawback: the paid bucket gives back what was reversed after an earlier payout.
            s.add(LedgerEntry(program_id=program.id, partner_id=partner_id, conversion_id=cid,
                              currency=program.currency, kind="paid", from_bucket="paid",
                              to_bucket="approved", amount=-total))
    return net
