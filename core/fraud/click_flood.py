"""Click flood: the winning click's browser or device sent many clicks for the same partner in
a short time before the conversion, as click-spamming scripts do to catch organic sales.

Counted per visitor (`Click.visitor_id`, the browser's chain of clicks) and per device
fingerprint (`Click.ip_hash`: IP address and user agent, salted per day; raw addresses are never
stored), over `click_flood_window_minutes` up to the conversion, bots included. The higher count
is compared with `click_flood_max_clicks`. Only clicks before the conversion count, so the answer
does not change with when the conversion arrives.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func
from sqlmodel import select

from core.fraud.case import Case, Reason
from core.models import Click
from core.schemas import FraudRules

NAME = "click_flood"


def _count(column: Any, value: str) -> Any:
    return select(func.count()).select_from(Click).where(
        Click.partner_id == bindparam("partner_id"), column == bindparam(value),
        Click.created_at >= bindparam("since"), Click.created_at <= bindparam("until")
    ).scalar_subquery()


# Built once: both counts in one statement (each on its own index), one round trip per credited
# sale, and no statement to build and key again for every sale.
_BOTH = select(_count(Click.visitor_id, "visitor_id"), _count(Click.ip_hash, "ip_hash"))


def check(case: Case, rules: FraudRules) -> Reason | None:
    click = case.click
    if click is None:
        return None
    until = case.conversion.occurred_at
    since = until - timedelta(minutes=rules.click_flood_window_minutes)
    # A click without a device hash counts 0 by device (`ip_hash = NULL` matches nothing).
    flood = case.reads.flood if case.reads is not None else None
    counted = flood.counts(case.partner_id, click.visitor_id, click.ip_hash, since, until) \
        if flood is not None else None
    by_visitor, by_device = counted or case.session.exec(_BOTH, params={
        "partner_id": case.partner_id, "visitor_id": click.visitor_id, "ip_hash": click.ip_hash,
        "since": since, "until": until}).one()
    where, clicks = max([("one visitor", by_visitor), ("one device and network address", by_device)],
                        key=lambda f: f[1])
    if clicks < rules.click_flood_max_clicks:
        return None
    return Reason(NAME, f"{clicks} clicks for this partner from {where} in the "
                        f"{rules.click_flood_window_minutes} minutes before the conversion "
                        f"({rules.click_flood_max_clicks} or more count as a flood).")
