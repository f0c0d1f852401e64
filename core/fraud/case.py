"""What a rule looks at: one conversion about to be credited to one partner.

Everything is read lazily and at most once, so a program with a rule switched off never pays
for that rule's queries, and two rules reading the same row share one read.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlmodel import Session

from core.models import Click, Conversion, Customer, Partner, Program

if TYPE_CHECKING:
    from core.batch_reads import BatchReads


@dataclass(frozen=True)
class Reason:
    """Why a rule held a conversion: the rule's name and a sentence for the admin."""

    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message}


class Case:
    """A conversion and the partner it is about to be credited to. `click_id` is the click that
    won the attribution, when a click won it (None for promo codes, refs and inherited credit:
    the click rules then have nothing to judge)."""

    def __init__(self, session: Session, program: Program, conversion: Conversion,
                 partner_id: str, click_id: str | None, customer: Customer | None = None,
                 reads: BatchReads | None = None) -> None:
        self.session = session
        # What the batch being applied fetched (core.batch_reads), when it is one.
        self.reads = reads
        # The conversion's customer when the caller holds it: one created in this transaction
        # is not written yet, so no query would find it.
        self._customer = customer
        self.program = program
        self.conversion = conversion
        self.partner_id = partner_id
        self.click_id = click_id

    @cached_property
    def partner(self) -> Partner | None:
        partner = self.session.get(Partner, self.partner_id)
        return partner if partner is not None and partner.program_id == self.program.id else None

    @cached_property
    def customer_email(self) -> str | None:
        """The customer's email as the platform gave it (lower-cased by core.ingest)."""
        if self.conversion.customer_id is None:
            return None
        customer = self._customer if self._customer is not None and \
            self._customer.id == self.conversion.customer_id else \
            self.session.get(Customer, self.conversion.customer_id)
        return customer.email if customer is not None and customer.email else None

    @cached_property
    def click(self) -> Click | None:
        if self.click_id is None:
            return None
        click = self.session.get(Click, self.click_id)
        return click if click is not None and click.program_id == self.program.id else None
