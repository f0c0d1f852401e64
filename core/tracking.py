"""Recording clicks: the hot path of `GET /r/<key>` and of the click API.

It runs on SQLAlchemy Core with one short transaction, no ORM session: about half the cost of a
request otherwise. Per-process caches hold what rarely changes (links, partner keys, the day's
salt, user-agent verdicts) for a few seconds, so a click costs two indexed reads and one insert.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crawlerdetect import CrawlerDetect
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError
from user_agents import parse as parse_ua

from core.ids import new_id
from core.models import Click, DailySalt, Link, Partner, Program

CACHE_SECONDS = 10.0
_crawler = CrawlerDetect()


@lru_cache(maxsize=4096)
def classify_user_agent(ua: str) -> tuple[bool, str]:
    """(is_bot, device class) of a user agent: crawlers by the maintained CrawlerDetect list,
    device by ua-parser ("mobile", "tablet", "desktop", "bot")."""
    if not ua or _crawler.isCrawler(ua):
        return True, "bot"
    parsed = parse_ua(ua)
    if parsed.is_bot:
        return True, "bot"
    if parsed.is_tablet:
        return False, "tablet"
    if parsed.is_mobile:
        return False, "mobile"
    return False, "desktop"


def add_query(url: str, **params: str) -> str:
    """The URL with `params` set in its query, keeping its own parameters and fragment."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def utm_of(url: str | None) -> dict[str, str | None]:
    q = dict(parse_qsl(urlsplit(url).query)) if url else {}
    return {f"utm_{k}": (q.get(f"utm_{k}") or None) for k in
            ("source", "medium", "campaign", "term", "content")}


@dataclass(frozen=True)
class LinkInfo:
    id: str
    program_id: str
    partner_id: str
    url: str
    campaign: str | None
    allowed_domains: tuple[str, ...]
    cookie_days: int


class _TTLCache:
    def __init__(self) -> None:
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key: Any, value: Any) -> Any:
        if len(self._data) > 50_000:
            self._data.clear()
        self._data[key] = (time.monotonic() + CACHE_SECONDS, value)
        return value


class ClickRecorder:
    """Records clicks for one app (kept in app.extensions)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine.execution_options(write=True)
        self.read_engine = engine
        self._links = _TTLCache()
        self._partners = _TTLCache()
        self._salt: tuple[str, str] | None = None

    # -- lookups ------------------------------------------------------------------------------
    def link(self, key: str) -> LinkInfo | None:
        hit = self._links.get(key)
        if hit is not None:
            return hit or None
        with self.read_engine.connect() as conn:
            row = conn.execute(
                select(Link.id, Link.program_id, Link.partner_id, Link.url, Link.campaign,
                       Program.allowed_domains, Program.cookie_days)
                .join(Program, Program.id == Link.program_id).where(Link.key == key)).first()
        info = LinkInfo(row[0], row[1], row[2], row[3], row[4], tuple(row[5] or ()), row[6]) \
            if row else None
        self._links.put(key, info or False)
        return info

    def partner_id(self, program_id: str, key: str) -> str | None:
        hit = self._partners.get((program_id, key))
        if hit is not None:
            return hit or None
        with self.read_engine.connect() as conn:
            pid = conn.execute(select(Partner.id).where(Partner.program_id == program_id,
                                                        Partner.key == key)).scalar()
        self._partners.put((program_id, key), pid or False)
        return pid

    def salt(self, now: datetime) -> str:
        day = now.strftime("%Y-%m-%d")
        if self._salt and self._salt[0] == day:
            return self._salt[1]
        with self.engine.begin() as conn:
            value = conn.execute(select(DailySalt.salt).where(DailySalt.day == day)).scalar()
            if value is None:
                value = secrets.token_hex(16)
                try:
                    with conn.begin_nested():
                        conn.execute(insert(DailySalt).values(day=day, salt=value))
                except IntegrityError:
                    value = conn.execute(select(DailySalt.salt).where(DailySalt.day == day)).scalar()
        self._salt = (day, value)
        return value

    def forget_old_salts(self, now: datetime) -> int:
        keep = (now - timedelta(days=1)).strftime("%Y-%m-%d")
        with self.engine.begin() as conn:
            return conn.execute(delete(DailySalt).where(DailySalt.day < keep)).rowcount

    # -- recording ----------------------------------------------------------------------------
    def record(self, *, program_id: str, partner_id: str, link_id: str | None,
               campaign: str | None, url: str | None, referrer: str | None, user_agent: str,
               ip: str | None, previous_click_id: str | None = None,
               now: datetime | None = None) -> str:
        """Store one click durably and return its id."""
        now = now or datetime.now(timezone.utc)
        is_bot, device = classify_user_agent(user_agent or "")
        fingerprint = hashlib.sha256(
            f"{self.salt(now)}|{ip or ''}|{user_agent or ''}".encode()).hexdigest()[:32]
        click_id = new_id("clk", 20)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        naive_now = now.astimezone(timezone.utc).replace(tzinfo=None)
        with self.engine.begin() as conn:
            visitor = None
            if previous_click_id:
                visitor = conn.execute(select(Click.visitor_id).where(
                    Click.id == previous_click_id, Click.program_id == program_id)).scalar()
            repeated = conn.execute(select(Click.id).where(
                Click.partner_id == partner_id, Click.ip_hash == fingerprint,
                Click.created_at >= day_start).limit(1)).first() is not None
            conn.execute(insert(Click).values(
                id=click_id, program_id=program_id, partner_id=partner_id, link_id=link_id,
                visitor_id=visitor or click_id, campaign=campaign,
                url=(url or None) and url[:2048], referrer=(referrer or None) and referrer[:2048],
                device=device, ip_hash=fingerprint, is_bot=is_bot, is_unique=not repeated,
                created_at=naive_now.replace(tzinfo=timezone.utc), **utm_of(url)))
        return click_id
