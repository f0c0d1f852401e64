"""`GET /r/<key>`: record the click, answer 302 with `tp_click` added. `GET /t.js`: the script.

When the merchant points a subdomain of their shop (say `track.their-shop.com`) at Touchpoint,
the redirect also sets the `tp_click` cookie on their domain from the server's response, which
Safari keeps for `cookie_days` (cookies set by JavaScript are capped at 7 days there).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, current_app, make_response, redirect, request

from core.errors import ApiError
from core.programs import domain_allowed
from core.tracking import add_query
from core.web.track import client_ip, recorder

bp = Blueprint("redirect", __name__)

SCRIPT = Path(__file__).parent / "static" / "t.js"


def cookie_domain(host: str, allowed: tuple[str, ...]) -> str | None:
    """The allowed domain this request's host is under, for a first-party cookie; else None."""
    host = host.split(":")[0].lower()
    for d in sorted(allowed, key=len, reverse=True):
        if host == d or host.endswith("." + d):
            return d
    return None


@bp.get("/r/<key>")
def follow(key: str):  # type: ignore[no-untyped-def]
    rec = recorder()
    link = rec.link(key)
    if link is None:
        raise ApiError("unknown_link", f"no link with key {key!r}", 404)
    if not domain_allowed(urlsplit(link.url).hostname, list(link.allowed_domains)):
        raise ApiError("domain_not_allowed", "this link points outside the program's domains", 404)
    previous = request.cookies.get("tp_click")
    click_id = rec.record(program_id=link.program_id, partner_id=link.partner_id,
                          link_id=link.id, campaign=link.campaign, url=link.url,
                          referrer=request.referrer, user_agent=request.user_agent.string,
                          ip=client_ip(), previous_click_id=previous)
    resp = redirect(add_query(link.url, tp_click=click_id), 302)
    domain = cookie_domain(request.host, link.allowed_domains)
    if domain:
        resp.set_cookie("tp_click", click_id, max_age=link.cookie_days * 86400, domain=domain,
                        secure=request.is_secure, samesite="Lax", httponly=False)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer-when-downgrade"
    return resp


@bp.get("/t.js")
def script():  # type: ignore[no-untyped-def]
    base = current_app.extensions["touchpoint"]["settings"].base_url
    body = SCRIPT.read_text().replace("__TOUCHPOINT_BASE__", base)
    resp = make_response(body)
    resp.headers["Content-Type"] = "application/javascript; charset=utf-8"
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
