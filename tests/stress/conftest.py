"""Fixtures of the process tests: real `touchpoint serve` processes on loopback over the test
database (`db_url`: SQLite and PostgreSQL), a fake WooCommerce store, and the figures recorded
for docs/reliability.md (tests/reliability.py)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.reliability import figures  # noqa: F401 - the fixture
from tests.stress.server import Server, environment
from tests.stress.shop import FakeStore


@pytest.fixture
def env(db_url, tmp_path) -> dict[str, str]:
    return environment(db_url, tmp_path)


@pytest.fixture
def serve(env) -> Iterator[Callable[..., Server]]:
    """`serve(workers=3)` starts a server on a free port; every one is stopped at the end."""
    started: list[Server] = []

    def start(workers: int = 3) -> Server:
        server = Server(env, workers=workers).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def store(httpserver) -> FakeStore:
    fake = FakeStore(httpserver)
    yield fake
    fake.release()
