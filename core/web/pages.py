"""What /admin and /portal share: session cookie settings, CSRF, the login rate limit, periods,
money and percentage filters, and the server-rendered SVG charts (no JavaScript library, no CDN).

`core.init_app` calls `init_app(app)` when this module exists. CSRF is checked only on the
page blueprints (`protect_forms`): the JSON API authenticates with bearer keys and the webhooks
with signatures, so neither needs nor wants a CSRF token.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, request
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup, escape

from core import ratelimit
from core.money import Money
from core.ratelimit import LOGIN_LIMIT, limiter  # noqa: F401 - the page blueprints' limits
from core.schemas import EARLIEST, LATEST, MAX_PERIOD

csrf = CSRFProtect()

static_bp = Blueprint("ui", __name__, static_folder="static", static_url_path="/ui/static")

PERIODS = {"7d": 7, "30d": 30, "90d": 90, "180d": 180, "365d": 365}


def init_app(app: Flask) -> None:
    from core.web import admin, portal, reports_api, review

    settings = app.extensions["touchpoint"]["settings"]
    # Flask's defaults hold SECRET_KEY=None, so `setdefault` in core.init_app keeps None.
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.secret_key
    # (Flask's defaults fill these keys already, so they are set, not `setdefault`.)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
                      SESSION_COOKIE_NAME="tp_session",
                      PERMANENT_SESSION_LIFETIME=timedelta(days=14))
    # CSRF only where a page blueprint asks for it (see `protect_forms`), never on the API.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    csrf.init_app(app)
    ratelimit.init_app(app)  # counted in the database: shared by every worker and server
    app.jinja_env.filters.update(money=money, pct=pct, delta=delta, when=when, number=number,
                                 figure=figure)
    app.jinja_env.globals.update(svg_trend=svg_trend, qs=qs)
    for bp in (static_bp, reports_api.bp, admin.bp, portal.bp, review.bp):
        app.register_blueprint(bp)
    from core.web import outgoing_admin, payouts_admin

    for bp in (payouts_admin.bp, outgoing_admin.bp):
        app.register_blueprint(bp)


def protect_forms() -> None:
    """A blueprint's `before_request`: every POST carries the session's CSRF token."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


# --- periods -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    key: str
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(seconds=1)).date()

    @property
    def label(self) -> str:
        if self.key in PERIODS:
            return f"Last {PERIODS[self.key]} days"
        return f"{self.first_day:%d %b %Y} – {self.last_day:%d %b %Y}"


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=timezone.utc)


def period_from_args(args: Any, default: str = "30d", today: date | None = None) -> Period:
    """`?period=7d|30d|90d|180d|365d`, or `?period=custom&from=YYYY-MM-DD&to=YYYY-MM-DD` (both
    days included).
    Whole UTC days ending today, so the previous period lines up day for day."""
    today = today or datetime.now(timezone.utc).date()
    key = args.get("period") or ""
    frm, to = args.get("from"), args.get("to")
    if key not in PERIODS and (frm or to):  # a named period wins over leftover dates
        try:
            first = date.fromisoformat(frm) if frm else today - timedelta(days=29)
            last = date.fromisoformat(to) if to else today
        except ValueError:
            first, last = None, None
        # The API's bounds (year 1 has no period before it, and a period reads every day).
        if (first and last and EARLIEST.date() <= first <= last < LATEST.date()
                and last - first < MAX_PERIOD):
            return Period("custom", _midnight(first), _midnight(last + timedelta(days=1)))
    days = PERIODS.get(key, PERIODS[default])
    key = key if key in PERIODS else default
    return Period(key, _midnight(today - timedelta(days=days - 1)), _midnight(today + timedelta(days=1)))


def qs(args: Any, **changes: Any) -> str:
    """The current query string with some parameters changed (None drops one)."""
    merged = {k: v for k, v in args.items() if v not in (None, "")}
    for k, v in changes.items():
        if v in (None, ""):
            merged.pop(k, None)
        else:
            merged[k] = v
    return ("?" + urlencode(merged)) if merged else "?"


# --- filters -------------------------------------------------------------------------------------

def money(amount: int | None, currency: str) -> str:
    """1,234.50 USD."""
    return Money(int(amount or 0), currency).format()


def figure(text: str) -> Markup:
    """A formatted figure for a card: a trailing currency code set smaller."""
    head, _, tail = str(text).rpartition(" ")
    if head and len(tail) == 3 and tail.isalpha() and tail.isupper():
        return Markup(f'{escape(head)}<span class="cur"> {escape(tail)}</span>')
    return Markup(escape(text))


def number(value: int | float | None) -> str:
    return f"{value or 0:,}"


def pct(rate: float | None, places: int = 1) -> str:
    return f"{(rate or 0) * 100:.{places}f}%"


def delta(current: float, previous: float) -> Markup:
    """A small badge: +12% / −8% against the previous period, "new" when it was zero."""
    if not previous:
        if not current:
            return Markup('<span class="delta flat">±0%</span>')
        return Markup('<span class="delta up">new</span>')
    change = (current - previous) / abs(previous)
    cls = "up" if change > 0.0005 else "down" if change < -0.0005 else "flat"
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    return Markup(f'<span class="delta {cls}" title="previous period: {escape(previous)}">'
                  f'{sign}{abs(change) * 100:.0f}%</span>')


def when(value: datetime | None) -> str:
    return value.strftime("%d %b %Y %H:%M") if value else ""


# --- charts --------------------------------------------------------------------------------------

def _nice_max(value: float, ticks: int = 4) -> int:
    """The smallest round top of an axis with `ticks` equal integer steps that holds `value`."""
    if value <= 0:
        return ticks
    raw = value / ticks
    exp = 10 ** max(len(str(int(raw))) - 1, 0)
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= raw and float(step * exp).is_integer():
            return int(step * exp * ticks)
    return int(10 * exp * ticks)


def svg_trend(points: list[tuple[str, int, int]], currency: str, width: int = 760,
              height: int = 240) -> Markup:
    """Revenue as bars (right axis) and clicks as a line (left axis), one point per day.
    `points` are (YYYY-MM-DD, clicks, revenue in minor units)."""
    left, right, top, bottom = 44, 64, 14, 28
    w, h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    max_clicks = _nice_max(max((p[1] for p in points), default=0))
    max_rev = _nice_max(max((p[2] for p in points), default=0))
    step = w / n
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="Clicks and revenue per day" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):  # grid and axis labels
        y = top + h - h * i / 4
        out.append(f'<line class="grid" x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{int(max_clicks * i / 4):,}</text>')
        rev = Money(int(max_rev * i / 4), currency).format().rsplit(" ", 1)[0]
        rev = rev.rsplit(".", 1)[0] if "." in rev else rev
        out.append(f'<text class="axis" x="{left + w + 6}" y="{y + 4:.1f}">{rev}</text>')
    bar_w = max(step * 0.7, 1)
    for i, (day, clicks, revenue) in enumerate(points):
        x = left + step * i
        bh = h * revenue / max_rev if max_rev else 0
        if revenue:
            out.append(f'<rect class="bar" x="{x + (step - bar_w) / 2:.1f}" y="{top + h - bh:.1f}" '
                       f'width="{bar_w:.1f}" height="{bh:.1f}" rx="1.5">'
                       f'<title>{day}: {Money(revenue, currency).format()}, {clicks:,} clicks</title></rect>')
    coords = [(left + step * i + step / 2, top + h - h * p[1] / max_clicks) for i, p in enumerate(points)]
    if coords:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        area = f"{coords[0][0]:.1f},{top + h} {line} {coords[-1][0]:.1f},{top + h}"
        out.append(f'<polygon class="area" points="{area}"/>')
        out.append(f'<polyline class="line" points="{line}"/>')
    every = max(1, round(n / 6))
    for i, p in enumerate(points):
        if i % every == 0:
            d = date.fromisoformat(p[0])
            out.append(f'<text class="axis" x="{left + step * i + step / 2:.1f}" y="{height - 8}" '
                       f'text-anchor="middle">{d:%d %b}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(values: list[int], width: int = 120, height: int = 32) -> Markup:
    top = max(values, default=0) or 1
    n = max(len(values) - 1, 1)
    pts = " ".join(f"{width * i / n:.1f},{height - 2 - (height - 4) * v / top:.1f}"
                   for i, v in enumerate(values))
    return Markup(f'<svg class="spark" viewBox="0 0 {width} {height}" aria-hidden="true">'
                  f'<polyline points="{pts}"/></svg>')
