"""Holding credited conversions for review: the two calls `core.ingest` makes, and reads.

States of `Conversion.review`: None (no rule fired), "held" (waits for an admin), "released"
(the admin let it through), "rejected" (the admin refused it).

The ledger stays honest by never crediting a held conversion: while held, `settle` reconciles
its commission to 0 (as it does for an open dispute), so nothing enters pending, approved or
paid and a payout can never include it. Releasing settles it again as usual (earned into
pending, approved by `touchpoint jobs run` once `hold_days` after the sale have passed, like
every other conversion); rejecting keeps the target at 0 for good. Because `settle` recomputes
the commission from everything known each time, refunds and disputes of held, released or
rejected conversions converge in any order, and a conversion that had been credited before it
was held (re-credited to another partner) is reversed by ordinary ledger entries.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import Session, select

from core.commissions import after_refunds
from core.fraud import screen
from core.fraud.case import Case
from core.fraud.settings import rules_of
from core.models import Conversion, Customer
from core.schemas import ReviewOut

if TYPE_CHECKING:
    from core.attribution import Attribution
    from core.ingest import IngestContext

DECIDED = ("released", "rejected")


def review_credit(ctx: IngestContext, conv: Conversion, att: Attribution,
                  customer: Customer | None = None) -> None:
    """Called by `core.ingest.credit` each time a conversion is credited, before the partner is
    set on it. Runs the program's rules and holds the conversion when any fires.

    An admin's decision stands while the credit stays with the partner it was made for; credit
    moving to another partner (late evidence, an earlier payment arriving late) is a new claim
    and is screened afresh. Never drops or changes anything but the review fields."""
    if att.partner_id is None:
        conv.review, conv.review_reasons = None, None
        conv.reviewed_at, conv.reviewed_by = None, None
        return
    if conv.review in DECIDED and conv.partner_id == att.partner_id:
        return
    click_id = att.click_id if att.touch == "click" else None
    reasons = screen(Case(ctx.session, ctx.program, conv, att.partner_id, click_id, customer,
                          ctx.reads), rules_of(ctx.program))
    conv.review = "held" if reasons else None
    conv.review_reasons = [r.as_dict() for r in reasons] or None
    conv.reviewed_at, conv.reviewed_by = None, None


def hold_status(conv: Conversion, status: str) -> str | None:
    """For `core.ingest.settle`: the status that replaces the commission with 0, if any.
    A rejection always shows; a hold shows unless the sale was reversed anyway (refunded in
    full, cancelled, or a lost dispute), which is the plainer truth."""
    if conv.review == "rejected":
        return "rejected"
    if conv.review == "held" and status != "reversed":
        return "held"
    return None


def held_count(s: Session, program_id: str) -> int:
    """Conversions waiting for an admin (the badge in the admin's navigation)."""
    return int(s.exec(select(func.count()).select_from(Conversion).where(
        Conversion.program_id == program_id, Conversion.review == "held")).one())


def commission_at_stake(conv: Conversion) -> int:
    """What the partner earns on it if released: the reward on the amount left after refunds."""
    paid = conv.paid_total or conv.amount
    return after_refunds(conv.commission_base, paid, conv.refunded)


def review_out(conv: Conversion) -> ReviewOut:
    from core.conversions import conversion_out

    return ReviewOut(conversion_id=conv.id, state=conv.review,  # type: ignore[arg-type]
                     reasons=conv.review_reasons or [], partner_id=conv.partner_id,
                     commission_at_stake=commission_at_stake(conv),
                     commission_currency=conv.commission_currency or conv.currency,
                     reviewed_at=conv.reviewed_at, reviewed_by=conv.reviewed_by,
                     conversion=conversion_out(conv))


def reviews_query(program_id: str, state: str, partner_id: str | None = None) -> Any:
    stmt = select(Conversion).where(Conversion.program_id == program_id, Conversion.review == state)
    if partner_id:
        stmt = stmt.where(Conversion.partner_id == partner_id)
    return stmt
