"""An admin's decision on a held conversion: release (credit it as usual) or reject (never).

Shared by the API (`core.web.review_api`) and the admin pages (`core.web.review`). The decision
is recorded on the conversion (who, when) and the conversion is settled again through
`core.ingest.settle`, under the same per-origin lock as every webhook, so a refund arriving at
the same moment is applied before or after it, never half-way.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from sqlmodel import Session, select

from core.errors import ApiError, not_found
from core.ingest import IngestContext, lock_origin, settle
from core.models import Conversion, Program

Decision = Literal["release", "reject"]
STATE = {"release": "released", "reject": "rejected"}


def decide(s: Session, program: Program, conversion_id: str, decision: Decision, by: str,
           now: datetime | None = None) -> Conversion:
    """Release or reject a held conversion. 404 for another program's id, 409 (changing
    nothing) when it is not waiting for review."""
    found = s.get(Conversion, conversion_id)
    if found is None or found.program_id != program.id:
        raise not_found("conversion")
    ctx = IngestContext(session=s, program=program, origin=found.origin, platform=found.platform)
    lock_origin(ctx)
    conv = s.exec(select(Conversion).where(Conversion.id == conversion_id).with_for_update()
                  .execution_options(populate_existing=True)).one()
    if conv.review != "held":
        state = conv.review or "not held"
        raise ApiError("not_held", f"conversion {conversion_id} is not waiting for review "
                                   f"(it is {state})", 409)
    conv.review = STATE[decision]
    conv.reviewed_at = now or datetime.now(timezone.utc)
    conv.reviewed_by = by
    settle(ctx, conv)
    s.flush()
    return conv
