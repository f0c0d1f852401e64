"""/api/v1: program setup, partners, links, promo codes, rewards, sources, conversions, earnings."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlmodel import select

from core import partners as partner_ops
from core import programs, sources
from core.conversions import conversion_out, conversions_query
from core.db import session
from core.earnings import earnings, pay_out
from core.errors import ApiError, not_found
from core.models import Link, Partner, PromoCode, Reward, Source
from core.schemas import (
    ConversionOut, ConversionQuery, EarningsOut, LinkIn, LinkOut, ListQuery, PartnerIn, PartnerOut,
    ProgramOut, ProgramPatch, PromoCodeIn, PromoCodeOut, RewardIn, RewardOut, SourceIn, SourceOut,
    SourcePatch,
    ReportOut, ReportQuery, WhatIfOut, WhatIfQuery,
)
from core.web.apiutil import current_program, listing, ok, page, writing
from core.web.openapi import build_spec, operation

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _base_url() -> str:
    return current_app.extensions["touchpoint"]["settings"].base_url


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(build_spec(_base_url()))


# --- program -------------------------------------------------------------------------------------

@bp.get("/program")
@operation("GET", "/api/v1/program", "The program and its attribution settings",
           response=ProgramOut)
def get_program():  # type: ignore[no-untyped-def]
    return ok(programs.program_out(current_program()))


@bp.patch("/program")
@operation("PATCH", "/api/v1/program", "Change attribution settings and allowed domains",
           body=ProgramPatch, response=ProgramOut)
def patch_program(body: ProgramPatch):  # type: ignore[no-untyped-def]
    program_id = current_program().id
    with writing() as s:
        program = programs.update_program(s, s.get(type(current_program()), program_id), body)
        out = programs.program_out(program)
    return ok(out)


# --- partners ------------------------------------------------------------------------------------

@bp.post("/partners")
@operation("POST", "/api/v1/partners", "Add a partner", body=PartnerIn, response=PartnerOut,
           status=201)
def create_partner(body: PartnerIn):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        partner = partner_ops.create_partner(s, program, body)
        out = partner_ops.partner_out(partner, sorted({t.strip() for t in body.tags if t.strip()}),
                                      program)
    return ok(out, 201)


@bp.get("/partners")
@operation("GET", "/api/v1/partners", "List partners", query=ListQuery, response=PartnerOut,
           many=True)
def list_partners(query: ListQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    rows, nxt = page(Partner, select(Partner).where(Partner.program_id == program.id),
                     query.limit, query.cursor, s)
    tags = partner_ops.tags_of(s, [p.id for p in rows])
    return listing([partner_ops.partner_out(p, tags.get(p.id, []), program) for p in rows], nxt)


@bp.get("/partners/<partner_id>")
@operation("GET", "/api/v1/partners/{partner_id}", "One partner", response=PartnerOut)
def get_partner(partner_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    partner = partner_ops.get_partner(s, program.id, partner_id)
    return ok(partner_ops.partner_out(partner, partner_ops.tags_of(s, [partner.id])[partner.id],
                                      program))


@bp.get("/partners/<partner_id>/earnings")
@operation("GET", "/api/v1/partners/{partner_id}/earnings",
           "A partner's commissions by state, in the program's currency", response=EarningsOut)
def partner_earnings(partner_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    partner_ops.get_partner(s, program.id, partner_id)
    return ok(earnings(s, program, partner_id))


@bp.post("/partners/<partner_id>/payouts")
@operation("POST", "/api/v1/partners/{partner_id}/payouts",
           "Mark the partner's approved commissions as paid (negative balances are netted)",
           response=EarningsOut, status=201)
def partner_payout(partner_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        partner_ops.get_partner(s, program.id, partner_id)
        pay_out(s, program, partner_id)
        s.flush()
        out = earnings(s, program, partner_id)
    return ok(out, 201)


# --- links, promo codes, rewards -------------------------------------------------------------------

@bp.post("/links")
@operation("POST", "/api/v1/links", "Create a short link to a page on an allowed domain",
           body=LinkIn, response=LinkOut, status=201)
def create_link(body: LinkIn):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        link = partner_ops.create_link(s, program, body)
        out = partner_ops.link_out(link, _base_url())
    return ok(out, 201)


@bp.get("/links")
@operation("GET", "/api/v1/links", "List links", query=ListQuery, response=LinkOut, many=True)
def list_links(query: ListQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    rows, nxt = page(Link, select(Link).where(Link.program_id == program.id), query.limit,
                     query.cursor, session())
    return listing([partner_ops.link_out(r, _base_url()) for r in rows], nxt)


@bp.post("/promo-codes")
@operation("POST", "/api/v1/promo-codes", "Give a partner a promo code (matched "
           "case-insensitively)", body=PromoCodeIn, response=PromoCodeOut, status=201)
def create_promo_code(body: PromoCodeIn):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        out = partner_ops.promo_code_out(partner_ops.create_promo_code(s, program, body))
    return ok(out, 201)


@bp.get("/promo-codes")
@operation("GET", "/api/v1/promo-codes", "List promo codes", query=ListQuery,
           response=PromoCodeOut, many=True)
def list_promo_codes(query: ListQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    rows, nxt = page(PromoCode, select(PromoCode).where(PromoCode.program_id == program.id),
                     query.limit, query.cursor, session())
    return listing([partner_ops.promo_code_out(r) for r in rows], nxt)


@bp.post("/rewards")
@operation("POST", "/api/v1/rewards", "Add a reward rule", body=RewardIn, response=RewardOut,
           status=201)
def create_reward(body: RewardIn):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        out = partner_ops.reward_out(partner_ops.create_reward(s, program, body))
    return ok(out, 201)


@bp.get("/rewards")
@operation("GET", "/api/v1/rewards", "List reward rules", query=ListQuery, response=RewardOut,
           many=True)
def list_rewards(query: ListQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    rows, nxt = page(Reward, select(Reward).where(Reward.program_id == program.id), query.limit,
                     query.cursor, session())
    return listing([partner_ops.reward_out(r) for r in rows], nxt)


# --- sources -------------------------------------------------------------------------------------

@bp.post("/sources")
@operation("POST", "/api/v1/sources", "Connect a platform account", body=SourceIn,
           response=SourceOut, status=201)
def create_source(body: SourceIn):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        source, actions = sources.connect_source(s, program, body)
        out = sources.source_out(source, actions)
    return ok(out, 201)


@bp.get("/sources")
@operation("GET", "/api/v1/sources", "List connected sources", query=ListQuery,
           response=SourceOut, many=True)
def list_sources(query: ListQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    rows, nxt = page(Source, select(Source).where(Source.program_id == program.id,
                                                  Source.status != "removed"),
                     query.limit, query.cursor, session())
    return listing([sources.source_out(r) for r in rows], nxt)


@bp.patch("/sources/<source_id>")
@operation("PATCH", "/api/v1/sources/{source_id}", "Replace a source's webhook secret or "
           "credentials", body=SourcePatch, response=SourceOut)
def patch_source(source_id: str, body: SourcePatch):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        source = sources.get_source(s, program.id, source_id)
        if source.status == "removed":
            raise not_found("source")
        out = sources.source_out(sources.update_source(s, source, body))
    return ok(out)


@bp.delete("/sources/<source_id>")
@operation("DELETE", "/api/v1/sources/{source_id}",
           "Disconnect a source (removes the webhooks Touchpoint registered)", response=SourceOut)
def delete_source(source_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        source = sources.get_source(s, program.id, source_id)
        if source.status == "removed":
            raise not_found("source")
        sources.disconnect_source(s, source)
        out = sources.source_out(source)
    return ok(out)


# --- conversions ---------------------------------------------------------------------------------

@bp.get("/conversions")
@operation("GET", "/api/v1/conversions", "Conversions, each with why it was credited",
           query=ConversionQuery, response=ConversionOut, many=True)
def list_conversions(query: ConversionQuery):  # type: ignore[no-untyped-def]
    from core.models import Conversion

    program = current_program()
    s = session()
    if query.partner_id:  # another program's partner is a 404, as in /reports and the CSV
        partner_ops.get_partner(s, program.id, query.partner_id)
    rows, nxt = page(Conversion, conversions_query(program.id, query), query.limit, query.cursor, s)
    return listing([conversion_out(c) for c in rows], nxt)


@bp.get("/conversions/<conversion_id>")
@operation("GET", "/api/v1/conversions/{conversion_id}", "One conversion",
           response=ConversionOut)
def get_conversion(conversion_id: str):  # type: ignore[no-untyped-def]
    from core.models import Conversion

    program = current_program()
    conv = session().get(Conversion, conversion_id)
    if conv is None or conv.program_id != program.id:
        raise not_found("conversion")
    return ok(conversion_out(conv))


# --- what-if -------------------------------------------------------------------------------------

@bp.get("/reattribute")
@operation("GET", "/api/v1/reattribute", "What-if: each partner's commission today and under "
           "another model and window (changes nothing)", query=WhatIfQuery, response=WhatIfOut)
def reattribute(query: WhatIfQuery):  # type: ignore[no-untyped-def]
    from core.whatif import replay

    program = current_program()
    window = query.window_days or program.attribution_window_days
    return ok(WhatIfOut.model_validate(replay(session(), program, query.model, window,
                                              query.from_, query.to)))


# --- reports -------------------------------------------------------------------------------------

@bp.get("/reports")
@operation("GET", "/api/v1/reports", "Clicks, leads, sales, revenue and commission grouped by "
           "partner, tag, campaign, offer, event, platform, day, week or month, with the previous "
           "period of the same length (format=csv for a spreadsheet)", query=ReportQuery,
           response=ReportOut, media_types=("text/csv",))
def reports(query: ReportQuery):  # type: ignore[no-untyped-def]
    from flask import Response

    from core import reports as reports_ops

    program = current_program()
    try:
        start, end = reports_ops.parse_period(query.from_, query.to)
    except ValueError as exc:
        raise ApiError("invalid_request", str(exc)) from None
    if query.partner_id:
        partner_ops.get_partner(session(), program.id, query.partner_id)
    filters = reports_ops.Filters(partner_id=query.partner_id, tag=query.tag,
                                  campaign=query.campaign, platform=query.platform)
    out = reports_ops.report_with_previous(session(), program, query.group_by, start, end,
                                           filters=filters)
    if query.format == "json":
        return ok(ReportOut.model_validate({**out, "from_": out["from"]}).model_dump(mode="json", by_alias=True))
    name = f"touchpoint-{query.group_by}-{start.date()}-{end.date()}.csv"
    return Response(reports_ops.report_csv(out), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
