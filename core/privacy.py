"""Privacy requests from platforms: export what we hold about a customer, or erase it.

Erasing keeps the money (conversions and the ledger stay, so partners' earnings do not change)
but removes what identifies a person: email, the platform's customer id, and the hints that carried
them. Clicks never held personal data: their IP addresses are salted daily hashes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import select

from core.ids import new_id
from core.models import Conversion, Customer, PersonalDataExport

if TYPE_CHECKING:
    from core import events as ev
    from core.ingest import IngestContext


def _customers(ctx: "IngestContext", customer_ids: tuple[str, ...],
               emails: tuple[str, ...]) -> list[Customer]:
    s = ctx.session
    externals = [f"{ctx.origin}:{c}" for c in customer_ids if c]
    found: dict[str, Customer] = {}
    if externals:
        for c in s.exec(select(Customer).where(Customer.program_id == ctx.program.id,
                                               Customer.external_id.in_(externals))):
            found[c.id] = c
    lowered = [e.strip().lower() for e in emails if e]
    if lowered:
        for c in s.exec(select(Customer).where(Customer.program_id == ctx.program.id,
                                               Customer.email.in_(lowered))):
            found[c.id] = c
    return list(found.values())


def export(ctx: "IngestContext", e: "ev.PersonalDataRequest") -> PersonalDataExport:
    s = ctx.session
    data: dict[str, Any] = {"customers": []}
    for cust in _customers(ctx, e.customer_ids, e.emails):
        convs = s.exec(select(Conversion).where(Conversion.customer_id == cust.id)).all()
        data["customers"].append({
            "external_id": cust.external_id, "email": cust.email,
            "conversions": [{"platform": c.platform, "event": c.event,
                             "external_id": c.external_id, "amount": c.amount,
                             "currency": c.currency, "occurred_at": c.occurred_at.isoformat()}
                            for c in convs]})
    row = PersonalDataExport(id=new_id("pdx"), program_id=ctx.program.id,
                             source_id=ctx.source.id if ctx.source else None,
                             request_id=e.request_id, data=data)
    s.add(row)
    return row


def _erase_customer(ctx: "IngestContext", cust: Customer) -> None:
    s = ctx.session
    cust.email = None
    cust.external_id = f"erased:{cust.id}"
    s.add(cust)
    for conv in s.exec(select(Conversion).where(Conversion.customer_id == cust.id)):
        conv.hints = {k: v for k, v in (conv.hints or {}).items() if k in ("click_id", "ref")}
        s.add(conv)


def erase(ctx: "IngestContext", e: "ev.PersonalDataErasure") -> int:
    s = ctx.session
    if e.whole_source:
        ids = {c for c in s.exec(select(Conversion.customer_id).where(
            Conversion.program_id == ctx.program.id, Conversion.origin == ctx.origin,
            Conversion.customer_id.is_not(None)))}
        prefix = f"{ctx.origin}:"
        for c in s.exec(select(Customer).where(Customer.program_id == ctx.program.id,
                                               Customer.external_id.startswith(prefix))):
            ids.add(c.id)
        customers = [s.get(Customer, i) for i in ids]
    else:
        customers = _customers(ctx, e.customer_ids, e.emails)
    for cust in customers:
        if cust is not None:
            _erase_customer(ctx, cust)
    return len(customers)
