"""Fraud and quality rules: which credited conversions an admin should look at before the
partner is paid.

Each rule is a small module with one `check(case, rules) -> Reason | None`, switched on or off
(and tuned) per program through `Program.fraud_rules` (`core.fraud.settings`). `screen` runs the
enabled rules and returns every reason that fired. A conversion with reasons is put on hold
(`core.fraud.review`): it stays visible everywhere with its reasons, earns nothing until an admin
releases it, and earns nothing ever if the admin rejects it. No rule ever drops a conversion.

The rules, in the order their reasons are shown:

- `self_referral`: the customer is the partner (same email, or the same card as an order the
  partner placed under their own email);
- `test_orders`: the customer's email is at the partner's own (non-public) domain;
- `disposable_email`: the customer's email is at a throwaway-inbox domain;
- `click_flood`: the winning click's visitor or device sent many clicks for the partner just
  before the conversion;
- `fast_conversion`: the conversion came faster after the winning click than a person can buy.
"""
from __future__ import annotations

from core.fraud import click_flood, disposable_email, fast_conversion, self_referral, test_orders
from core.fraud.case import Case, Reason
from core.schemas import FraudRules

RULES = (self_referral, test_orders, disposable_email, click_flood, fast_conversion)


def screen(case: Case, rules: FraudRules) -> list[Reason]:
    """The reasons to hold this credit, one per rule that fired (empty: nothing to review).
    Each rule checks its own switch, so a switched-off rule never runs its queries."""
    reasons = []
    for rule in RULES:
        if getattr(rules, rule.NAME):
            reason = rule.check(case, rules)
            if reason is not None:
                reasons.append(reason)
    return reasons


__all__ = ["Case", "Reason", "RULES", "screen"]
