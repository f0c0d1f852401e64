"""/admin: the program's dashboard for its owners.

Sign-in with email and password (Werkzeug hashes, `core.users`), a signed session cookie
(HttpOnly, SameSite=Lax, Secure on https), CSRF on every form, the login POST rate-limited per
IP. Every query is scoped to the signed-in user's program. Management forms call the same
functions as the API (`core.partners`, `core.programs`); figures come from `core.reports`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint, Response, abort, current_app, flash, g, jsonify, redirect, render_template, request,
    session, url_for,
)
from itsdangerous import URLSafeTimedSerializer
from pydantic import ValidationError
from sqlmodel import select

from core import partners as partner_ops
from core import programs, reports
from core.conversions import conversions_query
from core.db import get_db
from core.db import session as db_session
from core.earnings import earnings
from core.errors import ApiError, describe_validation_error
from core.models import Conversion, Link, Partner, Program, PromoCode, Reward, Source, User
from core.money import Money
from core.schemas import ConversionQuery, LinkIn, PartnerIn, ProgramPatch, PromoCodeIn, RewardIn
from core.users import authenticate
from core.web.pages import LOGIN_LIMIT, limiter, period_from_args, protect_forms

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")
bp.before_request(protect_forms)

INVITE_SALT = "touchpoint-portal-invite"
INVITE_MAX_AGE = 7 * 24 * 3600
STATUSES = ("pending", "approved", "held", "reversed", "partially_refunded", "rejected")


def invite_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=INVITE_SALT)


@bp.before_request
def _require_login():  # type: ignore[no-untyped-def]
    if request.endpoint in ("admin.login",):
        return None
    user_id = session.get("user_id")
    user = db_session().get(User, user_id) if user_id else None
    if user is None or user.program_id != session.get("program_id"):
        session.pop("user_id", None)
        if request.endpoint == "admin.live":
            return jsonify({"error": {"code": "unauthorized", "message": "sign in again"}}), 401
        return redirect(url_for("admin.login", next=request.full_path if request.method == "GET" else None))
    g.user = user
    g.program = db_session().get(Program, user.program_id)
    return None


@bp.context_processor
def _inject() -> dict[str, Any]:
    return {"user": g.get("user"), "program": g.get("program"), "area": "admin"}


def _fail(exc: Exception) -> None:
    if isinstance(exc, ValidationError):
        flash(describe_validation_error(exc), "error")
    elif isinstance(exc, ApiError):
        flash(exc.message, "error")
    else:
        raise exc


def local_next(value: str | None, default: str, prefix: str = "/admin") -> str:
    """`value` when it is a path of this site under `prefix`, else `default`: a `next`
    parameter must never send a signed-in owner to another site (`//evil`, `/\\evil`,
    `https:evil`) nor smuggle a header (a newline in a Location is refused by Werkzeug)."""
    if not value or not value.startswith(prefix) or any(c in value for c in "\\\r\n\t\x00"):
        return default
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else default


def _back(default: str) -> Response:
    """Redirect to the form's `next` if it is local (see `local_next`), else to `default`."""
    return redirect(local_next(request.form.get("next"), default))  # type: ignore[return-value]


# --- sign in -------------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, methods=["POST"])
def login():  # type: ignore[no-untyped-def]
    error = None
    if request.method == "POST":
        with get_db().session() as s:
            user = authenticate(s, request.form.get("email", ""), request.form.get("password", ""))
        if user is not None:
            session.clear()  # a fresh session: nothing carried over from before sign-in
            session.permanent = True
            session["user_id"], session["program_id"] = user.id, user.program_id
            return redirect(local_next(request.args.get("next"), url_for("admin.overview")))
        error = "That email and password do not match an account."
    return render_template("admin/login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    session.clear()
    return redirect(url_for("admin.login"))


# --- overview and reports ------------------------------------------------------------------------

def _filters() -> reports.Filters:
    a = request.args
    return reports.Filters(tag=a.get("tag") or None, campaign=a.get("campaign") or None,
                           platform=a.get("platform") or None)


def _names(s: Any, program_id: str) -> dict[str, str]:
    return dict(s.exec(select(Partner.id, Partner.name).where(Partner.program_id == program_id)).all())


def conversion_view(c: Conversion, names: dict[str, str], rewards: dict[str, str] | None = None) -> dict[str, Any]:
    """A conversion as the pages and the live feed show it."""
    att = c.attribution or {}
    ccur = c.commission_currency or c.currency
    return {"id": c.id, "event": c.event, "kind": c.kind, "platform": c.platform,
            "external_id": c.external_id, "partner_id": c.partner_id,
            "partner": names.get(c.partner_id or "", "Unattributed"),
            "amount": Money(c.amount, c.currency).format() if c.kind == "sale" else "—",
            "refunded": Money(c.refunded, c.currency).format() if c.refunded else "",
            "commission": Money(c.commission, ccur).format(), "status": c.status,
            "review": c.review,
            "renewal": c.renewal, "campaign": c.campaign or "",
            "offer": (rewards or {}).get(c.reward_id or "", ""),
            "touch": att.get("touch") or "", "reason": att.get("reason") or "",
            "click_id": att.get("click_id") or c.click_id or "",
            "occurred_at": c.occurred_at.strftime("%d %b %Y %H:%M"),
            "occurred_iso": c.occurred_at.isoformat()}


def _headline(program: Program, out: dict[str, Any]) -> list[dict[str, Any]]:
    t, p, cur = out["totals"], out["previous"], program.currency
    from core.web.pages import money, number, pct

    return [
        {"key": "clicks", "label": "Clicks", "value": number(t["clicks"]), "now": t["clicks"], "was": p["clicks"]},
        {"key": "unique_clicks", "label": "Unique clicks", "value": number(t["unique_clicks"]), "now": t["unique_clicks"], "was": p["unique_clicks"]},
        {"key": "leads", "label": "Leads", "value": number(t["leads"]), "now": t["leads"], "was": p["leads"]},
        {"key": "conversions", "label": "Sales", "value": number(t["conversions"]), "now": t["conversions"], "was": p["conversions"]},
        {"key": "revenue", "label": "Revenue", "value": money(t["revenue"], cur), "now": t["revenue"], "was": p["revenue"]},
        {"key": "commission", "label": "Commission", "value": money(t["commission"], cur), "now": t["commission"], "was": p["commission"]},
        {"key": "conversion_rate", "label": "Conversion rate", "value": pct(t["conversion_rate"], 2), "now": t["conversion_rate"], "was": p["conversion_rate"]},
        {"key": "earnings_per_click", "label": "Earnings per click", "value": money(t["earnings_per_click"], cur), "now": t["earnings_per_click"], "was": p["earnings_per_click"]},
    ]


@bp.get("/")
def overview():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    period = period_from_args(request.args)
    f = _filters()
    out = reports.report_with_previous(s, program, "day", period.start, period.end, filters=f)
    days = reports.daily_series(reports.report(s, program, "day", period.start, period.end,
                                               filters=f), period.start, period.end)
    board = reports.report(s, program, "partner", period.start, period.end, filters=f)[:10]
    names = _names(s, program.id)
    recent = [conversion_view(c, names) for c in reports.recent_conversions(s, program.id, 10)]
    return render_template("admin/overview.html", period=period, out=out, cards=_headline(program, out),
                           points=[(r.key, r.clicks, r.revenue) for r in days], board=board,
                           recent=recent, filters=f, choices=reports.filter_choices(s, program.id))


@bp.get("/live.json")
def live():  # type: ignore[no-untyped-def]
    """What the overview polls every few seconds: the headline figures and the latest
    conversions (the page adds the ones it has not shown yet)."""
    program, s = g.program, db_session()
    period = period_from_args(request.args)
    out = reports.report_with_previous(s, program, "day", period.start, period.end, filters=_filters())
    names = _names(s, program.id)
    return jsonify({"now": datetime.now(timezone.utc).isoformat(),
                    "cards": {c["key"]: c["value"] for c in _headline(program, out)},
                    "conversions": [conversion_view(c, names)
                                    for c in reports.recent_conversions(s, program.id, 10)]})


@bp.get("/reports")
def report_page():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    period = period_from_args(request.args)
    group_by = request.args.get("group_by", "partner")
    if group_by not in reports.GROUPS:
        group_by = "partner"
    f = _filters()
    out = reports.report_with_previous(s, program, group_by, period.start, period.end, filters=f)
    return render_template("admin/reports.html", period=period, out=out, group_by=group_by,
                           groups=reports.GROUPS, filters=f,
                           choices=reports.filter_choices(s, program.id))


@bp.get("/reports.csv")
def report_csv():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    period = period_from_args(request.args)
    group_by = request.args.get("group_by", "partner")
    if group_by not in reports.GROUPS:
        abort(400)
    out = reports.report_with_previous(s, program, group_by, period.start, period.end, filters=_filters())
    name = f"touchpoint-{group_by}-{period.first_day}-{period.last_day}.csv"
    return Response(reports.report_csv(out), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- conversions ---------------------------------------------------------------------------------

def _conversion_stmt(program: Program) -> Any:
    period = period_from_args(request.args)
    status = request.args.get("status") or None
    q = ConversionQuery.model_validate({"status": status if status in STATUSES else None,
                                        "partner_id": request.args.get("partner_id") or None,
                                        "from": period.start, "to": period.end})
    stmt = conversions_query(program.id, q)
    if request.args.get("platform"):
        stmt = stmt.where(Conversion.platform == request.args["platform"])
    return stmt, period


@bp.get("/conversions")
def conversions():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    stmt, period = _conversion_stmt(program)
    rows = list(s.exec(stmt.order_by(Conversion.occurred_at.desc()).limit(200)))
    names = _names(s, program.id)
    rewards = _reward_names(s, program.id)
    return render_template("admin/conversions.html", period=period, statuses=STATUSES,
                           rows=[conversion_view(c, names, rewards) for c in rows],
                           partners=sorted(names.items(), key=lambda kv: kv[1].lower()),
                           choices=reports.filter_choices(s, program.id))


@bp.get("/conversions.csv")
def conversions_csv():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    stmt, period = _conversion_stmt(program)
    name = f"touchpoint-conversions-{period.first_day}-{period.last_day}.csv"
    return Response(reports.conversions_csv(s, program.id, stmt), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _reward_names(s: Any, program_id: str) -> dict[str, str]:
    return {r.id: r.name or f"Reward #{r.id[-6:]}"
            for r in s.exec(select(Reward).where(Reward.program_id == program_id))}


# --- partners ------------------------------------------------------------------------------------

@bp.get("/partners")
def partners():  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    period = period_from_args(request.args)
    rows = list(s.exec(select(Partner).where(Partner.program_id == program.id).order_by(Partner.name)))
    tags = partner_ops.tags_of(s, [p.id for p in rows])
    stats = {r.key: r for r in reports.report(s, program, "partner", period.start, period.end)}
    tag = request.args.get("tag")
    if tag:
        rows = [p for p in rows if tag in tags.get(p.id, [])]
    return render_template("admin/partners.html", period=period, rows=rows, tags=tags, stats=stats,
                           tag=tag, choices=reports.filter_choices(s, program.id))


@bp.post("/partners")
def create_partner():  # type: ignore[no-untyped-def]
    form = request.form
    try:
        data = PartnerIn(name=form.get("name", "").strip(), email=form.get("email", "").strip(),
                         key=form.get("key", "").strip() or None,
                         tags=[t.strip() for t in form.get("tags", "").split(",") if t.strip()])
        with get_db().write() as s:
            partner = partner_ops.create_partner(s, s.get(Program, g.program.id), data)
            pid = partner.id
    except (ValidationError, ApiError) as exc:
        _fail(exc)
        return redirect(url_for("admin.partners"))
    flash(f"Partner {data.name} added.", "ok")
    return redirect(url_for("admin.partner", partner_id=pid))


def _own_partner(s: Any, partner_id: str) -> Partner:
    partner = s.get(Partner, partner_id)
    if partner is None or partner.program_id != g.program.id:
        abort(404)
    return partner


@bp.get("/partners/<partner_id>")
def partner(partner_id: str):  # type: ignore[no-untyped-def]
    program, s = g.program, db_session()
    p = _own_partner(s, partner_id)
    period = period_from_args(request.args, default="90d")
    base = current_app.extensions["touchpoint"]["settings"].base_url
    links = list(s.exec(select(Link).where(Link.program_id == program.id, Link.partner_id == p.id)
                        .order_by(Link.created_at)))
    codes = list(s.exec(select(PromoCode).where(PromoCode.program_id == program.id,
                                                PromoCode.partner_id == p.id)))
    convs = list(s.exec(select(Conversion).where(Conversion.program_id == program.id,
                                                 Conversion.partner_id == p.id)
                        .order_by(Conversion.occurred_at.desc()).limit(25)))
    out = reports.report_with_previous(s, program, "day", period.start, period.end, partner_id=p.id)
    names = {p.id: p.name}
    return render_template(
        "admin/partner.html", p=p, tags=partner_ops.tags_of(s, [p.id]).get(p.id, []),
        links=[partner_ops.link_out(link, base) for link in links], codes=codes,
        conversions=[conversion_view(c, names, _reward_names(s, program.id)) for c in convs],
        earnings=earnings(s, program, p.id), out=out, period=period,
        referral_url=partner_ops.partner_out(p, [], program).referral_url,
        invite=session.pop("invite_url", None) if session.get("invite_for") == p.id else None)


@bp.post("/partners/<partner_id>/links")
def create_link(partner_id: str):  # type: ignore[no-untyped-def]
    form = request.form
    try:
        data = LinkIn(partner_id=partner_id, url=form.get("url", "").strip(),
                      key=form.get("key", "").strip() or None,
                      campaign=form.get("campaign", "").strip() or None)
        with get_db().write() as s:
            _own_partner(s, partner_id)
            partner_ops.create_link(s, s.get(Program, g.program.id), data)
        flash("Link created.", "ok")
    except (ValidationError, ApiError) as exc:
        _fail(exc)
    return redirect(url_for("admin.partner", partner_id=partner_id))


@bp.post("/partners/<partner_id>/codes")
def create_code(partner_id: str):  # type: ignore[no-untyped-def]
    try:
        data = PromoCodeIn(partner_id=partner_id, code=request.form.get("code", "").strip())
        with get_db().write() as s:
            _own_partner(s, partner_id)
            partner_ops.create_promo_code(s, s.get(Program, g.program.id), data)
        flash(f"Promo code {data.code} added.", "ok")
    except (ValidationError, ApiError) as exc:
        _fail(exc)
    return redirect(url_for("admin.partner", partner_id=partner_id))


@bp.post("/partners/<partner_id>/invite")
def invite(partner_id: str):  # type: ignore[no-untyped-def]
    """A sign-in link for the partner's portal, valid for 7 days."""
    _own_partner(db_session(), partner_id)
    token = invite_serializer().dumps({"partner_id": partner_id, "program_id": g.program.id})
    base = current_app.extensions["touchpoint"]["settings"].base_url
    session["invite_for"] = partner_id
    session["invite_url"] = f"{base}/portal/login/{token}"
    return redirect(url_for("admin.partner", partner_id=partner_id) + "#invite")


# --- rewards, settings, sources ------------------------------------------------------------------

@bp.route("/rewards", methods=["GET", "POST"])
def rewards():  # type: ignore[no-untyped-def]
    program = g.program
    if request.method == "POST":
        form = request.form
        try:
            duration = form.get("duration_months", "").strip()
            data = RewardIn(name=form.get("name", "").strip() or None,
                            event=form.get("event", "sale").strip() or "sale",
                            type=form.get("type", "percent"), value=form.get("value", "").strip() or "x",
                            duration_months=int(duration) if duration.isdigit() else None,
                            partner_tag=form.get("partner_tag", "").strip() or None)
            with get_db().write() as s:
                partner_ops.create_reward(s, s.get(Program, program.id), data)
            flash("Reward rule added.", "ok")
        except (ValidationError, ApiError) as exc:
            _fail(exc)
        return redirect(url_for("admin.rewards"))
    s = db_session()
    rows = [partner_ops.reward_out(r) for r in s.exec(
        select(Reward).where(Reward.program_id == program.id).order_by(Reward.created_at))]
    return render_template("admin/rewards.html", rows=rows,
                           choices=reports.filter_choices(s, program.id))


@bp.route("/settings", methods=["GET", "POST"])
def settings():  # type: ignore[no-untyped-def]
    program = g.program
    if request.method == "POST":
        form = request.form
        try:
            patch = ProgramPatch(
                name=form.get("name", "").strip() or None,
                attribution_model=form.get("attribution_model") or None,
                attribution_window_days=int(form.get("attribution_window_days") or 0) or None,
                cookie_days=int(form.get("cookie_days") or 0) or None,
                promo_code_priority=form.get("promo_code_priority") == "on",
                hold_days=int(form["hold_days"]) if form.get("hold_days", "").strip().isdigit() else None,
                allowed_domains=[d.strip() for d in form.get("allowed_domains", "").replace("\n", ",").split(",") if d.strip()],
            )
            values = patch.model_dump(exclude_none=True)
            with get_db().write() as s:
                programs.update_program(s, s.get(Program, program.id), ProgramPatch(**values))
            flash("Settings saved.", "ok")
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            if isinstance(exc, ValidationError):
                _fail(exc)
            else:
                flash("Days must be whole numbers.", "error")
        except ApiError as exc:
            _fail(exc)
        return redirect(url_for("admin.settings"))
    base = current_app.extensions["touchpoint"]["settings"].base_url
    return render_template("admin/settings.html", base_url=base)


@bp.get("/sources")
def sources():  # type: ignore[no-untyped-def]
    from core.sources import source_out

    s = db_session()
    rows = [source_out(r) for r in s.exec(select(Source).where(Source.program_id == g.program.id)
                                          .order_by(Source.created_at))]
    counts = dict(s.exec(select(Conversion.source_id, _count()).where(
        Conversion.program_id == g.program.id).group_by(Conversion.source_id)).all())
    return render_template("admin/sources.html", rows=rows, counts=counts,
                           base_url=current_app.extensions["touchpoint"]["settings"].base_url)


def _count() -> Any:
    from sqlalchemy import func

    return func.count()
