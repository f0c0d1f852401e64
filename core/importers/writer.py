"""Apply imported records to a program, idempotently: the same file twice changes nothing, and a
newer export of the same commissions moves them on (pending -> approved -> paid, or reversed).

- Partners are matched by email; a new one gets the export's referral code as its key (so the
  links partners already share keep working with `?ref=`/`?via=`), its promo codes and its group
  as a tag. A partner that already exists keeps its key.
- Customers become `Customer` rows credited to their partner, found by `core.ingest.customer_for`
  under a namespace: `import:<product>` by default, or a source's id (`--source`) so that the
  billing platform's next payment finds the customer by its own id and the renewal inherits
  the partner (customers are also found by email, for payments that only carry that).
- Commissions become `Conversion` rows with origin `import:<product>` and the export's commission
  id as external id (the unique key that makes a second import a no-op), credited with touch
  `import`. Their money goes through the append-only ledger: `core.ledger.reconcile` posts the
  earned amount (or its reversal), then the entries `pending -> approved -> paid` that the export's
  status calls for. A clawback (a negative commission) is taken from `approved`, netted by the
  next payout, as the ledger does for refunds after a payout.

Nothing here commits: the caller runs one transaction per file and rolls it back on any error.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from core.errors import ApiError, describe_validation_error
from core.ids import new_id
from core.importers.common import (
    Imported, ImportedCommission, ImportedCustomer, ImportedPartner, ImportFailed, PartnerRef,
)
from core.ingest import IngestContext, customer_for
from core.ledger import conversion_balances, reconcile, status_of_earning
from core.models import (
    Conversion, Customer, LedgerEntry, Partner, PartnerTag, Program, PromoCode, Touch, utcnow,
)
from core.partners import create_partner, create_promo_code
from core.schemas import PartnerIn, PromoCodeIn


@dataclass
class Result:
    """What an import did, by record. `unchanged` counts records already imported as they are."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


class Writer:
    """Applies one file's records for one program in the caller's session."""

    def __init__(self, s: Session, program: Program, product: str, title: str,
                 customer_namespace: str | None = None) -> None:
        self.s, self.program, self.product, self.title = s, program, product, title
        self.origin = f"import:{product}"
        self.customers = IngestContext(session=s, program=program,
                                       origin=customer_namespace or self.origin, platform=product)
        self.result = Result()
        # Partners by email and by key, read once per file (a file names the same few partners
        # on thousands of rows); filled as partners are found or created.
        self._emails: dict[str, Partner | None] = {}
        self._keys: dict[str, Partner | None] = {}

    def apply(self, items: Iterable[Imported], on_row: Callable[[], Any] | None = None) -> Result:
        handlers: dict[type, Callable[[Any], None]] = {
            ImportedPartner: self.partner, ImportedCustomer: self.customer,
            ImportedCommission: self.commission}
        for item in items:
            handlers[type(item)](item)
            self.s.flush()
            if on_row is not None:
                on_row()
        return self.result

    # --- partners --------------------------------------------------------------------------------

    def _by_email(self, email: str) -> Partner | None:
        email = email.lower()
        if self._emails.get(email) is None:
            self._emails[email] = self.s.exec(
                select(Partner).where(Partner.program_id == self.program.id,
                                      Partner.email == email)
                .order_by(Partner.created_at)).first()  # type: ignore[arg-type]
        return self._emails[email]

    def _by_key(self, key: str) -> Partner | None:
        if self._keys.get(key) is None:
            self._keys[key] = self.s.exec(select(Partner).where(
                Partner.program_id == self.program.id, Partner.key == key)).first()
        return self._keys[key]

    def partner(self, item: ImportedPartner) -> None:
        partner = self._by_email(item.email)
        created = changed = False
        if partner is None:
            if item.key and (other := self._by_key(item.key)) is not None:
                raise ImportFailed(f"the referral code {item.key!r} already belongs to partner "
                                   f"{other.email}", item.row, item.columns.get("key"))
            try:
                data = PartnerIn(name=item.name[:200], email=item.email, key=item.key,
                                 tags=list(item.tags))
                partner = create_partner(self.s, self.program, data)
            except ValidationError as exc:
                field_name = str(exc.errors()[0]["loc"][0]) if exc.errors() else ""
                raise ImportFailed(describe_validation_error(exc), item.row,
                                   item.columns.get(field_name)) from None
            except ApiError as exc:
                raise ImportFailed(exc.message, item.row, item.columns.get("key")) from None
            if item.created_at is not None:
                partner.created_at = item.created_at
                self.s.add(partner)
            created = True
        else:
            if item.key and item.key != partner.key:
                self.result.add("partner_keys_kept")  # told, so the merchant can tell partners
            have = set(self.s.exec(select(PartnerTag.tag)
                                   .where(PartnerTag.partner_id == partner.id)))
            for tag in sorted({t.strip() for t in item.tags if t.strip()} - have):
                self.s.add(PartnerTag(program_id=self.program.id, partner_id=partner.id, tag=tag))
                changed = True
        for code in item.promo_codes:
            changed |= self._promo_code(partner, code.strip(), item)
        if created:
            self.result.add("partners_created")
        else:
            self.result.add("partners_updated" if changed else "partners_unchanged")

    def _promo_code(self, partner: Partner, code: str, item: ImportedPartner) -> bool:
        existing = self.s.exec(select(PromoCode).where(
            PromoCode.program_id == self.program.id, PromoCode.code_lower == code.lower())).first()
        if existing is not None:
            if existing.partner_id != partner.id:
                owner = self.s.get(Partner, existing.partner_id)
                raise ImportFailed(f"the promo code {code!r} already belongs to partner "
                                   f"{owner.email if owner else existing.partner_id}",
                                   item.row, item.columns.get("promo_codes"))
            return False
        create_promo_code(self.s, self.program, PromoCodeIn(partner_id=partner.id, code=code))
        self.result.add("promo_codes_created")
        return True

    def find_partner(self, ref: PartnerRef, row: int) -> Partner:
        partner = self._by_email(ref.email) if ref.email else None
        if partner is None and ref.key:
            partner = self._by_key(ref.key)
        if partner is None:
            what = f"email {ref.email!r}" if ref.email else f"referral code {ref.key!r}"
            raise ImportFailed(f"no partner with {what} in this program; import the partners "
                               "file first", row, ref.email_column if ref.email else ref.key_column)
        return partner

    # --- customers -------------------------------------------------------------------------------

    def _attribution(self, what: str) -> dict[str, Any]:
        return {"model": self.program.attribution_model, "touch": "import", "click_id": None,
                "reason": f"imported from {self.title} ({what})", "evidence": None}

    def _credit_customer(self, customer: Customer, partner: Partner, at: datetime | None,
                         what: str) -> str:
        if customer.partner_id == partner.id:
            earlier = customer.attributed_at
            if at is not None and earlier is not None and at < earlier:
                customer.attributed_at = at  # an older record of the referral: credit from then
                self.s.add(customer)
                for touch in self.s.exec(select(Touch).where(
                        Touch.customer_id == customer.id, Touch.partner_id == partner.id,
                        Touch.evidence == f"imported from {self.title}")):
                    touch.at = at
                    self.s.add(touch)
                return "updated"
            return "unchanged"
        if customer.partner_id is not None:
            # Credited once and kept (core.models.Customer): live tracking already decided.
            return "kept"
        customer.partner_id = partner.id
        customer.attribution = self._attribution(what)
        customer.attributed_at = at or utcnow()
        self.s.add(customer)
        # The old product saw this customer arrive through the partner's link: keep that as a
        # `ref` touch, so the what-if replay (which reads touches) credits the same partner.
        self.s.add(Touch(program_id=self.program.id, customer_id=customer.id,
                         partner_id=partner.id, kind="ref", evidence=f"imported from {self.title}",
                         at=customer.attributed_at))
        return "credited"

    def customer(self, item: ImportedCustomer) -> None:
        partner = self.find_partner(item.partner, item.row)
        existed = self._customer_exists(item.customer_id, item.email)
        customer = customer_for(self.customers, item.customer_id, item.email)
        assert customer is not None  # the importers refuse rows with neither id nor email
        what = f"referral {item.source_id or item.customer_id or item.email}"
        outcome = self._credit_customer(customer, partner, item.created_at, what)
        self.result.add("customers_created" if not existed else f"customers_{outcome}")

    def _customer_exists(self, customer_id: str | None, email: str | None) -> bool:
        ns = self.customers.origin
        external = f"{ns}:{customer_id}" if customer_id else f"{ns}:email:{(email or '').lower()}"
        found = self.s.exec(select(Customer.id).where(Customer.program_id == self.program.id,
                                                      Customer.external_id == external)).first()
        return found is not None

    # --- commissions -----------------------------------------------------------------------------

    def commission(self, item: ImportedCommission) -> None:
        partner = self.find_partner(item.partner, item.row)
        customer = None
        if item.customer_id or item.customer_email:
            customer = customer_for(self.customers, item.customer_id, item.customer_email)
            if customer is not None:
                self._credit_customer(customer, partner, item.occurred_at,
                                      f"commission {item.source_id}")
        conv = self.s.exec(select(Conversion).where(
            Conversion.program_id == self.program.id, Conversion.origin == self.origin,
            Conversion.external_id == item.source_id).with_for_update()).first()
        clawback = item.commission.amount < 0
        sale = item.sale
        before = None
        if conv is None:
            conv = Conversion(
                id=new_id("cnv"), program_id=self.program.id, origin=self.origin,
                platform=self.product, kind="adjustment" if clawback else "sale",
                event="refund" if clawback else "sale", external_id=item.source_id,
                currency=(sale or item.commission).currency, occurred_at=item.occurred_at,
                attribution=self._attribution(f"commission {item.source_id}"),
                hints={"import": {"product": self.product,
                                  **({"order_id": item.order_id} if item.order_id else {})}})
        else:
            before = self._snapshot(conv)
        amount = sale.amount if sale is not None and not clawback else 0
        conv.amount = conv.paid_total = amount
        conv.refunded = min(item.refunded.amount, amount) if item.refunded is not None else 0
        conv.customer_id = customer.id if customer is not None else conv.customer_id
        conv.partner_id = partner.id
        conv.commission_currency = item.commission.currency
        conv.commission_base = abs(item.commission.amount)
        self.s.add(conv)
        self.s.flush()
        written = self._post(conv, item, new=before is None)
        if before is None:
            self.result.add("commissions_created")
        elif written or before != self._snapshot(conv):
            self.result.add("commissions_updated")
        else:
            self.result.add("commissions_unchanged")

    @staticmethod
    def _snapshot(conv: Conversion) -> tuple[Any, ...]:
        return (conv.amount, conv.refunded, conv.customer_id, conv.partner_id, conv.commission,
                conv.commission_currency, conv.status)

    def _post(self, conv: Conversion, item: ImportedCommission, new: bool) -> int:
        """Bring the conversion's ledger to what the export says; returns the entries written."""
        s, currency, partner_id = self.s, item.commission.currency, conv.partner_id
        note = f"imported from {self.title}"
        reversed_ = item.status == "reversed"
        target = 0 if reversed_ and item.commission.amount > 0 else item.commission.amount
        entries = []
        if reversed_ and target == 0 and new:
            # Earned, then reversed: both movements, so the partner's reversed total shows it.
            entries += reconcile(s, program_id=self.program.id, conversion_id=conv.id,
                                 partner_id=partner_id, currency=currency,
                                 target=item.commission.amount, note=note)
            s.flush()
        entries += reconcile(s, program_id=self.program.id, conversion_id=conv.id,
                             partner_id=partner_id, currency=currency, target=target, note=note)
        s.flush()
        bal = conversion_balances(s, conv.id).get((partner_id or "", currency))
        if bal is not None and item.status in ("approved", "paid") and bal.pending > 0:
            entries.append(self._move(conv, currency, "approved", "pending", "approved",
                                      bal.pending, note))
            bal.approved, bal.pending = bal.approved + bal.pending, 0
        if bal is not None and item.status == "paid" and bal.approved > 0:
            entries.append(self._move(conv, currency, "paid", "approved", "paid", bal.approved,
                                      note))
            bal.paid, bal.approved = bal.paid + bal.approved, 0
        conv.commission = target
        if reversed_ or target < 0:
            conv.status = "reversed"
        elif conv.refunded:
            conv.status = "partially_refunded"
        else:
            conv.status = status_of_earning(bal) if bal is not None else "pending"
        s.add(conv)
        return len(entries)

    def _move(self, conv: Conversion, currency: str, kind: str, frm: str, to: str, amount: int,
              note: str) -> LedgerEntry:
        """One bucket movement, as `core.jobs.approve_due` and `core.earnings.pay_out` post them."""
        entry = LedgerEntry(program_id=self.program.id, partner_id=conv.partner_id or "",
                            conversion_id=conv.id, currency=currency, kind=kind,
                            from_bucket=frm, to_bucket=to, amount=amount, note=note)
        self.s.add(entry)
        return entry
