"""Self-referral: the partner bought through their own link or code.

Reasons never quote the customer's address (only the partner's own and a domain): they are kept
on the conversion, and a customer's erasure request must not leave their email behind there.

Fires when the customer's email delivers to the partner's own mailbox (`core.fraud.emails`:
case, `+tags` and Gmail's dots ignored), or when the order was paid with the same card (the
platform's payment fingerprint) as an earlier order whose customer email was the partner's own:
a partner who once bought as themselves and then again under another address is still caught.
"""
from __future__ import annotations

from sqlmodel import select

from core.fraud.case import Case, Reason
from core.fraud.emails import mailbox
from core.models import Conversion, Customer
from core.schemas import FraudRules

NAME = "self_referral"
MAX_SAME_CARD = 50  # earlier orders with the same card looked at; one match is enough


def check(case: Case, rules: FraudRules) -> Reason | None:
    partner = case.partner
    own = mailbox(partner.email) if partner is not None else None
    if partner is None or own is None:
        return None
    if mailbox(case.customer_email) == own:
        return Reason(NAME, f"The customer's email is the partner's own address "
                            f"({partner.email}).")
    fingerprint = case.conversion.payment_fingerprint
    if fingerprint:
        rows = case.session.exec(
            select(Conversion.external_id, Customer.email)
            .join(Customer, Customer.id == Conversion.customer_id)
            .where(Conversion.program_id == case.program.id,
                   Conversion.payment_fingerprint == fingerprint,
                   Conversion.id != case.conversion.id)
            .limit(MAX_SAME_CARD)).all()
        for external_id, email in rows:
            if mailbox(email) == own:
                return Reason(NAME, f"Paid with the same card as order {external_id}, which the "
                                    f"partner placed under their own email ({partner.email}).")
    return None
