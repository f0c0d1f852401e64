"""What every API blueprint shares: the bearer key, the write transaction, cursor pages."""
from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import g, jsonify, request
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from core import programs
from core.db import get_db, session
from core.errors import ApiError
from core.models import Program


def current_program() -> Program:
    """The program whose secret key is in `Authorization: Bearer tp_sk_...`."""
    if "tp_program" in g:
        return g.tp_program
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError("unauthorized", "send the program's secret key as "
                       "'Authorization: Bearer tp_sk_...'", 401)
    program = programs.by_secret_key(session(), key.strip())
    if program is None:
        raise ApiError("unauthorized", "the API key is not valid", 401)
    g.tp_program = program
    return program


@contextmanager
def writing() -> Iterator[Session]:
    """One write transaction for the request; an ApiError inside rolls everything back."""
    with get_db().write() as s:
        yield s


def retrying(work: Callable[[Session], Any], attempts: int = 3) -> Any:
    """Run `work(session)` in a write transaction, again when a concurrent request won a race
    on a unique key (the loser then finds the winner's row) or the database chose it as a
    deadlock victim."""
    for attempt in range(attempts):
        try:
            with get_db().write() as s:
                return work(s)
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise ApiError("conflict", "a concurrent request changed the same data; retry", 409) from None
    raise AssertionError("unreachable")


def ok(model: BaseModel | dict[str, Any], status: int = 200):  # type: ignore[no-untyped-def]
    body = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    resp = jsonify(body)
    resp.status_code = status
    return resp


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        stamp, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(stamp), row_id
    except (ValueError, UnicodeDecodeError):
        raise ApiError("invalid_cursor", "cursor: not a cursor this API gave out") from None


def page(model: Any, stmt: Any, limit: int, cursor: str | None, s: Session) -> tuple[list[Any], str | None]:
    """Rows ordered by (created_at, id) after the cursor, and the next cursor (or None)."""
    after = decode_cursor(cursor)
    if after is not None:
        stamp, row_id = after
        stmt = stmt.where((model.created_at > stamp) |
                          ((model.created_at == stamp) & (model.id > row_id)))
    rows = list(s.exec(stmt.order_by(model.created_at, model.id).limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], nxt


def listing(items: list[BaseModel], next_cursor: str | None):  # type: ignore[no-untyped-def]
    return jsonify({"data": [i.model_dump(mode="json") for i in items], "next_cursor": next_cursor})
