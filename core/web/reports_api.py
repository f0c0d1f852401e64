"""Exports over the API: `GET /api/v1/conversions.csv`, with the filters of `/api/v1/conversions`.

(`GET /api/v1/reports`, JSON and CSV, lives in `core.web.api`; both render through
`core.reports`, which holds every report query.)
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from flask import Blueprint, Response
from pydantic import Field

from core import partners as partner_ops
from core.conversions import conversions_query
from core.db import session
from core.reports import conversions_csv
from core.schemas import ConversionQuery, Strict
from core.web.apiutil import current_program
from core.web.openapi import operation

bp = Blueprint("reports_api", __name__, url_prefix="/api/v1")


class ConversionExportQuery(Strict):
    partner_id: Optional[str] = None
    status: Optional[Literal["pending", "approved", "held", "rejected", "reversed", "partially_refunded"]] = None
    from_: Optional[datetime] = Field(default=None, alias="from")
    to: Optional[datetime] = None


@bp.get("/conversions.csv")
@operation("GET", "/api/v1/conversions.csv", "Conversions as CSV (same filters as "
           "/api/v1/conversions; amounts in minor units and formatted, with their currency)",
           query=ConversionExportQuery, tag="reports")
def conversions_export(query: ConversionExportQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    if query.partner_id:
        partner_ops.get_partner(s, program.id, query.partner_id)
    stmt = conversions_query(program.id, ConversionQuery.model_validate(
        {"partner_id": query.partner_id, "status": query.status, "from": query.from_, "to": query.to}))
    body = conversions_csv(s, program.id, stmt)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="touchpoint-conversions.csv"'})
