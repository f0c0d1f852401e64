"""Choosing the partner who gets credit. Pure: no database, no clock.

Order of evidence: an inherited attribution (a renewal's subscription, a customer already
credited) wins; then a promo code on the order when the program gives codes priority; then the
clicks and refs inside the attribution window, the last (or first) under the program's model; then
a promo code without priority. Every answer says why, for the API and the partner's page.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Clocks of the platform and of the visitor's browser differ a little.
CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class Touch:
    kind: str  # click | ref | promo_code
    partner_id: str
    at: datetime
    click_id: str | None = None
    code: str | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class Rules:
    model: str = "last_touch"
    window_days: int = 30
    promo_code_priority: bool = True


@dataclass(frozen=True)
class Inherited:
    """An attribution fixed earlier: `touch` is "subscription" or "customer"."""

    partner_id: str
    touch: str
    reason: str
    click_id: str | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class Attribution:
    partner_id: str | None
    model: str
    touch: str | None
    reason: str
    click_id: str | None = None
    evidence: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "touch": self.touch, "click_id": self.click_id,
                "reason": self.reason, "evidence": self.evidence}


def attribute(at: datetime, touches: list[Touch], rules: Rules,
              inherited: Inherited | None = None) -> Attribution:
    """Decide who gets credit for a conversion at `at` given the evidence."""
    if inherited is not None:
        return Attribution(inherited.partner_id, rules.model, inherited.touch, inherited.reason,
                           inherited.click_id, inherited.evidence)
    codes = [t for t in touches if t.kind == "promo_code"]
    if codes and rules.promo_code_priority:
        return _from(codes[-1], rules, f"promo code {codes[-1].code} on the order "
                                       "(promo codes have priority)")
    start = at - timedelta(days=rules.window_days)
    visits = [t for t in touches if t.kind != "promo_code" and start <= t.at <= at + CLOCK_SKEW]
    if visits:
        visits.sort(key=lambda t: t.at)
        chosen = visits[-1] if rules.model == "last_touch" else visits[0]
        which = "last" if rules.model == "last_touch" else "first"
        return _from(chosen, rules, f"{which} {chosen.kind} of {len(visits)} within "
                                    f"{rules.window_days} days")
    if codes:
        return _from(codes[-1], rules, f"promo code {codes[-1].code} on the order")
    stale = [t for t in touches if t.kind != "promo_code"]
    reason = (f"{len(stale)} touch(es), none within the {rules.window_days}-day window"
              if stale else "no referral evidence")
    return Attribution(None, rules.model, None, reason)


def _from(t: Touch, rules: Rules, reason: str) -> Attribution:
    return Attribution(t.partner_id, rules.model, t.kind, reason, t.click_id, t.evidence)
