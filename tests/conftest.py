"""Shared test fixtures.

- `db_url`: every storage test runs twice, on SQLite and on PostgreSQL (a real server, see
  tests/pg.py); the PostgreSQL run is skipped, with the reason, only when no server can be had.
- `app`, `client`, `runner`: Flask's trio, on a migrated, empty database.
- Payloads are read from tests/fixtures/<platform>/ (copies of the platforms' own published
  samples, see tests/fixtures/SOURCES.md), never pasted into tests.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(platform: str, name: str) -> bytes:
    """The raw bytes of a published sample payload."""
    return (FIXTURES / platform / name).read_bytes()


def fixture_json(platform: str, name: str) -> Any:
    """A published sample payload, parsed."""
    return json.loads(fixture_bytes(platform, name))


@pytest.fixture
def load_fixture():
    """`load_fixture(platform, name)` -> parsed JSON of tests/fixtures/<platform>/<name>."""
    return fixture_json


# --- databases ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """One migrated SQLite file, copied for each test (migrating each time would be slow)."""
    from core import migrate

    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres():
    from tests import pg

    server, reason = pg.start()
    if server is None:
        yield None, reason
        return
    from core import migrate

    admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS touchpoint_test"))
        conn.execute(text("CREATE DATABASE touchpoint_test"))
    admin.dispose()
    url = server.url.rsplit("/", 1)[0] + "/touchpoint_test"
    migrate.upgrade(url)
    yield url, ""
    server.stop()


def _truncate_all(url: str) -> None:
    from sqlmodel import SQLModel

    import core.models  # noqa: F401

    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "touchpoint.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url, reason = request.getfixturevalue("_postgres")
    if url is None:
        pytest.skip(reason)
    _truncate_all(url)
    return url


@pytest.fixture
def connectors():
    """The connectors the app is built with; a test module may override this fixture."""
    from app import CONNECTORS

    return CONNECTORS


@pytest.fixture
def app(db_url, tmp_path, connectors):
    from core import make_app

    application = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                              "base_url": "http://touchpoint.test", "var_dir": tmp_path,
                              "testing": True}, connectors)
    yield application
    application.extensions["touchpoint_db"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
