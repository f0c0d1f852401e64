"""The engine and sessions of one app, alike on SQLite and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL` (a committed webhook survives a power cut) and a
busy timeout, and write transactions start with `BEGIN IMMEDIATE` so two workers never deadlock
upgrading a read lock. PostgreSQL uses psycopg 3; rows that must be serialised are locked with
`SELECT ... FOR UPDATE` (see `core.ingest`).
"""
from __future__ import annotations

from collections.abc import Iterator
import fcntl
import hashlib
import os
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from core.spool import Spool


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, **kw: object) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kw)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **kw)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # Every transaction takes the write lock at once: reads in WAL mode are not blocked by it,
        # and a deferred transaction that later writes can fail with SQLITE_BUSY without waiting.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class WriterQueue:
    """One SQLite writer at a time across processes, queued on an flock.

    SQLite admits one writer; a blocked one polls with sleeps of up to 100 ms, which under
    several workers costs far more than the writes. Waiting on an flock instead wakes the next
    writer the moment the lock is released. Threads of one process queue on a mutex first,
    because flock does not exclude threads sharing a descriptor.
    """

    def __init__(self, database_path: str) -> None:
        self.fd = os.open(f"{database_path}.writelock", os.O_CREAT | os.O_RDWR, 0o600)
        self.mutex = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.mutex:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)


class TryLocks:
    """Non-blocking named locks shared by every worker of one SQLite database: a process-local
    mutex, then an flock on a file beside the database (SQLite has one writer, so one file
    serves every name)."""

    def __init__(self, database_path: str | None) -> None:
        self.path = f"{database_path}.drainlock" if database_path else None
        self.mutexes: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    @contextmanager
    def held(self, name: str) -> Iterator[bool]:
        with self.guard:
            mutex = self.mutexes.setdefault(name, threading.Lock())
        if not mutex.acquire(blocking=False):
            yield False
            return
        try:
            if self.path is None:
                yield True
                return
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            mutex.release()


class Database:
    """Engine of one app, kept in `app.extensions["touchpoint_db"]` (Flask's extension rule)."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.write_engine = self.engine.execution_options(write=True)
        database = self.engine.url.database if is_sqlite(self.engine) else None
        on_disk = database if database and database != ":memory:" else None
        self.writers = WriterQueue(on_disk) if on_disk else None
        self.locks = TryLocks(on_disk) if is_sqlite(self.engine) else None
        # Where the inbox keeps deliveries waiting for SQLite's one writer (`core.spool`).
        self.spool = Spool(f"{on_disk}.inbox") if on_disk else None
        # On PostgreSQL, one statement needs no transaction around it: in autocommit it costs
        # one round trip, not three (BEGIN, the statement, COMMIT or the pool's ROLLBACK).
        self.single = self.engine if is_sqlite(self.engine) else \
            self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def single_connection(self) -> Iterator[Connection]:
        """A connection for statements that each stand alone. On PostgreSQL it is autocommit
        and one per request: checking a pooled connection out costs a round trip (the pre-ping),
        and a webhook request runs four such statements (rate limit, source, store, drain
        lock). On SQLite a fresh one each time: a held connection would keep a read snapshot."""
        if is_sqlite(self.engine) or not has_request_context():
            with self.single.connect() as conn:
                yield conn
            return
        if "tp_single" not in g:
            g.tp_single = self.single.connect()
        yield g.tp_single

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session that only reads (never flushes), on `single_connection`: on PostgreSQL
        each statement runs on its own, as READ COMMITTED reads would anyway."""
        with self.single_connection() as conn:
            with Session(conn, expire_on_commit=False, autoflush=False) as s:
                yield s

    @contextmanager
    def statement(self) -> Iterator[Connection]:
        """A connection for one atomic write statement (and reads beside it): committed on
        its own on PostgreSQL; on SQLite, a write transaction in the writers' queue."""
        if not is_sqlite(self.engine):
            with self.single_connection() as conn:
                yield conn
            return
        with self.writers.held() if self.writers else nullcontext():
            with self.write_engine.begin() as conn:
                yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for one write transaction: committed on success, rolled back on error."""
        with self.writers.held() if self.writers else nullcontext():
            with Session(self.write_engine, expire_on_commit=False) as s:
                try:
                    yield s
                    s.commit()
                except BaseException:
                    s.rollback()
                    raise

    @contextmanager
    def try_lock(self, name: str) -> Iterator[bool]:
        """Yields whether this caller now holds the lock `name`, held across processes and
        servers (a session advisory lock on PostgreSQL); never waits for it."""
        if self.locks is not None:
            with self.locks.held(name) as mine:
                yield mine
            return
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                             signed=True)
        with self.single_connection() as conn:  # a session lock: no transaction needed
            mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            try:
                yield mine
            finally:
                if mine:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})

    def dispose(self) -> None:
        self.engine.dispose()


def init_app(app: Flask, url: str) -> Database:
    db = Database(url)
    app.extensions["touchpoint_db"] = db
    app.teardown_appcontext(_close_session)
    return db


def get_db() -> Database:
    return current_app.extensions["touchpoint_db"]


def session() -> Session:
    """The request's read session (closed at teardown)."""
    if "tp_session" not in g:
        g.tp_session = get_db().session()
    return g.tp_session


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("tp_session", None)
    if s is not None:
        s.close()
    conn = g.pop("tp_single", None)
    if conn is not None:
        conn.close()
