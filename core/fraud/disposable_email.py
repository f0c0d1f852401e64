"""Disposable email: the customer signed up with a throwaway inbox (mailinator.com and the
thousands like it), as fake leads and sign-ups made to earn lead rewards do. The domains come
from the maintained `disposable-email-domains` list, updated with the package."""
from __future__ import annotations

from core.fraud.case import Case, Reason
from core.fraud.emails import disposable_domain
from core.schemas import FraudRules

NAME = "disposable_email"


def check(case: Case, rules: FraudRules) -> Reason | None:
    domain = disposable_domain(case.customer_email)
    if domain is None:
        return None
    return Reason(NAME, f"The customer's email is at {domain}, a disposable (throwaway) "
                        f"email domain.")
