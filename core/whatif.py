"""What-if: replay the stored touches under another attribution model and window, and compare
each partner's commission today with what it would be. Reads only; changes nothing.

Everything is loaded in a few bulk queries and replayed in memory in time order, with the same
`core.attribution.attribute` and `core.commissions` functions the live path uses, including the
customer and subscription locks, so the only difference is the model and window.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from core.attribution import CLOCK_SKEW, Inherited, Rules, Touch, attribute
from core.commissions import Rule, after_refunds, base_commission, in_duration, pick_rule
from core.models import Click, Conversion, Partner, PartnerTag, Program, PromoCode, Reward
from core.models import Touch as TouchRow


@dataclass
class PartnerDelta:
    partner_id: str
    name: str
    current: int
    alternative: int

    @property
    def difference(self) -> int:
        return self.alternative - self.current


def replay(s: Session, program: Program, model: str, window_days: int,
           start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    rules = Rules(model, window_days, program.promo_code_priority)
    reward_rules = [Rule(r.id, r.event, r.type, Decimal(r.value), r.duration_months, r.partner_tag,
                         r.created_at)
                    for r in s.exec(select(Reward).where(Reward.program_id == program.id))]
    tags: dict[str, set[str]] = defaultdict(set)
    for pid, tag in s.exec(select(PartnerTag.partner_id, PartnerTag.tag)
                           .where(PartnerTag.program_id == program.id)):
        tags[pid].add(tag)
    names = dict(s.exec(select(Partner.id, Partner.name).where(Partner.program_id == program.id)).all())
    partner_by_key = dict(s.exec(select(Partner.key, Partner.id).where(Partner.program_id == program.id)).all())
    codes = dict(s.exec(select(PromoCode.code_lower, PromoCode.partner_id)
                        .where(PromoCode.program_id == program.id)).all())
    touches: dict[str, list[Touch]] = defaultdict(list)
    for r in s.exec(select(TouchRow.customer_id, TouchRow.kind, TouchRow.partner_id, TouchRow.at,
                           TouchRow.click_id).where(TouchRow.program_id == program.id,
                                                    TouchRow.kind != "promo_code")):
        touches[r[0]].append(Touch(r[1], r[2], r[3], r[4]))
    q = select(Conversion).where(Conversion.program_id == program.id)
    convs = list(s.exec(q.order_by(Conversion.occurred_at, Conversion.id)))
    hinted_clicks = {c.hints.get("click_id") for c in convs if c.hints and c.hints.get("click_id")}
    clicks: dict[str, tuple[str, datetime]] = {}
    ids = [i for i in hinted_clicks if i]
    for i in range(0, len(ids), 500):
        for cid, pid, at in s.exec(select(Click.id, Click.partner_id, Click.created_at)
                                   .where(Click.id.in_(ids[i:i + 500]))):
            clicks[cid] = (pid, at)

    customer_lock: dict[str, str] = {}
    subscription_lock: dict[tuple[str, str], str] = {}
    first_payment: dict[tuple[str, str], datetime] = {}
    current: dict[tuple[str, str], int] = defaultdict(int)
    alternative: dict[tuple[str, str], int] = defaultdict(int)
    changed = 0
    for c in convs:
        sub_key = (c.origin, c.subscription_id) if c.subscription_id else None
        if sub_key and sub_key not in first_payment:
            first_payment[sub_key] = c.occurred_at
        inherited = None
        if sub_key and sub_key in subscription_lock:
            inherited = Inherited(subscription_lock[sub_key], "subscription", "")
        elif c.customer_id and c.customer_id in customer_lock:
            inherited = Inherited(customer_lock[c.customer_id], "customer", "")
        cands = [t for t in touches.get(c.customer_id or "", []) if t.at <= c.occurred_at + CLOCK_SKEW]
        hints = c.hints or {}
        if hints.get("click_id") in clicks:
            pid, at = clicks[hints["click_id"]]
            cands.append(Touch("click", pid, at, hints["click_id"]))
        if hints.get("ref") in partner_by_key:
            cands.append(Touch("ref", partner_by_key[hints["ref"]], c.occurred_at))
        for code in hints.get("promo_codes") or []:
            if code.lower() in codes:
                cands.append(Touch("promo_code", codes[code.lower()], c.occurred_at, code=code))
        att = attribute(c.occurred_at, cands, rules, inherited)
        pid = att.partner_id
        if pid and c.customer_id and c.customer_id not in customer_lock:
            customer_lock[c.customer_id] = pid
        if pid and sub_key and sub_key not in subscription_lock:
            subscription_lock[sub_key] = pid
        in_range = (start is None or c.occurred_at >= start) and (end is None or c.occurred_at < end)
        if not in_range:
            continue
        if c.partner_id:
            current[(c.partner_id, c.commission_currency)] += c.commission
        if pid is None:
            if c.partner_id is not None:
                changed += 1
            continue
        if pid == c.partner_id:
            alternative[(pid, c.commission_currency)] += c.commission
            continue
        changed += 1
        amount, currency = _commission(c, pid, program, reward_rules, tags,
                                       first_payment.get(sub_key) if sub_key else None)
        alternative[(pid, currency)] += amount
    rows = []
    for key in sorted(set(current) | set(alternative)):
        pid, currency = key
        rows.append({"partner_id": pid, "name": names.get(pid, pid), "currency": currency,
                     "current": current.get(key, 0), "alternative": alternative.get(key, 0),
                     "difference": alternative.get(key, 0) - current.get(key, 0)})
    rows.sort(key=lambda r: (-abs(r["difference"]), r["name"]))
    return {"model": model, "attribution_window_days": window_days,
            "conversions": len(convs), "conversions_changing_partner": changed, "partners": rows}


def _commission(c: Conversion, partner_id: str, program: Program, rules: list[Rule],
                tags: dict[str, set[str]], first_at: datetime | None) -> tuple[int, str]:
    """What the conversion would earn for another partner, after the same adjustments."""
    rule = pick_rule(rules, c.kind, c.event, tags.get(partner_id, set()))
    if rule is None or not in_duration(rule, c.renewal, first_at, c.occurred_at):
        return 0, program.currency
    if rule.type == "flat":
        base, currency = base_commission(rule, 0), program.currency
    elif c.currency == program.currency:
        base, currency = base_commission(rule, c.amount), c.currency
    elif c.amount_program is not None:
        base, currency = base_commission(rule, c.amount_program), program.currency
    else:
        base, currency = base_commission(rule, c.amount), c.currency
    if c.status in ("reversed", "held"):
        return 0, currency
    return after_refunds(base, c.paid_total or c.amount, c.refunded), currency
