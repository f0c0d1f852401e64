"""/api/v1/track: clicks from storefronts (public, CORS), and leads, sales and refunds from the
merchant's server (secret key). Sales and refunds go through the same `core.ingest` as webhooks."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import Blueprint, current_app, make_response, request

from core import events as ev
from core.db import session
from core.errors import ApiError
from core.ingest import IngestContext, apply, find_conversion, lock_origin
from core.money import Money
from core.programs import by_publishable_key, domain_allowed
from core.ratelimit import CLICK_LIMIT, limiter
from core.schemas import ClickIn, ClickOut, ConversionOut, LeadIn, RefundIn, SaleIn
from core.conversions import conversion_out
from core.web.apiutil import current_program, ok, retrying
from core.web.openapi import operation

bp = Blueprint("track", __name__, url_prefix="/api/v1/track")

API_ORIGIN = "api"


def recorder():  # type: ignore[no-untyped-def]
    return current_app.extensions["touchpoint"]["clicks"]


def client_ip() -> str | None:
    """The visitor's address. Behind reverse proxies, set TOUCHPOINT_TRUSTED_PROXIES to their
    number so Werkzeug's ProxyFix takes it from X-Forwarded-For (see core/__init__.py)."""
    return request.remote_addr


def _origin_allowed(allowed: list[str]) -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    host = urlsplit(origin).hostname
    if not domain_allowed(host, allowed):
        raise ApiError("origin_not_allowed", f"{origin} is not one of the program's domains", 403)
    return origin


def _cors(resp, origin: str | None):  # type: ignore[no-untyped-def]
    if origin:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Access-Control-Allow-Credentials"] = "false"
        resp.headers["Vary"] = "Origin"
    return resp


@bp.route("/click", methods=["OPTIONS"])
def click_preflight():  # type: ignore[no-untyped-def]
    origin = request.headers.get("Origin")
    resp = make_response("", 204)
    if origin:
        # The program is not known before the body; the POST itself checks the origin.
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Access-Control-Allow-Methods"] = "POST"
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
        resp.headers["Access-Control-Max-Age"] = "86400"
        resp.headers["Vary"] = "Origin"
    return resp


@bp.post("/click")
@limiter.limit(CLICK_LIMIT)  # per client address, shared by every worker and server
@operation("POST", "/api/v1/track/click", "Record a click from a storefront (public; CORS for the "
           "program's domains)", body=ClickIn, response=ClickOut, auth="publishable", tag="tracking")
def track_click(body: ClickIn):  # type: ignore[no-untyped-def]
    program = by_publishable_key(session(), body.publishable_key)
    if program is None:
        raise ApiError("unauthorized", "publishable_key is not valid", 401)
    origin = _origin_allowed(program.allowed_domains)
    rec = recorder()
    link_id = campaign = None
    if body.link:
        link = rec.link(body.link)
        if link is None or link.program_id != program.id:
            raise ApiError("unknown_link", f"no link with key {body.link!r}", 404)
        partner_id, link_id, campaign = link.partner_id, link.id, link.campaign
    elif body.ref:
        partner_id = rec.partner_id(program.id, body.ref)
        if partner_id is None:
            raise ApiError("unknown_ref", f"no partner with key {body.ref!r}", 404)
    else:
        raise ApiError("invalid_request", "give ref (a partner key) or link (a link key)")
    click_id = rec.record(program_id=program.id, partner_id=partner_id, link_id=link_id,
                          campaign=campaign, url=body.url, referrer=body.referrer,
                          user_agent=request.headers.get("User-Agent", ""), ip=client_ip(),
                          previous_click_id=body.previous_click_id)
    resp = ok(ClickOut(click_id=click_id, partner_key=body.ref, cookie_days=program.cookie_days))
    return _cors(resp, origin)


def _api_ctx(s) -> IngestContext:  # type: ignore[no-untyped-def]
    program = s.get(type(current_program()), current_program().id)
    ctx = IngestContext(session=s, program=program, origin=API_ORIGIN, platform=API_ORIGIN)
    lock_origin(ctx)  # first, before any row lock, so writers queue in one order
    return ctx


def _when(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    if value.tzinfo is None:
        raise ApiError("invalid_request", "occurred_at: give a time zone (e.g. 2026-01-31T12:00:00Z)")
    return value.astimezone(timezone.utc)


@bp.post("/lead")
@operation("POST", "/api/v1/track/lead", "Record a lead (sign-up)", body=LeadIn,
           response=ConversionOut, tag="tracking")
def track_lead(body: LeadIn):  # type: ignore[no-untyped-def]
    lead = ev.Lead(customer_id=body.customer_id, email=body.email, event=body.event,
                   occurred_at=_when(body.occurred_at),
                   referral=ev.Referral(click_id=body.click_id, ref=body.ref, email=body.email,
                                        evidence="api"))

    def work(s):  # type: ignore[no-untyped-def]
        [conv] = apply(_api_ctx(s), [lead])
        return conversion_out(conv)

    return ok(retrying(work))


@bp.post("/sale")
@operation("POST", "/api/v1/track/sale", "Record a sale; the same order_id twice is one sale",
           body=SaleIn, response=ConversionOut, tag="tracking")
def track_sale(body: SaleIn):  # type: ignore[no-untyped-def]
    def work(s):  # type: ignore[no-untyped-def]
        ctx = _api_ctx(s)
        existing = find_conversion(ctx, body.order_id, lock=False)
        if existing is not None and (existing.amount, existing.currency) != (body.amount, body.currency):
            raise ApiError("order_conflict", f"order {body.order_id} was recorded with "
                           f"{existing.amount} {existing.currency}", 409)
        sale = ev.Sale(order_id=body.order_id, amount=Money(body.amount, body.currency),
                       occurred_at=_when(body.occurred_at), customer_id=body.customer_id,
                       email=body.email, event=body.event, subscription_id=body.subscription_id,
                       payment_fingerprint=body.payment_fingerprint,
                       renewal=bool(body.subscription_id) and _has_payment(ctx, body.subscription_id, body.order_id),
                       referral=ev.Referral(click_id=body.click_id, ref=body.ref,
                                            promo_codes=(body.promo_code,) if body.promo_code else (),
                                            email=body.email, evidence="api"))
        [conv] = apply(ctx, [sale])
        return conversion_out(conv)

    return ok(retrying(work))


def _has_payment(ctx: IngestContext, subscription_id: str, order_id: str) -> bool:
    from sqlmodel import select

    from core.models import Conversion

    return ctx.session.exec(select(Conversion.id).where(
        Conversion.program_id == ctx.program.id, Conversion.origin == ctx.origin,
        Conversion.subscription_id == subscription_id,
        Conversion.external_id != order_id)).first() is not None


@bp.post("/refund")
@operation("POST", "/api/v1/track/refund", "Refund part or all of an order (an Idempotency-Key "
           "header or refund_id makes retries safe); 202 when its sale has not arrived yet",
           body=RefundIn, response=ConversionOut, tag="tracking", extra_responses=(202,))
def track_refund(body: RefundIn):  # type: ignore[no-untyped-def]
    key = body.refund_id or request.headers.get("Idempotency-Key")
    occurred_at = _when(body.occurred_at)

    def work(s):  # type: ignore[no-untyped-def]
        ctx = _api_ctx(s)
        conv = find_conversion(ctx, body.order_id, lock=False)
        currency = conv.currency if conv is not None else ctx.program.currency
        touched = apply(ctx, [ev.Refund(order_id=body.order_id, refund_id=key,
                                        occurred_at=occurred_at,
                                        amount=Money(body.amount, currency) if body.amount else None)])
        return conversion_out(touched[0]) if touched else None

    out = retrying(work)
    if out is None:
        return ok({"order_id": body.order_id, "status": "waiting_for_sale",
                   "message": "no sale with this order_id yet; the refund is kept and "
                              "applied when the sale arrives"}, 202)
    return ok(out)

