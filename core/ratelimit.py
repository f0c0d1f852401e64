"""Rate limits that every worker and every server share: Flask-Limiter over the app's database.

Flask-Limiter counts hits through a storage of the `limits` library. Its in-memory storage counts
per process, so `touchpoint serve --workers 4` would allow four times the limit and two servers
eight; its shared storages (Redis, Memcached, MongoDB) would add a service Touchpoint does not
otherwise need. `DatabaseStorage` is that storage over the database Touchpoint already has: one row
per counter, incremented with a single `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` (atomic on
SQLite and PostgreSQL alike), registered as the `limits` scheme `touchpoint-db://`. It serves the
fixed-window strategy (Flask-Limiter's default), which needs only `incr`, `get` and `get_expiry`.

The storage has no engine of its own: it uses the database of the Flask app handling the request
(`current_app`), so one `Limiter` serves any number of apps, each counting in its own database.
Counter keys name the client's address, so they are stored as an HMAC keyed with the app's secret
key (shared by every server): no raw address is written (docs/architecture.md, "the raw address is
never stored"), and one cannot be recovered by hashing all 2^32 IPv4 addresses.

What is limited, per client address (`request.remote_addr`; behind a proxy, see
`forwarded_allow_ips` in `touchpoint serve`):
- `LOGIN_LIMIT`: POST /admin/login (password guessing);
- `CLICK_LIMIT`: POST /api/v1/track/click (click flooding, which would inflate partners' clicks);
- `FORGED_WEBHOOK_LIMIT`: webhook requests refused for their signature (401). Valid deliveries
  never count, so a platform's burst of retries is never refused; a client sending forgeries is
  refused after the limit, before its body is even verified.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import Storage
from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from core.db import Database
from core.models import RateLimitCounter

SCHEME = "touchpoint-db"
STORAGE_URI = f"{SCHEME}://"
LOGIN_LIMIT = "10 per minute"
CLICK_LIMIT = "120 per minute"
FORGED_WEBHOOK_LIMIT = "30 per minute"
SWEEP_EVERY = 1000  # hits between deletions of expired counters, per process

limiter = Limiter(key_func=get_remote_address, storage_uri=STORAGE_URI, default_limits=[])


def init_app(app: Flask) -> None:
    """Configure and attach the shared limiter (called by `core.web.pages.init_app`)."""
    from core.web import webhooks

    app.config.setdefault("RATELIMIT_ENABLED", True)
    app.config.setdefault("RATELIMIT_STORAGE_URI", STORAGE_URI)
    limit_webhooks(webhooks.bp)
    limiter.init_app(app)


def forged_signature(response: Response) -> bool:
    """`deduct_when` of the webhook limit: only refused signatures count."""
    return response.status_code == 401


def limit_webhooks(blueprint: Any) -> None:
    """Apply `FORGED_WEBHOOK_LIMIT` to every route of the webhooks blueprint (once)."""
    if not getattr(blueprint, "_touchpoint_limited", False):
        limiter.limit(FORGED_WEBHOOK_LIMIT, deduct_when=forged_signature)(blueprint)
        blueprint._touchpoint_limited = True


def _current_database() -> Database:
    return current_app.extensions["touchpoint_db"]


def _current_secret() -> bytes:
    return str(current_app.config["SECRET_KEY"]).encode()


# Read before every limited request (each webhook delivery): built once.
_COUNTER = select(RateLimitCounter.__table__.c.count, RateLimitCounter.__table__.c.expires_at).where(
    RateLimitCounter.__table__.c.key == bindparam("key"))


class DatabaseStorage(Storage):
    """A `limits` storage (fixed windows) in the `rate_limit_counter` table.

    `database` is a callable returning the `core.db.Database` to count in, `secret` one returning
    the key of the counters' HMAC; by default the current Flask app's. Time is seconds since the epoch (`time.time`), as `limits` expects,
    compared by every process against the same rows: servers need reasonably synchronised clocks
    (NTP), which an expiry of a minute tolerates."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 database: Callable[[], Database] | None = None,
                 secret: Callable[[], bytes] | None = None, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._database = database or _current_database
        self._secret = secret or _current_secret
        self._hits = itertools.count(1)

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def _key(self, key: str) -> str:
        """Keys name the limit, the client's address and the route: stored as their HMAC."""
        return hmac.new(self._secret(), key.encode(), hashlib.sha256).hexdigest()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add `amount` hits to the key's window and return its count, starting a new window when
        the old one has ended: one statement, so concurrent hits never lose a count."""
        db = self._database()
        now = time.time()
        table = RateLimitCounter.__table__
        dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table).values(key=self._key(key), count=amount,
                                            expires_at=now + expiry)
        expired = table.c.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"count": case((expired, amount), else_=table.c.count + amount),
                  "expires_at": case((expired, now + expiry), else_=table.c.expires_at)},
        ).returning(table.c.count)
        with db.write() as s:
            count = int(s.execute(stmt).scalar_one())
            if next(self._hits) % SWEEP_EVERY == 0:
                s.execute(delete(table).where(table.c.expires_at <= now))
        return count

    def _row(self, key: str) -> tuple[int, float] | None:
        with self._database().single_connection() as conn:
            row = conn.execute(_COUNTER, {"key": self._key(key)}).first()
        return (int(row[0]), float(row[1])) if row else None

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row and row[1] > time.time() else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row and row[1] > time.time() else time.time()

    def check(self) -> bool:
        try:
            with self._database().engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self._database().write() as s:
            return int(s.execute(delete(RateLimitCounter.__table__)).rowcount or 0)

    def clear(self, key: str) -> None:
        table = RateLimitCounter.__table__
        with self._database().write() as s:
            s.execute(delete(table).where(table.c.key == self._key(key)))
