"""core/ratelimit.py: the limits of login, click and forged-webhook requests, counted in the
database so that every worker and every server shares them; on SQLite and PostgreSQL.

Two apps on one database stand for two `touchpoint serve` processes here (tests/stress runs real
ones); a limit reached through one is reached through the other.
"""
from __future__ import annotations

import json
import re
import threading
from collections import Counter

import pytest
from sqlmodel import func, select

from core import make_app, ratelimit
from core.db import get_db
from core.models import Click, RateLimitCounter, User, WebhookDelivery
from core.ratelimit import CLICK_LIMIT, FORGED_WEBHOOK_LIMIT, LOGIN_LIMIT, DatabaseStorage
from tests.core.web.test_admin import PASSWORD, csrf_token, make_user
from tests.factories import new_program
from tests.fakes import fake, sign


def allowed(limit: str) -> int:
    """The number of hits a limit string allows ("120 per minute" -> 120)."""
    return int(limit.split()[0])


@pytest.fixture
def connectors():
    return (fake,)


@pytest.fixture
def twin(db_url, tmp_path, connectors):
    """A second app on the same database: another server process."""
    other = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                      "base_url": "http://touchpoint.test", "var_dir": tmp_path,
                      "testing": True}, connectors)
    yield other
    other.extensions["touchpoint_db"].dispose()


class Clock:
    """`time.time` for the storage, moved by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(ratelimit, "time", c)
    return c


def storage(app, secret: bytes = b"test-secret-key") -> DatabaseStorage:  # type: ignore[no-untyped-def]
    return DatabaseStorage(database=lambda: app.extensions["touchpoint_db"], secret=lambda: secret)


# --- the storage ---------------------------------------------------------------------------------

def test_concurrent_increments_never_lose_a_hit(app):
    store = storage(app)
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def hit() -> None:
        barrier.wait()
        for _ in range(25):
            seen.append(store.incr("k", 60))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every increment saw its own count: 1..200, each once.
    assert sorted(seen) == list(range(1, 201))
    assert store.get("k") == 200


def test_a_window_ends_and_the_next_starts_from_zero(app, clock):
    store = storage(app)
    assert [store.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert store.get_expiry("k") == clock.now + 60
    clock.now += 59.9
    assert (store.get("k"), store.incr("k", 60, amount=2)) == (3, 5)
    clock.now += 0.2  # the window has ended
    assert store.get("k") == 0
    assert store.get_expiry("k") == clock.now
    assert store.incr("k", 60) == 1
    assert store.get_expiry("k") == clock.now + 60
    store.clear("k")
    assert store.get("k") == 0


def test_expired_counters_are_swept(app, clock, monkeypatch):
    monkeypatch.setattr(ratelimit, "SWEEP_EVERY", 5)
    store = storage(app)
    for i in range(4):
        store.incr(f"old-{i}", 10)
    clock.now += 11
    store.incr("new", 10)  # the fifth hit sweeps what has expired
    assert count(app, RateLimitCounter) == 1 and store.get("new") == 1
    assert store.reset() == 1 and store.check()


def test_keys_are_stored_as_a_keyed_hash(app):
    """A key names the client's address: only its HMAC under the secret key is stored, the same
    in every process sharing that key, and any length fits."""
    key = "LIMITER/203.0.113.7/track.track_click/120/1/minute" + "x" * 400
    assert storage(app).incr(key, 60) == 1
    assert storage(app).incr(key, 60) == 2  # another process, the same secret: the same counter
    assert storage(app, secret=b"another deployment").incr(key, 60) == 1
    with app.app_context(), get_db().session() as s:
        stored = s.exec(select(RateLimitCounter.key)).all()
    assert len(stored) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in stored)
    assert not any("203.0.113.7" in k for k in stored)


def test_the_storage_is_registered_as_a_limits_scheme(app):
    from limits.storage import storage_from_string

    assert isinstance(storage_from_string(ratelimit.STORAGE_URI), DatabaseStorage)
    with app.test_request_context():  # the default database is the current app's
        assert storage_from_string(ratelimit.STORAGE_URI).incr("k", 60) == 1
        assert storage(app).get("k") == 1


# --- the limited endpoints -----------------------------------------------------------------------

def click(client, api, **body):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/track/click", json={"publishable_key": api.publishable_key,
                                                    "ref": "ann", **body})


def count(app, model) -> int:  # type: ignore[no-untyped-def]
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_clicks_are_limited_per_address_across_servers(app, twin):
    api = new_program(app)
    api.partner("Ann", key="ann")
    n = allowed(CLICK_LIMIT)
    here, there = app.test_client(), twin.test_client()
    codes = Counter(click(here if i % 2 else there, api).status_code for i in range(n))
    assert codes == {200: n}
    for client in (here, there):
        resp = click(client, api)
        assert resp.status_code == 429
        assert resp.get_json()["error"]["code"] == "too_many_requests"
    assert count(app, Click) == n  # refused clicks recorded nothing
    # Another address has its own count.
    other = click(here, api, url="https://shop.example/")
    assert other.status_code == 429
    fresh = here.post("/api/v1/track/click", environ_base={"REMOTE_ADDR": "203.0.113.9"},
                      json={"publishable_key": api.publishable_key, "ref": "ann"})
    assert fresh.status_code == 200 and count(app, Click) == n + 1


def test_refused_clicks_count_too(app):
    """A flood of bad requests (unknown keys) is limited like good ones."""
    client = app.test_client()
    n = allowed(CLICK_LIMIT)
    codes = Counter(client.post("/api/v1/track/click", json={"publishable_key": "tp_pk_guess",
                                                             "ref": "x"}).status_code
                    for _ in range(n + 1))
    assert codes == {401: n, 429: 1}


def login(client, email: str, password: str):  # type: ignore[no-untyped-def]
    return client.post("/admin/login", data={"email": email, "password": password,
                                             "csrf_token": csrf_token(client, "/admin/login")})


def test_login_limit_is_shared_by_servers(app, twin):
    api = new_program(app)
    email = make_user(app, api.program_id)
    here, there = app.test_client(), twin.test_client()
    n = allowed(LOGIN_LIMIT)
    codes = [login(here if i % 2 else there, email, "not the password").status_code
             for i in range(n)]
    assert codes == [401] * n
    assert login(there, email, PASSWORD).status_code == 429  # even the right password waits
    assert login(here, email, PASSWORD).status_code == 429
    assert count(app, User) == 1


def fake_source(api) -> dict:  # type: ignore[no-untyped-def]
    return api.ok("post", "/api/v1/sources", {"platform": "fake", "webhook_secret": "s3cret"}, 201)


def deliver(client, source: dict, n: int, secret: str = "s3cret"):  # type: ignore[no-untyped-def]
    body = json.dumps({"id": f"evt-{n}", "topic": "noop"}).encode()
    return client.post(f"/webhooks/fake/{source['id']}", data=body,
                       headers={"X-Fake-Signature": sign(secret, body)})


def test_only_forged_webhooks_count(app, twin):
    api = new_program(app)
    source = fake_source(api)
    here, there = app.test_client(), twin.test_client()
    n = allowed(FORGED_WEBHOOK_LIMIT)
    # A platform's burst of valid deliveries (and retries of them) is never limited.
    valid = Counter(deliver(here, source, i % 50).status_code for i in range(3 * n))
    assert valid == {200: 3 * n}
    forged = [deliver(here if i % 2 else there, source, 1000 + i, "guess").status_code
              for i in range(n)]
    assert forged == [401] * n
    resp = deliver(there, source, 2000, "guess")
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "too_many_requests"
    # Until the window ends, that address is refused outright, before any verification.
    assert deliver(here, source, 3000).status_code == 429
    assert count(app, WebhookDelivery) == 50


def test_limits_can_be_switched_off(db_url, tmp_path, connectors):
    app = make_app({"database_url": db_url, "secret_key": "k", "var_dir": tmp_path,
                    "testing": True, "ratelimit_enabled": False}, connectors)
    try:
        api = new_program(app)
        api.partner("Ann", key="ann")
        client = app.test_client()
        n = allowed(CLICK_LIMIT) + 5
        assert Counter(click(client, api).status_code for _ in range(n)) == {200: n}
        assert count(app, RateLimitCounter) == 0
    finally:
        app.extensions["touchpoint_db"].dispose()
