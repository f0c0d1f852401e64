"""`GET /r/<key>`: record the click, answer 302 with `tp_click` added. `GET /t.js`: the script.

The redirect is the hottest path of the product, so it is served by a small WSGI layer in front
of Flask (`RedirectFastPath`) that does only what a click needs: a cached link lookup, the click
appended to this worker's spool file (in the database within milliseconds, and safe from a crash
of Touchpoint once written: `core.click_spool`), the 302. Anything it does not handle (an unknown
key, a link off the program's domains) goes on to the Flask route below, which answers the
contract's JSON errors.

When the merchant points a subdomain of their shop (say `track.their-shop.com`) at Touchpoint,
the redirect also sets the `tp_click` cookie on their domain from the server's response, which
Safari keeps for `cookie_days` (cookies set by JavaScript are capped at 7 days there).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, make_response
from werkzeug.http import dump_cookie, parse_cookie

from core.errors import ApiError
from core.programs import domain_allowed
from core.tracking import ClickRecorder, LinkInfo, with_click

bp = Blueprint("redirect", __name__)

SCRIPT = Path(__file__).parent / "static" / "t.js"


def cookie_domain(host: str, allowed: tuple[str, ...]) -> str | None:
    """The allowed domain this request's host is under, for a first-party cookie; else None."""
    host = host.split(":")[0].lower()
    for d in sorted(allowed, key=len, reverse=True):
        if host == d or host.endswith("." + d):
            return d
    return None


def follow(recorder: ClickRecorder, link: LinkInfo, environ: dict[str, Any]) -> list[tuple[str, str]]:
    """Record the click of a request for `link`; the 302's headers."""
    raw_cookie = environ.get("HTTP_COOKIE", "")
    previous = parse_cookie(raw_cookie).get("tp_click") if "tp_click" in raw_cookie else None
    click_id = recorder.record(program_id=link.program_id, partner_id=link.partner_id,
                               link_id=link.id, campaign=link.campaign, url=link.url,
                               referrer=environ.get("HTTP_REFERER"),
                               user_agent=environ.get("HTTP_USER_AGENT", ""),
                               ip=environ.get("REMOTE_ADDR"), previous_click_id=previous,
                               wait=False)
    headers = [("Location", with_click(link.url, click_id)),
               ("Cache-Control", "no-store"), ("Content-Length", "0"),
               ("Referrer-Policy", "no-referrer-when-downgrade")]
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain = cookie_domain(host, link.allowed_domains)
    if domain:
        secure = environ.get("wsgi.url_scheme") == "https"
        headers.append(("Set-Cookie", dump_cookie("tp_click", click_id,
                                                  max_age=link.cookie_days * 86400, domain=domain,
                                                  secure=secure, samesite="Lax", httponly=False)))
    return headers


def usable(link: LinkInfo | None) -> bool:
    return link is not None and _points_inside(link.url, link.allowed_domains)


@lru_cache(maxsize=4096)
def _points_inside(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether a link's URL is on the program's domains, worked out once per URL and domains."""
    return domain_allowed(urlsplit(url).hostname, list(allowed))


class RedirectFastPath:
    """WSGI middleware: `GET /r/<key>` for a known, allowed link, without Flask's dispatch."""

    def __init__(self, app: Callable[..., Iterable[bytes]], recorder: ClickRecorder) -> None:
        self.app = app
        self.recorder = recorder

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/r/") and environ.get("REQUEST_METHOD") == "GET":
            key = path[3:]
            if key and "/" not in key:
                link = self.recorder.link(key)
                if usable(link):
                    start_response("302 Found", follow(self.recorder, link, environ))  # type: ignore[arg-type]
                    return [b""]
        return self.app(environ, start_response)


@bp.get("/r/<key>")
def follow_link(key: str):  # type: ignore[no-untyped-def]
    """Reached only when the fast path declined: explain why in the contract's error shape."""
    link = current_app.extensions["touchpoint"]["clicks"].link(key)
    if link is None:
        raise ApiError("unknown_link", f"no link with key {key!r}", 404)
    raise ApiError("domain_not_allowed", "this link points outside the program's domains", 404)


@lru_cache(maxsize=8)
def script_for(base_url: str) -> str:
    return SCRIPT.read_text().replace("__TOUCHPOINT_BASE__", base_url)


@bp.get("/t.js")
def script():  # type: ignore[no-untyped-def]
    resp = make_response(script_for(current_app.extensions["touchpoint"]["settings"].base_url))
    resp.headers["Content-Type"] = "application/javascript; charset=utf-8"
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
