"""Mutated versions of the platforms' published samples, correctly signed, sent to each webhook
endpoint (all four platforms, SQLite and PostgreSQL).

Hypothesis takes a sample delivery (tests/connectors/deliveries.py) and changes one to three
places in it: a key removed, a value replaced by null, by another type, by an out-of-range
number, NaN or an odd string. A signed body is the platform speaking, so the answer must never be
a 5xx: either the delivery is refused with a 4xx, and then nothing changed in the database, or it
is stored (2xx) and translated; a translation that cannot make sense of it is kept on the row
("failed", with its error, nothing of it applied) for the retry job; the report counts those and
names where each translation gave up.
The quick variant runs in `make test`; the `stress` one sends many more.
"""
from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from core.db import get_db
from core.models import WebhookDelivery
from tests.connectors.deliveries import PLATFORMS, Platform, connect
from tests.reliability import figures, snapshot  # noqa: F401 - figures is a fixture

SECRET = "mutation-secret-0123456789"

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.just(-1), st.just(0),
    st.floats(allow_nan=True, allow_infinity=True), st.just(""), st.just("   "),
    st.text(max_size=30), st.just("9" * 40), st.just("-5.00"), st.just("1e309"),
    st.just("2026-13-45T99:99:99Z"), st.just([]), st.just({}), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@pytest.fixture
def app(db_url, tmp_path):
    from app import CONNECTORS
    from core import make_app

    application = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                            "base_url": "https://tp.example", "var_dir": tmp_path,
                            "testing": True,
                            # Hundreds of deliveries from one address: not what is tested here.
                            "ratelimit_enabled": False}, CONNECTORS)
    yield application
    application.extensions["touchpoint_db"].dispose()


@pytest.fixture(params=PLATFORMS, ids=lambda p: p.id)
def platform(request) -> Platform:
    return request.param


def _places(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON tree."""
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _places(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _places(v, path + (i,))
    return out


def _mutate(payload: Any, path: tuple, action: str, value: Any) -> None:
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "remove" and isinstance(parent, dict):
        del parent[last]
    else:
        parent[last] = value


@st.composite
def mutated(draw: Any, platform: Platform) -> tuple[str, bytes, list[str]]:
    topic, build = draw(st.sampled_from(platform.samples))
    payload = build(uuid.uuid4().hex[:12])
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        places = _places(payload)
        if not places:
            break
        path = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["remove", "replace"]))
        value = draw(ODD_VALUES)
        _mutate(payload, path, action, value)
        changes.append(f"{action} {'/'.join(map(str, path))}" + (f" = {value!r}"[:60] if action == "replace" else ""))
    return topic, json.dumps(payload, allow_nan=True).encode(), changes


def send_mutations(app: Any, platform: Platform, figures: Counter, examples: int) -> None:  # noqa: F811
    _, source_id = connect(app, platform, SECRET)
    client = app.test_client()
    state = {"db": snapshot(app)}

    @settings(max_examples=examples, deadline=None, derandomize=examples < 100, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=mutated(platform))
    def check(case: tuple[str, bytes, list[str]]) -> None:
        topic, body, changes = case
        key = uuid.uuid4().hex
        _, headers = platform.delivery(topic, body, key, SECRET)
        resp = client.post(platform.url(source_id), data=body, headers=headers)
        where = (platform.id, topic, changes)
        assert resp.status_code < 500, (where, resp.get_data(as_text=True)[:300])
        figures["sent"] += 1
        if resp.status_code >= 400:
            assert resp.get_json()["error"]["code"], where
            assert snapshot(app) == state["db"], f"{where} was refused but changed the database"
            figures["refused_4xx"] += 1
            return
        status = resp.get_json()["status"]
        figures[f"stored_{status}"] += 1
        after = snapshot(app)
        if status == "failed":
            # Kept for the retry job with its error, and nothing of it half-applied: only the
            # inbox row (and the platform's own idempotency rows) differ.
            changed = {t for t in after if after[t] != state["db"].get(t)}
            assert changed <= {"webhookdelivery"}, (where, changed)
        state["db"] = after

    check()
    with app.app_context(), get_db().session() as s:
        from sqlmodel import select

        failed = s.exec(select(WebhookDelivery.error).where(WebhookDelivery.status == "failed")).all()
    assert all(failed), "a failed delivery keeps its error"
    for site in {_where(e) for e in failed}:
        figures[f"failed_at {site}"] += 1


def _where(traceback: str) -> str:
    """The last line of the platform's own code in a stored traceback, and the error."""
    lines = traceback.strip().splitlines()
    frames = [ln.strip() for ln in lines if ln.strip().startswith('File "') and "/connectors/" in ln]
    return f"{frames[-1] if frames else ''} {lines[-1]}"[:300]


def test_mutated_samples_never_fail_the_server(app, platform, figures):  # noqa: F811
    send_mutations(app, platform, figures, examples=int(__import__("os").environ.get("TP_MUT", "25")))


@pytest.mark.stress
def test_mutated_samples_never_fail_the_server_many(app, platform, figures):  # noqa: F811
    send_mutations(app, platform, figures, examples=500)
