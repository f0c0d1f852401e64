"""Reading conversions for the API and pages."""
from __future__ import annotations

from typing import Any

from sqlmodel import select

from core.models import Conversion, Customer
from core.schemas import AttributionOut, ConversionOut, ConversionQuery


def conversions_query(program_id: str, q: ConversionQuery) -> Any:
    stmt = select(Conversion).where(Conversion.program_id == program_id)
    if q.partner_id:
        stmt = stmt.where(Conversion.partner_id == q.partner_id)
    if q.status:
        stmt = stmt.where(Conversion.status == q.status)
    if q.from_:
        stmt = stmt.where(Conversion.occurred_at >= q.from_)
    if q.to:
        stmt = stmt.where(Conversion.occurred_at < q.to)
    return stmt


def customer_ref(external_id: str | None) -> str | None:
    """The platform's own customer id (core stores it namespaced by origin)."""
    if not external_id:
        return None
    rest = external_id.split(":", 1)[-1]
    return None if rest.startswith("email:") else rest


def conversion_out(c: Conversion, customer: Customer | None = None) -> ConversionOut:
    return ConversionOut(
        id=c.id, platform=c.platform, event=c.event, external_id=c.external_id,
        customer_id=c.customer_id, subscription_id=c.subscription_id, renewal=c.renewal,
        amount=c.amount, currency=c.currency, refunded=c.refunded, partner_id=c.partner_id,
        status=c.status, commission=c.commission,
        commission_currency=c.commission_currency or c.currency, reward_id=c.reward_id,
        attribution=AttributionOut(**c.attribution) if c.attribution else None,
        occurred_at=c.occurred_at)
