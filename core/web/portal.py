"""/portal: each partner's own links, codes, clicks, conversions and earnings.

Partners sign in with an invitation link the program's admin creates on the partner's page: a
token signed with the app's secret key (itsdangerous, 7 days). The session then holds the
partner id AND the program id, and every query here filters by both; anything else, however
its id was guessed, is a 404.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from itsdangerous import BadSignature, SignatureExpired
from sqlmodel import select

from core import partners as partner_ops
from core import reports
from core.db import session as db_session
from core.earnings import earnings
from core.models import Conversion, Link, Partner, Payout, PayoutItem, Program, PromoCode
from core.money import Money
from core.web.admin import INVITE_MAX_AGE, conversion_view, invite_serializer
from core.web.pages import period_from_args, protect_forms

bp = Blueprint("portal", __name__, url_prefix="/portal", template_folder="templates")
bp.before_request(protect_forms)

PUBLIC = ("portal.login", "portal.accept")


@bp.before_request
def _require_partner():  # type: ignore[no-untyped-def]
    if request.endpoint in PUBLIC:
        return None
    pid, prg = session.get("partner_id"), session.get("partner_program_id")
    partner = db_session().get(Partner, pid) if pid else None
    if partner is None or partner.program_id != prg:
        session.pop("partner_id", None)
        session.pop("partner_program_id", None)
        return redirect(url_for("portal.login"))
    g.partner = partner
    g.program = db_session().get(Program, prg)
    return None


@bp.context_processor
def _inject() -> dict[str, Any]:
    return {"partner": g.get("partner"), "program": g.get("program"), "area": "portal"}


@bp.get("/login")
def login():  # type: ignore[no-untyped-def]
    return render_template("portal/login.html", error=request.args.get("error"))


@bp.get("/login/<token>")
def accept(token: str):  # type: ignore[no-untyped-def]
    try:
        data = invite_serializer().loads(token, max_age=INVITE_MAX_AGE)
    except SignatureExpired:
        return render_template("portal/login.html", error="expired"), 400
    except BadSignature:
        return render_template("portal/login.html", error="invalid"), 400
    partner = db_session().get(Partner, data.get("partner_id"))
    if partner is None or partner.program_id != data.get("program_id"):
        return render_template("portal/login.html", error="invalid"), 400
    admin = {k: session[k] for k in ("user_id", "program_id") if k in session}
    session.clear()
    session.update(admin)  # an admin trying the link keeps their own sign-in
    session.permanent = True
    session["partner_id"], session["partner_program_id"] = partner.id, partner.program_id
    return redirect(url_for("portal.home"))


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    session.pop("partner_id", None)
    session.pop("partner_program_id", None)
    return redirect(url_for("portal.login"))


def _mine(model: Any) -> Any:
    """A select of `model` rows of the signed-in partner in their program."""
    return select(model).where(model.program_id == g.program.id, model.partner_id == g.partner.id)


@bp.get("/")
def home():  # type: ignore[no-untyped-def]
    s, program, partner = db_session(), g.program, g.partner
    period = period_from_args(request.args)
    base = current_app.extensions["touchpoint"]["settings"].base_url
    out = reports.report_with_previous(s, program, "day", period.start, period.end,
                                       partner_id=partner.id)
    days = reports.daily_series(reports.report(s, program, "day", period.start, period.end,
                                               partner_id=partner.id), period.start, period.end)
    links = [partner_ops.link_out(link, base) for link in s.exec(_mine(Link).order_by(Link.created_at))]
    codes = list(s.exec(_mine(PromoCode).order_by(PromoCode.created_at)))
    convs = list(s.exec(_mine(Conversion).order_by(Conversion.occurred_at.desc()).limit(25)))
    names = {partner.id: partner.name}
    return render_template(
        "portal/home.html", period=period, out=out, earnings=earnings(s, program, partner.id),
        points=[(r.key, r.clicks, r.revenue) for r in days], links=links, codes=codes,
        referral_url=partner_ops.partner_out(partner, [], program).referral_url,
        conversions=[conversion_view(c, names) for c in convs],
        clicks=reports.recent_clicks(s, program.id, partner.id, 10))


@bp.get("/conversions/<conversion_id>")
def conversion(conversion_id: str):  # type: ignore[no-untyped-def]
    c = db_session().exec(_mine(Conversion).where(Conversion.id == conversion_id)).first()
    if c is None:
        abort(404)
    return render_template("portal/conversion.html",
                           c=conversion_view(c, {g.partner.id: g.partner.name}))


@bp.get("/links/<link_id>")
def link(link_id: str):  # type: ignore[no-untyped-def]
    s = db_session()
    row = s.exec(_mine(Link).where(Link.id == link_id)).first()
    if row is None:
        abort(404)
    base = current_app.extensions["touchpoint"]["settings"].base_url
    period = period_from_args(request.args)
    out = reports.report_with_previous(s, g.program, "day", period.start, period.end,
                                       partner_id=g.partner.id,
                                       filters=reports.Filters(campaign=row.campaign) if row.campaign else None)
    return render_template("portal/link.html", link=partner_ops.link_out(row, base), out=out,
                           period=period)


@bp.get("/payouts")
def payouts():  # type: ignore[no-untyped-def]
    """The partner's payout history: what was paid, when, with which reference, and what is
    on its way (created, not yet paid). Canceled payouts are the program's business."""
    s = db_session()
    rows = list(s.exec(_mine(Payout).where(Payout.status != "canceled")
                       .order_by(Payout.created_at.desc()).limit(200)))  # type: ignore[attr-defined]
    counts: dict[str, int] = {}
    for pid in s.exec(select(PayoutItem.payout_id).where(
            PayoutItem.payout_id.in_([p.id for p in rows]))):  # type: ignore[attr-defined]
        counts[pid] = counts.get(pid, 0) + 1
    return render_template(
        "portal/payouts.html", earnings=earnings(s, g.program, g.partner.id),
        rows=[{"amount": Money(p.amount, p.currency).format(), "status": p.status,
               "reference": p.reference or "", "created_at": p.created_at, "paid_at": p.paid_at,
               "conversions": counts.get(p.id, 0)} for p in rows])
