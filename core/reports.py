"""Reports: clicks, leads, sales, revenue and commission grouped by partner, tag, campaign,
offer, event, platform, day, week or month, with the previous period beside them.

Clicks come from `click_daily`, a rollup kept exact by `core.rollups`: closed days are summed
once, the current day is counted live from `click`. Conversions are few enough to group directly
(indexed by program and time). Money stays in minor units, in the program's currency; sales in
other currencies are reported apart under `other_currencies`, never added in.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, literal
from sqlmodel import Session, select

from core.models import Conversion, Partner, PartnerTag, Program, Reward
from core.money import round_half_up
from core.rollups import click_counts

GROUPS = ("partner", "tag", "campaign", "offer", "event", "platform", "day", "week", "month")
TIME_GROUPS = ("day", "week", "month")


@dataclass
class Row:
    key: str | None
    label: str
    clicks: int = 0
    unique_clicks: int = 0
    leads: int = 0
    conversions: int = 0
    revenue: int = 0
    commission: int = 0
    conversion_rate: float = 0.0
    earnings_per_click: int = 0
    lead_to_sale_rate: float = 0.0
    other_currencies: dict[str, dict[str, int]] = field(default_factory=dict)

    def finish(self) -> "Row":
        self.conversion_rate = round(self.conversions / self.clicks, 4) if self.clicks else 0.0
        self.earnings_per_click = round_half_up(Decimal(self.commission) / self.clicks) if self.clicks else 0
        self.lead_to_sale_rate = round(self.conversions / self.leads, 4) if self.leads else 0.0
        return self

    def add(self, other: "Row") -> None:
        for name in ("clicks", "unique_clicks", "leads", "conversions", "revenue", "commission"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for cur, vals in other.other_currencies.items():
            mine = self.other_currencies.setdefault(cur, {"revenue": 0, "commission": 0})
            for k, v in vals.items():
                mine[k] = mine.get(k, 0) + v


def _bucket(day: date, group_by: str) -> str:
    if group_by == "week":
        return (day - timedelta(days=day.weekday())).isoformat()  # ISO weeks start on Monday
    if group_by == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


def _day_expr(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def _net_revenue() -> Any:
    """A sale's revenue less the refunded share of it, half-up; reversed sales count nothing."""
    refunded_share = case((Conversion.paid_total > 0,
                           (Conversion.refunded * Conversion.amount + Conversion.paid_total // 2)
                           // Conversion.paid_total), else_=0)
    return case((Conversion.status == "reversed", 0), else_=Conversion.amount - refunded_share)


def _conversion_rows(s: Session, program: Program, group_by: str, start: datetime, end: datetime,
                     partner_id: str | None) -> dict[Any, Row]:
    if group_by in TIME_GROUPS:
        key = _day_expr(s, Conversion.occurred_at)
    elif group_by == "tag":
        key = PartnerTag.tag
    else:
        key = {"partner": Conversion.partner_id, "campaign": Conversion.campaign,
               "offer": Conversion.reward_id, "event": Conversion.event,
               "platform": Conversion.platform}[group_by]
    in_program_currency = Conversion.currency == program.currency
    is_sale = Conversion.kind == "sale"
    q = select(
        key, Conversion.currency,
        func.sum(case((Conversion.kind == "lead", 1), else_=0)),
        func.sum(case((is_sale, 1), else_=0)),
        func.sum(case((is_sale, _net_revenue()), else_=0)),
        func.sum(case((is_sale & ~in_program_currency & Conversion.amount_program.is_not(None),
                       Conversion.amount_program), else_=literal(0))),
        func.sum(case((Conversion.commission_currency == program.currency, Conversion.commission),
                      else_=0)),
        func.sum(case((Conversion.commission_currency != program.currency, Conversion.commission),
                      else_=0)),
    ).where(Conversion.program_id == program.id, Conversion.occurred_at >= start,
            Conversion.occurred_at < end)
    if group_by == "tag":
        q = q.join(PartnerTag, PartnerTag.partner_id == Conversion.partner_id)
    if partner_id:
        q = q.where(Conversion.partner_id == partner_id)
    rows: dict[Any, Row] = {}
    for k, currency, leads, sales, revenue, revenue_program, commission, commission_other in \
            s.exec(q.group_by(key, Conversion.currency)):
        if group_by in TIME_GROUPS:
            k = _bucket(date.fromisoformat(k), group_by)
        row = rows.setdefault(k, Row(key=k, label=""))
        row.leads += int(leads or 0)
        row.conversions += int(sales or 0)
        row.commission += int(commission or 0)
        if currency == program.currency:
            row.revenue += int(revenue or 0)
        else:
            row.revenue += int(revenue_program or 0)
            other = row.other_currencies.setdefault(currency, {"revenue": 0, "commission": 0})
            other["revenue"] += int(revenue or 0)
            other["commission"] += int(commission_other or 0)
    return rows


def _labels(s: Session, program: Program, group_by: str, keys: list[Any]) -> dict[Any, str]:
    ids = [k for k in keys if k]
    if group_by == "partner" and ids:
        return dict(s.exec(select(Partner.id, Partner.name).where(
            Partner.program_id == program.id, Partner.id.in_(ids))).all())
    if group_by == "offer" and ids:
        names = dict(s.exec(select(Reward.id, Reward.name).where(
            Reward.program_id == program.id, Reward.id.in_(ids))).all())
        return {k: v or f"Reward {k}" for k, v in names.items()}
    return {}


def report(s: Session, program: Program, group_by: str, start: datetime, end: datetime,
           partner_id: str | None = None) -> list[Row]:
    """Rows for [start, end), ordered by time for time groups, else by revenue."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    rows = _conversion_rows(s, program, group_by, start, end, partner_id)
    if group_by not in ("offer", "event", "platform"):  # clicks have no offer, event or platform
        for k, (clicks, unique) in click_counts(s, program.id, group_by, start, end, partner_id).items():
            if group_by in TIME_GROUPS:
                k = _bucket(k, group_by)
            row = rows.setdefault(k, Row(key=k, label=""))
            row.clicks += clicks
            row.unique_clicks += unique
    labels = _labels(s, program, group_by, list(rows))
    none_label = {"partner": "Unattributed", "campaign": "No campaign", "offer": "No reward",
                  "tag": "Untagged"}.get(group_by, "—")
    for k, row in rows.items():
        row.label = labels.get(k) or (str(k) if k is not None else none_label)
        row.finish()
    if group_by in TIME_GROUPS:
        return [rows[k] for k in sorted(rows)]
    return sorted(rows.values(), key=lambda r: (-r.revenue, -r.clicks, r.label))


def totals(rows: list[Row]) -> Row:
    total = Row(key=None, label="Total")
    for r in rows:
        total.add(r)
    return total.finish()


def report_with_previous(s: Session, program: Program, group_by: str, start: datetime,
                         end: datetime, partner_id: str | None = None) -> dict[str, Any]:
    """The report, its totals, and the totals of the previous period of the same length.
    Totals are computed without grouping (a partner with two tags would count twice)."""
    rows = report(s, program, group_by, start, end, partner_id)
    span = end - start
    whole = "day" if group_by == "tag" else group_by
    current = totals(report(s, program, whole, start, end, partner_id)) if group_by == "tag" else totals(rows)
    previous = totals(report(s, program, whole, start - span, start, partner_id))
    return {"group_by": group_by, "from": start, "to": end, "currency": program.currency,
            "data": [asdict(r) for r in rows], "totals": asdict(current),
            "previous": {**asdict(previous), "from": start - span, "to": start}}


def parse_period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(timezone.utc)
    start = start or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("from and to need a time zone (e.g. 2026-01-31T00:00:00Z)")
    if start >= end:
        raise ValueError("from must be before to")
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)
