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

from sqlalchemy import case, func
from sqlmodel import Session, select

from core.models import Click, ClickDaily, Conversion, Partner, PartnerTag, Program, Reward
from core.money import Money, round_half_up
from core.rollups import click_counts, closed_days, ensure_rolled

GROUPS = ("partner", "tag", "campaign", "offer", "event", "platform", "day", "week", "month")
TIME_GROUPS = ("day", "week", "month")
MANY_IDS = 200


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


@dataclass(frozen=True)
class Filters:
    """Narrow a report to one partner, the partners of one tag, one campaign or one platform.
    Clicks carry no platform, so a platform filter reports no clicks (`clicks_known` is False)."""

    partner_id: str | None = None
    tag: str | None = None
    campaign: str | None = None
    platform: str | None = None

    @property
    def clicks_known(self) -> bool:
        return not self.platform

    def conversions(self, q: Any) -> Any:
        if self.partner_id:
            q = q.where(Conversion.partner_id == self.partner_id)
        if self.tag:
            q = q.where(Conversion.partner_id.in_(
                select(PartnerTag.partner_id).where(PartnerTag.tag == self.tag)))
        if self.campaign:
            q = q.where(Conversion.campaign == self.campaign)
        if self.platform:
            q = q.where(Conversion.platform == self.platform)
        return q


def _conversion_rows(s: Session, program: Program, group_by: str, start: datetime, end: datetime,
                     filters: "Filters") -> dict[Any, Row]:
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
    # Aggregate FILTERs rather than SUM(CASE ...): each row is tested once per condition instead
    # of building a value for every aggregate; the conversion sum is most of a report's time.
    q = select(
        key, Conversion.currency,
        func.count().filter(Conversion.kind == "lead"),
        func.count().filter(is_sale),
        func.sum(_net_revenue()).filter(is_sale),
        func.sum(Conversion.amount_program).filter(is_sale & ~in_program_currency),
        func.sum(Conversion.commission).filter(Conversion.commission_currency == program.currency),
        func.sum(Conversion.commission).filter(Conversion.commission_currency != program.currency),
    ).where(Conversion.program_id == program.id, Conversion.occurred_at >= start,
            Conversion.occurred_at < end)
    if group_by == "tag":
        q = q.join(PartnerTag, PartnerTag.partner_id == Conversion.partner_id)
    q = filters.conversions(q)
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
        q = select(Partner.id, Partner.name).where(Partner.program_id == program.id)
        if len(ids) <= MANY_IDS:
            q = q.where(Partner.id.in_(ids))
        # Else every name of the program: binding a thousand ids costs more than reading them.
        return dict(s.exec(q).all())
    if group_by == "offer" and ids:
        names = dict(s.exec(select(Reward.id, Reward.name).where(
            Reward.program_id == program.id, Reward.id.in_(ids))).all())
        return {k: v or f"Reward {k}" for k, v in names.items()}
    return {}


def _click_counts(s: Session, program: Program, group_by: str, start: datetime, end: datetime,
                  f: Filters) -> dict[Any, tuple[int, int]]:
    """Clicks from the rollups; with a tag or campaign filter, the same rollups narrowed."""
    if not f.clicks_known:
        return {}
    if not f.tag and not f.campaign:
        return click_counts(s, program.id, group_by, start, end, f.partner_id)
    days, windows = closed_days(start, end, datetime.now(timezone.utc).date())
    ensure_rolled(s, program.id, days)
    tagged = (select(PartnerTag.partner_id).where(PartnerTag.program_id == program.id,
                                                  PartnerTag.tag == f.tag)) if f.tag else None
    out: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    with s.get_bind().connect() as conn:
        if days:
            key = {"partner": ClickDaily.partner_id, "campaign": ClickDaily.campaign,
                   "tag": PartnerTag.tag}.get(group_by, ClickDaily.day)
            q = select(key, func.sum(ClickDaily.clicks), func.sum(ClickDaily.unique_clicks)).where(
                ClickDaily.program_id == program.id, ClickDaily.day >= days[0].isoformat(),
                ClickDaily.day <= days[-1].isoformat())
            if group_by == "tag":
                q = q.join(PartnerTag, PartnerTag.partner_id == ClickDaily.partner_id)
            if f.partner_id:
                q = q.where(ClickDaily.partner_id == f.partner_id)
            if tagged is not None:
                q = q.where(ClickDaily.partner_id.in_(tagged))
            if f.campaign:
                q = q.where(ClickDaily.campaign == f.campaign)
            for k, n, u in conn.execute(q.group_by(key)):
                if group_by in TIME_GROUPS:
                    k = date.fromisoformat(k)
                out[k or None][0] += int(n)
                out[k or None][1] += int(u or 0)
        for lo, hi in windows:
            if group_by in TIME_GROUPS:
                key = _day_expr(s, Click.created_at)
            else:
                key = {"partner": Click.partner_id, "tag": PartnerTag.tag,
                       "campaign": func.coalesce(Click.campaign, Click.utm_campaign)}[group_by]
            q = select(key, func.count(), func.sum(case((Click.is_unique, 1), else_=0))).where(
                Click.program_id == program.id, Click.created_at >= lo, Click.created_at < hi,
                Click.is_bot == False)  # noqa: E712
            if group_by == "tag":
                q = q.join(PartnerTag, PartnerTag.partner_id == Click.partner_id)
            if f.partner_id:
                q = q.where(Click.partner_id == f.partner_id)
            if tagged is not None:
                q = q.where(Click.partner_id.in_(tagged))
            if f.campaign:
                q = q.where(func.coalesce(Click.campaign, Click.utm_campaign) == f.campaign)
            for k, n, u in conn.execute(q.group_by(key)):
                if group_by in TIME_GROUPS:
                    k = date.fromisoformat(k)
                out[k or None][0] += int(n)
                out[k or None][1] += int(u or 0)
    return {k: (v[0], v[1]) for k, v in out.items()}


def report(s: Session, program: Program, group_by: str, start: datetime, end: datetime,
           partner_id: str | None = None, filters: Filters | None = None) -> list[Row]:
    """Rows for [start, end), ordered by time for time groups, else by revenue."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    f = filters or Filters()
    if partner_id:
        f = Filters(partner_id=partner_id, tag=f.tag, campaign=f.campaign, platform=f.platform)
    rows = _conversion_rows(s, program, group_by, start, end, f)
    if group_by not in ("offer", "event", "platform"):  # clicks have no offer, event or platform
        for k, (clicks, unique) in _click_counts(s, program, group_by, start, end, f).items():
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
                         end: datetime, partner_id: str | None = None,
                         filters: Filters | None = None) -> dict[str, Any]:
    """The report, its totals, and the totals of the previous period of the same length.
    Totals are computed without grouping (a partner with two tags would count twice)."""
    rows = report(s, program, group_by, start, end, partner_id, filters)
    span = end - start
    whole = "day" if group_by == "tag" else group_by
    current = (totals(report(s, program, whole, start, end, partner_id, filters))
               if group_by == "tag" else totals(rows))
    previous = totals(report(s, program, whole, start - span, start, partner_id, filters))
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


# --- exports ---------------------------------------------------------------------------------------

CSV_COLUMNS = ("key", "label", "clicks", "unique_clicks", "leads", "conversions",
               "revenue_minor_units", "revenue", "commission_minor_units", "commission", "currency",
               "conversion_rate", "earnings_per_click_minor_units", "earnings_per_click",
               "lead_to_sale_rate")


def _major(amount: int, currency: str) -> str:
    """`1,234.50`: the amount in major units, without the code (the `currency` column has it)."""
    return Money(int(amount), currency).format().rsplit(" ", 1)[0]


def report_csv(out: dict[str, Any]) -> str:
    """The report as CSV: amounts both in minor units and formatted, the totals row last."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    cur = out["currency"]
    for row in out["data"] + [out["totals"]]:
        writer.writerow([row["key"] or "", row["label"], row["clicks"], row["unique_clicks"],
                         row["leads"], row["conversions"], row["revenue"],
                         _major(row["revenue"], cur), row["commission"],
                         _major(row["commission"], cur), cur, row["conversion_rate"],
                         row["earnings_per_click"], _major(row["earnings_per_click"], cur),
                         row["lead_to_sale_rate"]])
    return buf.getvalue()


CONVERSION_COLUMNS = ("id", "occurred_at", "platform", "event", "kind", "external_id",
                      "partner_id", "partner", "status", "amount_minor_units", "amount",
                      "refunded_minor_units", "currency", "commission_minor_units", "commission",
                      "commission_currency", "campaign", "attribution_touch",
                      "attribution_reason")


def conversions_csv(s: Session, program_id: str, stmt: Any, limit: int = 100_000) -> str:
    """Conversions selected by `stmt` (already scoped to the program), oldest first."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CONVERSION_COLUMNS)
    names = dict(s.exec(select(Partner.id, Partner.name).where(Partner.program_id == program_id)).all())
    for c in s.exec(stmt.order_by(Conversion.occurred_at, Conversion.id).limit(limit)):
        att = c.attribution or {}
        ccur = c.commission_currency or c.currency
        writer.writerow([c.id, c.occurred_at.isoformat(), c.platform, c.event, c.kind,
                         c.external_id, c.partner_id or "", names.get(c.partner_id, ""), c.status,
                         c.amount, _major(c.amount, c.currency), c.refunded, c.currency,
                         c.commission, _major(c.commission, ccur), ccur, c.campaign or "",
                         att.get("touch") or "", att.get("reason") or ""])
    return buf.getvalue()


# --- what the pages list ---------------------------------------------------------------------------

def filter_choices(s: Session, program_id: str) -> dict[str, list[str]]:
    """Tags, campaigns and platforms that exist in the program, for the filter menus."""
    tags = s.exec(select(PartnerTag.tag).where(PartnerTag.program_id == program_id)
                  .distinct().order_by(PartnerTag.tag)).all()
    campaigns = set(s.exec(select(Conversion.campaign).where(
        Conversion.program_id == program_id, Conversion.campaign.is_not(None)).distinct()).all())
    from core.models import Link

    campaigns |= set(s.exec(select(Link.campaign).where(
        Link.program_id == program_id, Link.campaign.is_not(None)).distinct()).all())
    platforms = s.exec(select(Conversion.platform).where(Conversion.program_id == program_id)
                       .distinct().order_by(Conversion.platform)).all()
    return {"tags": list(tags), "campaigns": sorted(c for c in campaigns if c),
            "platforms": list(platforms)}


def recent_conversions(s: Session, program_id: str, limit: int = 20,
                       partner_id: str | None = None, since: datetime | None = None) -> list[Conversion]:
    """The latest conversions recorded (by when we learnt of them), newest first."""
    q = select(Conversion).where(Conversion.program_id == program_id)
    if partner_id:
        q = q.where(Conversion.partner_id == partner_id)
    if since is not None:
        q = q.where(Conversion.created_at > since)
    return list(s.exec(q.order_by(Conversion.created_at.desc(), Conversion.id.desc()).limit(limit)))


def clicks_since(s: Session, program_id: str, since: datetime, partner_id: str | None = None) -> int:
    """Human clicks recorded after `since` (the live counter)."""
    q = select(func.count()).select_from(Click).where(
        Click.program_id == program_id, Click.created_at > since, Click.is_bot == False)  # noqa: E712
    if partner_id:
        q = q.where(Click.partner_id == partner_id)
    return int(s.exec(q).one())


def recent_clicks(s: Session, program_id: str, partner_id: str, limit: int = 20) -> list[Click]:
    return list(s.exec(select(Click).where(Click.program_id == program_id,
                                           Click.partner_id == partner_id)
                       .order_by(Click.created_at.desc()).limit(limit)))


def daily_series(rows: list[Row], start: datetime, end: datetime) -> list[Row]:
    """Day rows for every day of [start, end), empty days included (for charts)."""
    by_day = {r.key: r for r in rows}
    out = []
    d = start.date()
    while datetime.combine(d, datetime.min.time(), tzinfo=timezone.utc) < end:
        out.append(by_day.get(d.isoformat()) or Row(key=d.isoformat(), label=d.isoformat()))
        d += timedelta(days=1)
    return out
