"""/api/v1/payouts: create payouts from approved commissions, pay them once, export mass-payout
files (see `core.payouts` for the lifecycle and `core.payout_exports` for the file layouts)."""
from __future__ import annotations

from flask import Blueprint, Response
from sqlmodel import select

from core import partners as partner_ops
from core import payout_exports, payouts
from core.db import session
from core.errors import ApiError
from core.models import Partner, Payout
from core.schemas import PayoutCreate, PayoutExportQuery, PayoutOut, PayoutPay, PayoutQuery
from core.web.apiutil import current_program, listing, ok, page, writing
from core.web.openapi import operation

bp = Blueprint("payouts_api", __name__, url_prefix="/api/v1")


@bp.post("/payouts")
@operation("POST", "/api/v1/payouts", "Create payouts from approved commissions: one per partner "
           "and currency whose net (refunds after earlier payouts netted) reaches the program's "
           "payout_minimum. Omit partner_id for every partner; answers the payouts created",
           body=PayoutCreate, response=PayoutOut, many=True, status=201, tag="payouts")
def create_payouts(body: PayoutCreate):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        if body.partner_id:
            partner_ops.get_partner(s, program.id, body.partner_id)
        made = payouts.create_payouts(s, program.id, created_by="api",
                                      partner_id=body.partner_id, currency=body.currency)
        if body.partner_id and not made:
            raise ApiError("nothing_due", f"partner {body.partner_id} has no approved balance "
                           f"of at least the payout minimum ({program.payout_minimum} minor "
                           "units) that is not already in an open payout", 409)
        out = [payouts.payout_out(s, p) for p in made]
    resp = listing(out, None)
    resp.status_code = 201
    return resp


@bp.get("/payouts")
@operation("GET", "/api/v1/payouts", "List payouts, newest last", query=PayoutQuery,
           response=PayoutOut, many=True, tag="payouts")
def list_payouts(query: PayoutQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    stmt = select(Payout).where(Payout.program_id == program.id)
    if query.partner_id:
        partner_ops.get_partner(s, program.id, query.partner_id)  # another program's: 404
        stmt = stmt.where(Payout.partner_id == query.partner_id)
    if query.status:
        stmt = stmt.where(Payout.status == query.status)
    if query.currency:
        stmt = stmt.where(Payout.currency == query.currency)
    rows, nxt = page(Payout, stmt, query.limit, query.cursor, s)
    return listing([payouts.payout_out(s, p) for p in rows], nxt)


@bp.get("/payouts/export")
@operation("GET", "/api/v1/payouts/export", "A mass-payout CSV of the payouts (format=paypal: "
           "PayPal Payouts upload file; format=wise: Wise batch 'send by email' template); one "
           "currency per file", query=PayoutExportQuery, tag="payouts")
def export_payouts(query: PayoutExportQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    stmt = (select(Payout, Partner).join(Partner, Partner.id == Payout.partner_id)
            .where(Payout.program_id == program.id, Payout.status == query.status))
    if query.currency:
        stmt = stmt.where(Payout.currency == query.currency)
    if query.partner_id:
        partner_ops.get_partner(s, program.id, query.partner_id)  # another program's: 404
        stmt = stmt.where(Payout.partner_id == query.partner_id)
    rows = [(p, partner) for p, partner in s.exec(stmt.order_by(Payout.created_at, Payout.id))]
    name, text = payout_exports.export(query.format, rows, program.name)
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/payouts/<payout_id>")
@operation("GET", "/api/v1/payouts/{payout_id}", "One payout with the conversions it covers",
           response=PayoutOut, tag="payouts")
def get_payout(payout_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    return ok(payouts.payout_out(s, payouts.get_payout(s, program.id, payout_id)))


@bp.post("/payouts/<payout_id>/pay")
@operation("POST", "/api/v1/payouts/{payout_id}/pay", "Mark a payout paid with the transfer's "
           "reference: its commissions move approved -> paid. Paying twice is refused (409 "
           "already_paid), however close together the requests", body=PayoutPay,
           response=PayoutOut, tag="payouts")
def pay_payout(payout_id: str, body: PayoutPay):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        payout = payouts.pay_payout(s, program.id, payout_id, reference=body.reference,
                                    paid_by="api", paid_at=body.paid_at)
        out = payouts.payout_out(s, payout)
    return ok(out)


@bp.post("/payouts/<payout_id>/cancel")
@operation("POST", "/api/v1/payouts/{payout_id}/cancel", "Cancel an unpaid payout: its "
           "commissions are available to the next one", response=PayoutOut, tag="payouts")
def cancel_payout(payout_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        out = payouts.payout_out(s, payouts.cancel_payout(s, program.id, payout_id))
    return ok(out)
