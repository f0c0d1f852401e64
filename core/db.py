"""The engine and sessions of one app, alike on SQLite and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL` (a committed webhook survives a power cut) and a
busy timeout, and write transactions start with `BEGIN IMMEDIATE` so two workers never deadlock
upgrading a read lock. PostgreSQL uses psycopg 3; rows that must be serialised are locked with
`SELECT ... FOR UPDATE` (see `core.ingest`).
"""
from __future__ import annotations

from collections.abc import Iterator
import fcntl
import os
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session


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


class Database:
    """Engine of one app, kept in `app.extensions["touchpoint_db"]` (Flask's extension rule)."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.write_engine = self.engine.execution_options(write=True)
        database = self.engine.url.database if is_sqlite(self.engine) else None
        self.writers = WriterQueue(database) if database and database != ":memory:" else None

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

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
