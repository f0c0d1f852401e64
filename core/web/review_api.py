"""/api/v1 fraud review: the conversions the fraud rules held, and the admin's decision.

`GET /api/v1/reviews` lists them with their reasons (`state=held` by default, or `released`,
`rejected`); `POST /api/v1/conversions/{id}/release` credits one as usual, `.../reject` refuses
it for good. Held and rejected conversions also show in `GET /api/v1/conversions` with status
`held` / `rejected`. The rules themselves are settings of the program (`PATCH /api/v1/program`,
`fraud_rules`).
"""
from __future__ import annotations

from flask import Blueprint

from core import partners as partner_ops
from core.db import session
from core.fraud.decisions import decide
from core.fraud.review import review_out, reviews_query
from core.models import Conversion
from core.schemas import ReviewOut, ReviewQuery
from core.web.apiutil import current_program, listing, ok, page, writing
from core.web.openapi import operation

bp = Blueprint("review_api", __name__, url_prefix="/api/v1")


@bp.get("/reviews")
@operation("GET", "/api/v1/reviews", "Conversions the fraud rules held, with the reasons "
           "(state=held by default; released or rejected for decided ones)", query=ReviewQuery,
           response=ReviewOut, many=True, tag="fraud")
def list_reviews(query: ReviewQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    if query.partner_id:
        partner_ops.get_partner(s, program.id, query.partner_id)
    rows, nxt = page(Conversion, reviews_query(program.id, query.state, query.partner_id),
                     query.limit, query.cursor, s)
    return listing([review_out(c) for c in rows], nxt)


def _decide(conversion_id: str, decision: str):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        out = review_out(decide(s, program, conversion_id, decision, "api"))  # type: ignore[arg-type]
    return ok(out)


@bp.post("/conversions/<conversion_id>/release")
@operation("POST", "/api/v1/conversions/{conversion_id}/release", "Release a held conversion: "
           "its commission is credited as usual (pending, approved after hold_days)",
           response=ReviewOut, tag="fraud")
def release(conversion_id: str):  # type: ignore[no-untyped-def]
    return _decide(conversion_id, "release")


@bp.post("/conversions/<conversion_id>/reject")
@operation("POST", "/api/v1/conversions/{conversion_id}/reject", "Reject a held conversion: it "
           "stays visible with status rejected and never earns a commission",
           response=ReviewOut, tag="fraud")
def reject(conversion_id: str):  # type: ignore[no-untyped-def]
    return _decide(conversion_id, "reject")
