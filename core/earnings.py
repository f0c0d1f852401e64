"""A partner's earnings by state, and "pay now" (a payout created and paid at once)."""
from __future__ import annotations

from sqlmodel import Session

from core.ledger import partner_balances
from core.models import Program
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
    """Pay the partner now, in the program's currency: create a payout of everything available
    (no minimum: this is an explicit "pay now") and mark it paid at once, through
    `core.payouts`, so it is recorded, reserved and guarded like any other payout. A negative
    balance (a refund after an earlier payout) is netted. Returns the amount paid (0: nothing
    was due)."""
    from core.payouts import create_payouts, pay_payout

    made = create_payouts(s, program.id, created_by="api", partner_id=partner_id,
                          currency=program.currency, minimum=0)
    for payout in made:
        pay_payout(s, program.id, payout.id, reference=None, paid_by="api")
    return sum(p.amount for p in made)
