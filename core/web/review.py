"""/admin/review: the conversions the fraud rules held, each with its reasons and Release /
Reject buttons, and the program's rule switches.

It is part of /admin (same sign-in, same CSRF check on every form, same program scoping) but
lives in its own blueprint so the fraud area stays in one place. Decisions go through
`core.fraud.decisions.decide`, as the API's do; rule settings through `core.programs`, as
`PATCH /api/v1/program` does. The navigation's badge counts what waits (`held_reviews`).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError
from sqlmodel import select

from core import programs
from core.db import get_db
from core.db import session as db_session
from core.errors import ApiError, describe_validation_error
from core.fraud.decisions import decide
from core.fraud.review import commission_at_stake, held_count, reviews_query
from core.fraud.settings import rules_of
from core.models import Conversion, Customer, Program
from core.money import Money
from core.schemas import FraudRulesPatch, ProgramPatch
from core.web import admin
from core.web.pages import protect_forms

bp = Blueprint("review", __name__, url_prefix="/admin/review", template_folder="templates")
bp.before_request(protect_forms)
bp.before_request(admin._require_login)
bp.context_processor(admin._inject)

STATES = (("held", "Waiting"), ("released", "Released"), ("rejected", "Rejected"))
RULE_LABELS = {
    "self_referral": "Self-referral",
    "test_orders": "Partner's test order",
    "disposable_email": "Disposable email",
    "click_flood": "Click flood",
    "fast_conversion": "Too fast after the click",
}
LIMIT = 200


@bp.app_context_processor
def _badge() -> dict[str, Any]:
    """`held_reviews()` for the admin navigation; counted only where a page asks for it."""
    def held_reviews() -> int:
        program = g.get("program")
        return held_count(db_session(), program.id) if program is not None else 0

    return {"held_reviews": held_reviews}


def _view(c: Conversion, names: dict[str, str], emails: dict[str, str | None]) -> dict[str, Any]:
    row = admin.conversion_view(c, names)
    ccur = c.commission_currency or c.currency
    reasons = [{"label": RULE_LABELS.get(r.get("rule", ""), r.get("rule", "")),
                "message": r.get("message", "")} for r in (c.review_reasons or [])]
    row.update(reasons=reasons,
               at_stake=Money(commission_at_stake(c), ccur).format(),
               customer_email=emails.get(c.customer_id or "") or "",
               reviewed_by=c.reviewed_by or "", reviewed_at=c.reviewed_at)
    return row


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    state = request.args.get("state", "held")
    if state not in dict(STATES):
        state = "held"
    rows = list(s.exec(reviews_query(program.id, state)
                       .order_by(Conversion.occurred_at.desc()).limit(LIMIT)))
    names = admin._names(s, program.id)
    ids = {c.customer_id for c in rows if c.customer_id}
    emails = dict(s.exec(select(Customer.id, Customer.email).where(Customer.id.in_(ids))).all()) \
        if ids else {}
    return render_template("admin/review.html", state=state, states=STATES,
                           rows=[_view(c, names, emails) for c in rows], limit=LIMIT,
                           rules=rules_of(program), labels=RULE_LABELS)


@bp.post("/<conversion_id>/<decision>")
def decide_one(conversion_id: str, decision: str):  # type: ignore[no-untyped-def]
    if decision not in ("release", "reject"):
        abort(404)
    try:
        with get_db().write() as s:
            program = s.get(Program, g.program.id)
            conv = decide(s, program, conversion_id, decision, g.user.email)  # type: ignore[arg-type]
            ref = conv.external_id
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
        return redirect(url_for("review.index"))
    outcome = "released: its commission is credited" if decision == "release" \
        else "rejected: it earns nothing"
    flash(f"Conversion {ref} {outcome}.", "ok")
    return redirect(url_for("review.index"))


def _number(form: Any, name: str) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"{name.replace('_', ' ')}: must be a whole number")
    return int(raw)


@bp.post("/rules")
def save_rules():  # type: ignore[no-untyped-def]
    form = request.form
    try:
        patch = FraudRulesPatch(
            **{name: form.get(name) == "on" for name in RULE_LABELS},
            click_flood_max_clicks=_number(form, "click_flood_max_clicks"),
            click_flood_window_minutes=_number(form, "click_flood_window_minutes"),
            fast_conversion_seconds=_number(form, "fast_conversion_seconds"))
        values = FraudRulesPatch(**patch.model_dump(exclude_none=True))
        with get_db().write() as s:
            programs.update_program(s, s.get(Program, g.program.id), ProgramPatch(fraud_rules=values))
        flash("Fraud rules saved. They apply to conversions credited from now on.", "ok")
    except ValidationError as exc:
        flash(describe_validation_error(exc), "error")
    except ValueError as exc:
        flash(str(exc), "error")
    except ApiError as exc:
        flash(exc.message, "error")
    return redirect(url_for("review.index") + "#rules")
