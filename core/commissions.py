"""What a conversion earns. Pure functions over plain values.

A reward rule applies to an event (`sale`, `lead`, or a custom name) and optionally to partners
with one tag; the most specific rule wins (tag and exact event name beat generic ones, then the
newest). Recurring rewards pay on subscription payments within `duration_months` of the first
(None: for ever; 0: the first payment only). Amounts are integer minor units, rounded half-up.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.money import percent_of, round_half_up


@dataclass(frozen=True)
class Rule:
    id: str
    event: str
    type: str  # percent | flat
    value: Decimal
    duration_months: int | None
    partner_tag: str | None
    created_at: datetime


def _matches_event(rule_event: str, kind: str, event: str) -> int:
    """0: no; 1: the generic kind ("sale"/"lead"); 2: the exact event name."""
    if rule_event == event:
        return 2
    if rule_event == kind:
        return 1
    return 0


def pick_rule(rules: list[Rule], kind: str, event: str, tags: set[str]) -> Rule | None:
    best: tuple[int, datetime] | None = None
    chosen = None
    for rule in rules:
        ev = _matches_event(rule.event, kind, event)
        if not ev or (rule.partner_tag is not None and rule.partner_tag not in tags):
            continue
        score = (ev + (4 if rule.partner_tag else 0), rule.created_at)
        if best is None or score > best:
            best, chosen = score, rule
    return chosen


def months_between(start: datetime, end: datetime) -> int:
    """Whole calendar months from start to end (Jan 31 -> Feb 28 is 0, -> Mar 1 is 1)."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if (end.day, end.time()) < (start.day, start.time()):
        months -= 1
    return months


def in_duration(rule: Rule, renewal: bool, first_payment_at: datetime | None,
                at: datetime) -> bool:
    if rule.duration_months is None:
        return True
    if not renewal:
        return True
    if rule.duration_months == 0 or first_payment_at is None:
        return False
    return months_between(first_payment_at, at) < rule.duration_months


def base_commission(rule: Rule, amount: int) -> int:
    """The commission on the full amount (percent of it, or the flat value)."""
    if rule.type == "percent":
        return percent_of(amount, rule.value)
    return int(rule.value)


def after_refunds(base: int, paid_total: int, refunded: int) -> int:
    """What remains of `base` once `refunded` of `paid_total` went back: proportional, half-up,
    so a partial refund never voids the whole commission."""
    if paid_total <= 0:
        return base if refunded <= 0 else 0
    refunded = max(0, min(refunded, paid_total))
    return round_half_up(Decimal(base) * Decimal(paid_total - refunded) / Decimal(paid_total))
