"""Recording clicks: the hot path of `GET /r/<key>` and of the click API.

It runs on one DBAPI connection per thread with one plain statement (no ORM, no SQLAlchemy Core
statement building: both cost more than the insert itself). Per-process caches hold what rarely
changes (links, partner keys, the day's salt, user-agent verdicts) for a few seconds, so a click
costs one insert with two indexed reads inside it. The redirect does not even wait for that: it
spools its click to a file and a thread moves clicks to the database in batches
(`core.click_spool`); the click API, whose caller may use the click id at once, inserts before
answering.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import secrets
import select as io_select
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from crawlerdetect import CrawlerDetect
from psycopg import pq
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError
from user_agents import parse as parse_ua

from core.click_spool import ClickSpool
from core.ids import new_sortable_id
from core.models import DailySalt, Link, Partner, Program

CACHE_SECONDS = 10.0
_LINK_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what the links API accepts as a key
SYNC_SECONDS = 1.0
PIPELINE_ROWS = 500  # clicks per pipelined transaction on PostgreSQL (results stay in socket buffers)
_crawler = CrawlerDetect()
log = logging.getLogger(__name__)


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


@lru_cache(maxsize=4096)
def _split_for_click(url: str) -> tuple[str, str]:
    """(the URL up to where `tp_click=` goes, the `#fragment` or "") of a link's URL, once."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "tp_click"]
    base = urlunsplit(parts._replace(query=urlencode(query), fragment=""))
    return base + ("&" if query else "?") + "tp_click=", ("#" + parts.fragment) if parts.fragment else ""


def with_click(url: str, click_id: str) -> str:
    """The link's URL with `tp_click` added, keeping its own query and fragment."""
    head, fragment = _split_for_click(url)
    return head + click_id + fragment


@lru_cache(maxsize=4096)
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


def _pg_text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format (the column gives it its type)."""
    if value is None:
        return None
    if value is True or value is False:
        return b"t" if value else b"f"
    return str(value).encode()  # times are text already (see `record`)


def _pg_error(result: Any) -> psycopg.DatabaseError:
    return psycopg.DatabaseError(result.error_message.decode(errors="replace").strip())


def _pg_check(result: Any) -> None:
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise _pg_error(result)


def _pg_next_result(pgconn: Any) -> Any:
    """The next result of a pipeline. libpq's PQgetResult would wait for the server holding
    Python's lock, stalling the worker's requests for the whole batch: wait on the socket
    first (`select` lets go of it), read what came, and take the result once it is whole."""
    while pgconn.is_busy():
        io_select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    return pgconn.get_result()


def _pg_bad_row(result: Any) -> bool:
    """Whether a failed insert failed for its own data (a partner erased meanwhile, a value out
    of range) rather than for the database: such a click is left out instead of retried."""
    state = result.error_field(pq.DiagnosticField.SQLSTATE) or b""
    return state[:2] in (b"22", b"23")


class ClickRecorder:
    """Records clicks for one app (kept in app.extensions)."""

    def __init__(self, engine: Engine, var_dir: str | Path, gather_seconds: float = 0.005) -> None:
        self.engine = engine.execution_options(write=True)
        self.read_engine = engine
        self._links = _TTLCache()
        self._partners = _TTLCache()
        self._salt: tuple[int, str] | None = None
        self._local = threading.local()
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock_fd: int | None = None
        self._thread_lock = threading.Lock()
        if self._sqlite and engine.url.database not in (None, "", ":memory:"):
            self._lock_fd = os.open(f"{engine.url.database}.clicklock", os.O_CREAT | os.O_RDWR, 0o600)
        cols = ("id", "program_id", "partner_id", "link_id", "visitor_id", "campaign", "url",
                "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
                "utm_content", "device", "ip_hash", "is_bot", "is_unique", "created_at")
        # One statement per click: the visitor of an earlier click and "first click of this
        # browser today for this partner" are read inside the insert itself, so a click is one
        # round trip to PostgreSQL and one call into SQLite.
        values = ["{}"] * len(cols)
        values[cols.index("visitor_id")] = "COALESCE((SELECT visitor_id FROM click WHERE id = {} AND program_id = {}), {})"
        values[cols.index("is_unique")] = "NOT EXISTS (SELECT 1 FROM click WHERE partner_id = {} AND ip_hash = {} AND created_at >= {})"
        # Ids already stored are skipped: moving a spool file twice must count nothing twice.
        template = (f"INSERT INTO click ({', '.join(cols)}) VALUES ({', '.join(values)}) "
                    "ON CONFLICT (id) DO NOTHING")
        marks = template.count("{}")
        # SQLite's qmarks; PostgreSQL's numbered parameters of a prepared statement.
        self._sql_insert = template.format(*["?"] * marks) if self._sqlite else \
            template.format(*[f"${i}" for i in range(1, marks + 1)])
        # One spool directory per database, so a file's clicks go where they were meant to.
        digest = hashlib.sha256(engine.url.render_as_string(hide_password=False).encode()).hexdigest()
        self.spool = ClickSpool(Path(var_dir) / "click-spool" / digest[:16], self._write_rows,
                                release=self._close_connection, gather_seconds=gather_seconds)

    def recover(self) -> int:
        """Move clicks that a process which is gone spooled but did not store; how many."""
        try:
            return self.spool.recover()
        except Exception:  # noqa: BLE001 - starting must not fail for it; the mover tries again
            log.exception("could not move spooled clicks yet")
            return 0

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every click this process spooled is in the database."""
        return self.spool.flush(timeout)

    # -- lookups ------------------------------------------------------------------------------
    def link(self, key: str) -> LinkInfo | None:
        hit = self._links.get(key)
        if hit is not None:
            return hit or None
        if not _LINK_KEY.fullmatch(key):
            return None  # not a key links can have (NUL is even refused by PostgreSQL's text)
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
        if self._salt and self._salt[0] == now.toordinal():  # no formatting on the click path
            return self._salt[1]
        day = now.strftime("%Y-%m-%d")
        with self.engine.begin() as conn:
            value = conn.execute(select(DailySalt.salt).where(DailySalt.day == day)).scalar()
            if value is None:
                value = secrets.token_hex(16)
                try:
                    with conn.begin_nested():
                        conn.execute(insert(DailySalt).values(day=day, salt=value))
                except IntegrityError:
                    value = conn.execute(select(DailySalt.salt).where(DailySalt.day == day)).scalar()
        self._salt = (now.toordinal(), value)
        return value

    def _reopen_day(self, program_id: str, day: str) -> None:
        """A click for a closed day (imports, the demo): its click rollup must be summed again."""
        from core.rollups import forget_day

        with self.engine.begin() as conn:
            forget_day(conn, program_id, day)

    def forget_old_salts(self, now: datetime) -> int:
        keep = (now - timedelta(days=1)).strftime("%Y-%m-%d")
        with self.engine.begin() as conn:
            return conn.execute(delete(DailySalt).where(DailySalt.day < keep)).rowcount

    # -- recording ----------------------------------------------------------------------------
    def _raw(self) -> Any:
        """This thread's own DBAPI connection, kept open: SQLAlchemy Core costs more than the
        insert itself on this path (see docs/performance.md)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.raw_connection()
            # Never back to the pool: its settings below are for clicks only.
            conn.detach()
            cur = conn.cursor()
            # Clicks are committed before the redirect answers, but this connection does not wait
            # for the disk on every commit: a crash of Touchpoint loses nothing (the commit is in
            # the WAL); a power cut or OS crash can lose the clicks of the last second at most,
            # because `_sync_now` forces the log to disk once a second. Money (webhooks, the
            # ledger) is written on other connections with full synchronous commits.
            cur.execute("PRAGMA synchronous=NORMAL" if self._sqlite else "SET synchronous_commit TO off")
            cur.close()
            conn.commit()
            # Each insert is its own transaction: on PostgreSQL one round trip instead of three
            # (BEGIN, INSERT, COMMIT). SQLite connections are in autocommit already (core.db).
            if not self._sqlite:
                conn.dbapi_connection.autocommit = True
            self._local.conn = conn
            self._local.prepared = None
            self._local.synced = time.monotonic()
        return conn

    def _close_connection(self) -> None:
        """Close this thread's connection (a spool mover that stops for want of work)."""
        conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is not None:
            conn.close()

    def _sync_now(self, conn: Any) -> None:
        """At most once a second, force what this SQLite connection committed to disk
        (PostgreSQL's WAL writer flushes asynchronous commits within 3 x 200 ms by itself)."""
        now = time.monotonic()
        if now - self._local.synced < SYNC_SECONDS:
            return
        self._local.synced = now
        cur = conn.cursor()
        cur.execute("PRAGMA wal_checkpoint(PASSIVE)")  # fsyncs the WAL, then copies it back
        cur.fetchall()
        cur.close()

    def _write_rows(self, rows: list[Sequence[Any]], skip_refused: bool = True) -> None:
        """Store clicks in one transaction. A click whose own data the database refuses is left
        out (logged) when `skip_refused` (the spool: retrying it would never end), and raises
        otherwise (a caller waiting for its click id); any other failure raises, so that the
        caller tries again."""
        conn = self._raw()
        try:
            if self._sqlite:
                self._insert_sqlite(conn, rows, skip_refused)
            else:
                self._insert_postgresql(conn, rows, skip_refused)
        except Exception:
            self._local.conn = None
            try:
                conn.rollback()
                conn.close()
            except Exception:  # noqa: BLE001 - the connection is being dropped anyway
                pass
            raise
        today = datetime.now(timezone.utc).date().isoformat()
        for program_id, day in sorted({(r[1], r[-1][:10]) for r in rows if r[-1][:10] < today}):
            self._reopen_day(program_id, day)

    def _insert_sqlite(self, conn: Any, rows: list[Sequence[Any]], skip_refused: bool) -> None:
        cur = conn.cursor()
        if self._lock_fd is not None:
            # SQLite lets one writer in at a time and a blocked writer sleeps in steps of
            # milliseconds; an flock queue wakes the next writer the moment this one commits.
            with self._thread_lock:  # flock does not exclude threads sharing the fd
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                try:
                    self._insert_sqlite_rows(cur, rows, skip_refused)
                finally:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        else:
            self._insert_sqlite_rows(cur, rows, skip_refused)
        cur.close()
        self._sync_now(conn)

    def _insert_sqlite_rows(self, cur: Any, rows: list[Sequence[Any]], skip_refused: bool) -> None:
        if len(rows) == 1 or not skip_refused:
            self._insert_sqlite_each(cur, rows, skip_refused)
            return
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany(self._sql_insert, rows)
            cur.execute("COMMIT")
        except sqlite3.IntegrityError:
            cur.execute("ROLLBACK")
            self._insert_sqlite_each(cur, rows, skip_refused)
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _insert_sqlite_each(self, cur: Any, rows: list[Sequence[Any]], skip_refused: bool) -> None:
        for row in rows:  # each its own (autocommitted) transaction
            try:
                cur.execute(self._sql_insert, row)
            except sqlite3.IntegrityError as exc:
                if not skip_refused:
                    raise
                log.warning("click %s left out: %s", row[0], exc)

    def _insert_postgresql(self, conn: Any, rows: list[Sequence[Any]], skip_refused: bool) -> None:
        """libpq's own prepared-statement call: psycopg's cursor costs about 50 µs of Python per
        statement, a third of the whole click, for machinery (adaptation, result sets, the
        transaction) a one-row autocommitted insert does not need. Several clicks go in one
        pipeline (BEGIN, the inserts, COMMIT: one round trip) in transactions of PIPELINE_ROWS."""
        pgconn = conn.dbapi_connection.pgconn
        if self._local.prepared is not conn:
            _pg_check(pgconn.prepare(b"tp_click_insert", self._sql_insert.encode()))
            self._local.prepared = conn
        if len(rows) == 1 or not skip_refused:
            self._insert_postgresql_each(pgconn, rows, skip_refused)
            return
        for start in range(0, len(rows), PIPELINE_ROWS):
            chunk = rows[start:start + PIPELINE_ROWS]
            if not self._pipeline(pgconn, chunk):
                self._insert_postgresql_each(pgconn, chunk, skip_refused)

    def _pipeline(self, pgconn: Any, rows: list[Sequence[Any]]) -> bool:
        """One transaction of inserts in one round trip; False (rolled back) when a click's own
        data was refused, so the caller stores them one by one without it."""
        failed = None
        pgconn.enter_pipeline_mode()
        try:
            pgconn.send_query_params(b"BEGIN", None)
            for row in rows:
                pgconn.send_query_prepared(b"tp_click_insert", [_pg_text(v) for v in row])
            pgconn.send_query_params(b"COMMIT", None)
            pgconn.pipeline_sync()
            while True:
                result = _pg_next_result(pgconn)
                if result is None:
                    continue  # the end of one statement's results
                if result.status == pq.ExecStatus.PIPELINE_SYNC:
                    break
                if result.status == pq.ExecStatus.FATAL_ERROR and failed is None:
                    failed = result
        finally:
            pgconn.exit_pipeline_mode()
        if failed is None:
            return True
        _pg_check(pgconn.exec_(b"ROLLBACK"))  # the failed transaction outlives the sync
        if _pg_bad_row(failed):
            return False
        raise _pg_error(failed)

    def _insert_postgresql_each(self, pgconn: Any, rows: list[Sequence[Any]], skip_refused: bool) -> None:
        for row in rows:  # each its own (autocommitted) transaction
            result = pgconn.exec_prepared(b"tp_click_insert", [_pg_text(v) for v in row])
            if result.status != pq.ExecStatus.COMMAND_OK:
                if not (skip_refused and _pg_bad_row(result)):
                    raise _pg_error(result)
                log.warning("click %s left out: %s", row[0], _pg_error(result))

    def record(self, *, program_id: str, partner_id: str, link_id: str | None,
               campaign: str | None, url: str | None, referrer: str | None, user_agent: str,
               ip: str | None, previous_click_id: str | None = None,
               now: datetime | None = None, wait: bool = True) -> str:
        """Store one click durably and return its id: committed before returning, or with
        `wait=False` spooled (safe from a crash of Touchpoint, in the database within
        milliseconds; see core.click_spool)."""
        now = now or datetime.now(timezone.utc)
        is_bot, device = classify_user_agent(user_agent or "")
        fingerprint = hashlib.sha256(
            f"{self.salt(now)}|{ip or ''}|{user_agent or ''}".encode()).hexdigest()[:32]
        click_id = new_sortable_id("clk")
        naive = now.astimezone(timezone.utc).replace(tzinfo=None)
        day_start = naive.replace(hour=0, minute=0, second=0, microsecond=0)
        utm = utm_of(url)
        # Times as the text both databases read (SQLAlchemy's DateTime form on SQLite), so a
        # row is the same in a spool file and in a statement; the time stays the row's last value.
        row = (click_id, program_id, partner_id, link_id,
               previous_click_id, program_id, click_id,  # the visitor: earlier click's, or this one
               campaign, (url or None) and url[:2048], (referrer or None) and referrer[:2048],
               utm["utm_source"], utm["utm_medium"], utm["utm_campaign"], utm["utm_term"],
               utm["utm_content"], device, fingerprint, is_bot,
               partner_id, fingerprint, day_start.isoformat(" ", "microseconds"),  # unique unless seen today
               naive.isoformat(" ", "microseconds"))
        if wait:
            self._write_rows([row], skip_refused=False)
        else:
            self.spool.append(row)
        return click_id
