"""Figures the reliability tests measure (examples run, requests sent, endpoints probed), for
docs/reliability.md.

Tests count what they did in the `figures` fixture; when `TOUCHPOINT_RELIABILITY_REPORT` names a
file (e.g. `.reports/reliability.json`), the counts are added into it under the test's section
and database, so a whole run (both databases, every module) sums into one document. Without the
variable nothing is written: the counts are then only the tests' own assertions.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ENV = "TOUCHPOINT_RELIABILITY_REPORT"


def record(section: str, variant: str, counts: dict[str, int]) -> None:
    """Add `counts` to `section` / `variant` of the report file, if one is configured."""
    target = os.environ.get(ENV)
    if not target or not counts:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers may write at once
        data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        bucket = data.setdefault(section, {}).setdefault(variant, {})
        for key, value in counts.items():
            bucket[key] = bucket.get(key, 0) + int(value)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def figures(request) -> Counter:
    """A Counter the test adds to; recorded under the test module's name and the database."""
    counts: Counter = Counter()
    yield counts
    callspec = getattr(request.node, "callspec", None)
    variant = str(callspec.params.get("db_url", "any")) if callspec else "any"
    section = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    record(section, variant, dict(counts))


# Not data a request changes: caches that reads fill (closed days' click counts,
# core/rollups.py) and the rate limiter's hit counters (core/ratelimit.py), which count refused
# requests by design.
DERIVED_TABLES = frozenset({"clickday", "clickdaily", "rate_limit_counter"})


def snapshot(app: Any) -> dict[str, list[tuple]]:
    """Every row of every table (but the read caches), as text: "nothing changed" is equality."""
    from sqlalchemy import text
    from sqlmodel import SQLModel

    import core.models  # noqa: F401 - every table registered
    from core.db import get_db

    out = {}
    with app.app_context(), get_db().engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in DERIVED_TABLES:
                continue
            rows = conn.execute(text(f'SELECT * FROM "{table.name}"')).all()
            out[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return out
