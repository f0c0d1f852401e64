"""/webhooks/<platform>[/<source_id>]: find the source, let the connector verify the signature,
store the delivery (committed before the answer), then apply it (see `core.inbox`).

Verification comes before storage: a forged request changes nothing. Processing errors do not
change the answer (the delivery is stored; `touchpoint jobs run` retries it), so a platform never
retries a delivery we already hold.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import bindparam, select
from werkzeug.exceptions import NotFound

from core import inbox
from core.connectors import BadPayload, SignatureInvalid
from core.db import get_db
from core.errors import ApiError
from core.models import Source
from core.sources import context, find_by_account, registry

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_BODY = 5 * 1024 * 1024
_SOURCE = select(Source.__table__).where(Source.__table__.c.id == bindparam("id"))


def _receive(platform: str, source_id: str | None):  # type: ignore[no-untyped-def]
    connector = registry().get(platform)
    if connector is None:
        raise NotFound(f"no connector {platform!r}")
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError("too_large", "the body is larger than 5 MB", 413)
    db = get_db()
    if source_id is None:
        if connector.account_from_headers is None:
            raise NotFound("this platform's webhook URL ends with the source id")
        account = connector.account_from_headers(request.headers)
        with db.read_session() as s:
            source = find_by_account(s, connector.id, account, active_only=False) if account else None
        if source is None:
            raise ApiError("unknown_account", f"no active source for account {account!r}", 404)
    else:
        # Read on every delivery, never cached (a rotated secret applies at once), and without
        # an ORM session: loading through one cost 330 µs of CPU here, the plain row 190.
        with db.single_connection() as conn:
            row = conn.execute(_SOURCE, {"id": source_id}).first()
        source = Source(**row._mapping) if row is not None else None
        if source is None or source.platform != connector.id:
            raise ApiError("unknown_source", f"no {platform} source {source_id!r}", 404)
    body = request.get_data(cache=False)
    try:
        delivery = connector.verify(context(source, connector), request.headers, body)
    except SignatureInvalid as exc:
        raise ApiError("invalid_signature", str(exc) or "the signature does not match", 401) from None
    except BadPayload as exc:
        raise ApiError("bad_payload", str(exc) or "the body cannot be parsed", 400) from None
    # Answered once stored (committed); applied by this request or the one draining the source.
    status, created = inbox.receive(db, connector, source, delivery)
    body_out = {"received": True, "status": status, "duplicate": not created}
    if source.status != "active":
        body_out["ignored"] = "source is not active: only privacy requests are applied"
    return jsonify(body_out)


@bp.post("/<platform>")
def receive_shared(platform: str):  # type: ignore[no-untyped-def]
    return _receive(platform, None)


@bp.post("/<platform>/<source_id>")
def receive(platform: str, source_id: str):  # type: ignore[no-untyped-def]
    return _receive(platform, source_id)
