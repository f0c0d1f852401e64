"""/admin/payouts: what is due, the open payouts with "Mark paid" and "Cancel", the mass-payout
files, the history, and the program's payout minimum and schedule.

Part of /admin (same sign-in, CSRF on every form, program scoping) in its own blueprint, like
/admin/review. Every action calls `core.payouts`, as the API does: "Mark paid" is the same
conditional UPDATE, so a double click, or two admins at once, pay once and the second sees
"already paid".
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError
from sqlmodel import select

from core import payout_exports, payouts, programs
from core.db import get_db
from core.db import session as db_session
from core.errors import ApiError, describe_validation_error
from core.models import Conversion, Partner, Payout, PayoutItem, Program
from core.money import Money, exponent
from core.schemas import PayoutPay, ProgramPatch
from core.web import admin
from core.web.pages import protect_forms

bp = Blueprint("payouts", __name__, url_prefix="/admin/payouts", template_folder="templates")
bp.before_request(protect_forms)
bp.before_request(admin._require_login)
bp.context_processor(admin._inject)

HISTORY = 100


def _fail(exc: Exception) -> None:
    flash(describe_validation_error(exc) if isinstance(exc, ValidationError)
          else getattr(exc, "message", str(exc)), "error")


def _row(payout: Payout, names: dict[str, str], items: int) -> dict[str, Any]:
    return {"id": payout.id, "partner_id": payout.partner_id,
            "partner": names.get(payout.partner_id, payout.partner_id),
            "amount": Money(payout.amount, payout.currency).format(), "currency": payout.currency,
            "status": payout.status, "reference": payout.reference or "",
            "created_at": payout.created_at, "created_by": payout.created_by,
            "paid_at": payout.paid_at, "canceled_at": payout.canceled_at, "conversions": items}


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    names = dict(s.exec(select(Partner.id, Partner.name)
                        .where(Partner.program_id == program.id)).all())
    newest = Payout.created_at.desc()  # type: ignore[attr-defined]
    rows = list(s.exec(select(Payout).where(Payout.program_id == program.id)
                       .order_by(newest, Payout.id).limit(500)))
    ids = [p.id for p in rows]
    items: dict[str, int] = {}
    for pid in s.exec(select(PayoutItem.payout_id).where(
            PayoutItem.payout_id.in_(ids))):  # type: ignore[attr-defined]
        items[pid] = items.get(pid, 0) + 1
    open_rows = [_row(p, names, items.get(p.id, 0)) for p in rows if p.status == "created"]
    history = [_row(p, names, items.get(p.id, 0)) for p in rows if p.status != "created"][:HISTORY]
    return render_template(
        "admin/payouts.html", due=payouts.due_summary(s, program), open_rows=open_rows,
        history=history, open_currencies=sorted({r["currency"] for r in open_rows}),
        minimum=_major(program.payout_minimum, program.currency))


def _major(amount: int, currency: str) -> str:
    """Minor units as the decimal a person types into the minimum field."""
    return payout_exports.decimal_amount(amount, currency)


@bp.post("/create")
def create():  # type: ignore[no-untyped-def]
    with get_db().write() as s:
        made = payouts.create_payouts(s, g.program.id, created_by=g.user.email)
    if made:
        flash(f"{len(made)} payout{'s' if len(made) != 1 else ''} created. Export the file, "
              "send the money, then mark each paid.", "ok")
    else:
        flash("Nothing is due: no partner has an approved balance of at least the minimum.",
              "error")
    return redirect(url_for("payouts.index"))


@bp.post("/<payout_id>/pay")
def pay(payout_id: str):  # type: ignore[no-untyped-def]
    try:
        data = PayoutPay(reference=request.form.get("reference", "").strip())
        with get_db().write() as s:
            payout = payouts.pay_payout(s, g.program.id, payout_id, reference=data.reference,
                                        paid_by=g.user.email)
            label = Money(payout.amount, payout.currency).format()
        flash(f"Payout of {label} marked paid (reference {data.reference}).", "ok")
    except (ValidationError, ApiError) as exc:
        if isinstance(exc, ApiError) and exc.status == 404:
            abort(404)
        _fail(exc)
    return redirect(admin.local_next(request.form.get("next"), url_for("payouts.index")))


@bp.post("/<payout_id>/cancel")
def cancel(payout_id: str):  # type: ignore[no-untyped-def]
    try:
        with get_db().write() as s:
            payouts.cancel_payout(s, g.program.id, payout_id)
        flash("Payout canceled; its commissions go into the next one.", "ok")
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        _fail(exc)
    return redirect(url_for("payouts.index"))


@bp.post("/settings")
def settings():  # type: ignore[no-untyped-def]
    program = g.program
    form = request.form
    try:
        minimum = Money.parse(form.get("payout_minimum", "0").strip() or "0", program.currency)
        patch = ProgramPatch(payout_minimum=minimum.amount,
                             payout_schedule=form.get("payout_schedule") or None)
        with get_db().write() as s:
            programs.update_program(s, s.get(Program, program.id),
                                    ProgramPatch(**patch.model_dump(exclude_none=True)))
        flash("Payout settings saved.", "ok")
    except (ValidationError, ApiError) as exc:
        _fail(exc)
    except (ValueError, TypeError):
        flash(f"The minimum must be an amount in {program.currency} with at most "
              f"{exponent(program.currency)} decimals, like 50.00.", "error")
    return redirect(url_for("payouts.index"))


@bp.get("/export.csv")
def export():  # type: ignore[no-untyped-def]
    s, program = db_session(), g.program
    fmt = request.args.get("format", "")
    stmt = (select(Payout, Partner).join(Partner, Partner.id == Payout.partner_id)
            .where(Payout.program_id == program.id, Payout.status == "created"))
    if request.args.get("currency"):
        stmt = stmt.where(Payout.currency == request.args["currency"])
    rows = [(p, partner) for p, partner in s.exec(stmt.order_by(Payout.created_at, Payout.id))]
    try:
        name, text = payout_exports.export(fmt, rows, program.name)
    except ApiError as exc:
        _fail(exc)
        return redirect(url_for("payouts.index"))
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/<payout_id>")
def detail(payout_id: str):  # type: ignore[no-untyped-def]
    s, program = db_session(), g.program
    payout = s.get(Payout, payout_id)
    if payout is None or payout.program_id != program.id:
        abort(404)
    partner = s.get(Partner, payout.partner_id)
    lines = s.exec(select(PayoutItem, Conversion).join(
        Conversion, Conversion.id == PayoutItem.conversion_id).where(
        PayoutItem.payout_id == payout.id).order_by(Conversion.occurred_at)).all()
    return render_template(
        "admin/payout.html", p=_row(payout, {payout.partner_id: partner.name if partner else ""},
                                    len(lines)),
        lines=[{"conversion_id": c.id, "external_id": c.external_id, "event": c.event,
                "occurred_at": c.occurred_at, "amount": Money(i.amount, payout.currency).format(),
                "netted": i.amount < 0} for i, c in lines])
