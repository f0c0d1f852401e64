"""The Shopify app: OAuth install, the embedded admin page, and its session-token API.

`GET /shopify/install?shop=` validates the shop and redirects to Shopify's grant screen with a
state nonce (kept in a cookie and checked on return); `GET /shopify/callback` checks the HMAC
and the state, exchanges the code for an offline token, creates the shop's program if new,
registers the webhooks and lands in the embedded app. `GET /shopify/app` is loaded by Shopify's
admin in an iframe: no cookies there, so its data calls carry App Bridge session tokens,
verified with the SDK on every request.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request
from pydantic import ValidationError

from connectors.shopify import client
from connectors.shopify.webhooks import normalize_shop
from core.connectors import ConnectError, SourceContext
from pyactiveresource.connection import Error as HttpError
from core import partners as partner_ops
from core import programs
from core.db import get_db
from core.errors import ApiError, describe_validation_error
from core.models import Conversion, Partner, Program
from core.schemas import LinkIn, PartnerIn, ProgramCreate, ProgramPatch, PromoCodeIn, RewardIn
from core.sources import attach_source, program_of_account, webhook_url

bp = Blueprint("shopify", __name__, url_prefix="/shopify", template_folder="templates")
STATE_COOKIE = "tp_shopify_state"


def _app_credentials() -> tuple[str, str]:
    settings = current_app.extensions["touchpoint"]["settings"]
    if not settings.shopify_api_key or not settings.shopify_api_secret:
        raise ApiError("shopify_disabled", "set SHOPIFY_API_KEY and SHOPIFY_API_SECRET to enable "
                       "the Shopify app", 404)
    return settings.shopify_api_key, settings.shopify_api_secret


def _shop_param() -> str:
    try:
        return normalize_shop(request.args.get("shop", ""))
    except ValueError as exc:
        raise ApiError("invalid_shop", str(exc)) from None


@bp.get("/install")
def install():  # type: ignore[no-untyped-def]
    key, secret = _app_credentials()
    shop = _shop_param()
    state = secrets.token_urlsafe(24)
    base = current_app.extensions["touchpoint"]["settings"].base_url
    resp = redirect(client.oauth_permission_url(shop, key, secret, client.SCOPES,
                                                f"{base}/shopify/callback", state))
    resp.set_cookie(STATE_COOKIE, state, max_age=600, httponly=True, samesite="Lax",
                    secure=base.startswith("https://"))
    return resp


@bp.get("/callback")
def callback():  # type: ignore[no-untyped-def]
    key, secret = _app_credentials()
    params = request.args.to_dict()
    shop = _shop_param()
    if not client.validate_callback(params, secret):
        raise ApiError("invalid_hmac", "the callback's HMAC or timestamp is not valid", 401)
    expected = request.cookies.get(STATE_COOKIE)
    if not expected or not secrets.compare_digest(expected, params.get("state", "")):
        raise ApiError("invalid_state", "the OAuth state does not match this browser's", 401)
    try:
        token = client.exchange_code(shop, params, key, secret)
        details = client.shop_details(shop, token)
    except (ConnectError, HttpError) as exc:
        raise ApiError("connect_failed", f"Shopify did not complete the install: {exc}", 502) from None
    with get_db().write() as s:
        program = program_of_account(s, "shopify", shop)
        if program is None:
            created = programs.create_program(s, ProgramCreate(
                name=details["name"] or shop, currency=details["currency"],
                domain=details.get("domain") or shop))
            program = s.get(Program, created.program_id)
            if shop not in program.allowed_domains:
                program.allowed_domains = sorted({*program.allowed_domains, shop})
        connector = current_app.extensions["touchpoint"]["registry"].get("shopify")
        source = attach_source(s, program, "shopify", shop, {"access_token": token}, secret,
                               {"currency": details["currency"]})
        address = webhook_url(connector, source.id)
        program_id = program.id
    try:
        ids = client.register_webhooks(SourceContext(
            id=source.id, program_id=program_id, platform="shopify", account=shop,
            credentials={"access_token": token}, webhook_url=address), address)
    except ConnectError as exc:
        raise ApiError("connect_failed", str(exc), 502) from None
    with get_db().write() as s:
        from core.models import Source
        row = s.get(Source, source.id)
        row.settings = {**row.settings, "webhook_ids": ids}
    resp = redirect(f"https://{shop}/admin/apps/{key}")
    resp.delete_cookie(STATE_COOKIE)
    return resp


# --- the embedded page --------------------------------------------------------------------------

def _embedded_program() -> Program:
    """The program of the shop named by a valid session token."""
    key, secret = _app_credentials()
    try:
        claims = client.decode_session_token(request.headers.get("Authorization", ""), key, secret)
    except client.SessionTokenInvalid as exc:
        raise ApiError("invalid_session_token", f"the session token is not valid: {exc}", 401) from None
    shop = normalize_shop(claims["dest"])
    with get_db().session() as s:
        program = program_of_account(s, "shopify", shop)
    if program is None:
        raise ApiError("not_installed", f"{shop} has not installed Touchpoint", 404)
    return program


@bp.get("/app")
def app_page():  # type: ignore[no-untyped-def]
    key, _ = _app_credentials()
    resp = make_response(render_template("shopify_app.html", api_key=key,
                                         shop=request.args.get("shop", "")))
    # Shopify's admin frames the app; nothing else may. The shop goes into the header only as
    # a checked myshopify domain: a crafted `shop` ("* x.myshopify.com") would widen the policy.
    try:
        ancestors = f"https://{normalize_shop(request.args.get('shop', ''))} https://admin.shopify.com"
    except ValueError:
        ancestors = "https://admin.shopify.com"
    resp.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors};"
    return resp


@bp.get("/app/data")
def app_data():  # type: ignore[no-untyped-def]
    program = _embedded_program()
    from sqlmodel import func, select

    since = datetime.now(timezone.utc) - timedelta(days=30)
    with get_db().session() as s:
        rows = s.exec(select(Partner.id, Partner.name, Partner.key,
                             func.count(Conversion.id), func.coalesce(func.sum(Conversion.amount), 0),
                             func.coalesce(func.sum(Conversion.commission), 0))
                      .join(Conversion, (Conversion.partner_id == Partner.id)
                            & (Conversion.occurred_at >= since) & (Conversion.kind == "sale"),
                            isouter=True)
                      .where(Partner.program_id == program.id)
                      .group_by(Partner.id, Partner.name, Partner.key)).all()
    partners = [{"id": r[0], "name": r[1], "key": r[2], "sales": r[3], "revenue": int(r[4]),
                 "commission": int(r[5])} for r in rows]
    partners.sort(key=lambda p: -p["revenue"])
    return jsonify({"program": programs.program_out(program).model_dump(mode="json"),
                    "partners": partners, "period_days": 30})


def _body(model: Any) -> Any:
    try:
        return model.model_validate(request.get_json(silent=True) or {})
    except ValidationError as exc:
        raise ApiError("invalid_request", describe_validation_error(exc)) from None


@bp.post("/app/partners")
def app_create_partner():  # type: ignore[no-untyped-def]
    program = _embedded_program()
    data = _body(PartnerIn)
    with get_db().write() as s:
        partner = partner_ops.create_partner(s, program, data)
        out = partner_ops.partner_out(partner, data.tags, program)
    return jsonify(out.model_dump(mode="json")), 201


@bp.post("/app/links")
def app_create_link():  # type: ignore[no-untyped-def]
    """The same setup operations as API v1, with the session token instead of the secret key."""
    program = _embedded_program()
    data = _body(LinkIn)
    base = current_app.extensions["touchpoint"]["settings"].base_url
    with get_db().write() as s:
        out = partner_ops.link_out(partner_ops.create_link(s, program, data), base)
    return jsonify(out.model_dump(mode="json")), 201


@bp.post("/app/promo-codes")
def app_create_promo_code():  # type: ignore[no-untyped-def]
    program = _embedded_program()
    data = _body(PromoCodeIn)
    with get_db().write() as s:
        out = partner_ops.promo_code_out(partner_ops.create_promo_code(s, program, data))
    return jsonify(out.model_dump(mode="json")), 201


@bp.post("/app/rewards")
def app_create_reward():  # type: ignore[no-untyped-def]
    program = _embedded_program()
    data = _body(RewardIn)
    with get_db().write() as s:
        out = partner_ops.reward_out(partner_ops.create_reward(s, program, data))
    return jsonify(out.model_dump(mode="json")), 201


@bp.get("/app/setup")
def app_setup():  # type: ignore[no-untyped-def]
    """Links, promo codes and reward rules of the shop's program."""
    from sqlmodel import select

    from core.models import Link, PromoCode, Reward

    program = _embedded_program()
    base = current_app.extensions["touchpoint"]["settings"].base_url
    with get_db().session() as s:
        links = s.exec(select(Link).where(Link.program_id == program.id).order_by(Link.created_at)).all()
        codes = s.exec(select(PromoCode).where(PromoCode.program_id == program.id)).all()
        rewards = s.exec(select(Reward).where(Reward.program_id == program.id)).all()
        return jsonify({
            "links": [partner_ops.link_out(x, base).model_dump(mode="json") for x in links],
            "promo_codes": [partner_ops.promo_code_out(x).model_dump(mode="json") for x in codes],
            "rewards": [partner_ops.reward_out(x).model_dump(mode="json") for x in rewards]})


@bp.patch("/app/settings")
def app_settings():  # type: ignore[no-untyped-def]
    program = _embedded_program()
    patch = _body(ProgramPatch)
    with get_db().write() as s:
        out = programs.program_out(programs.update_program(s, s.get(Program, program.id), patch))
    return jsonify(out.model_dump(mode="json"))
