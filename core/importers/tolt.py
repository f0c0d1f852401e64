"""Tolt: partners, customers and commissions exported from the Tolt dashboard.

Tolt's help centre shows the dashboard lists (Partners, Customers, Customers > Commissions) and a
payout CSV, but documents no column list for exporting them. The layouts follow its API objects,
whose fields those lists show:

- partner: https://docs.tolt.com/partners/list (id, first_name, last_name, email, company_name,
  status, created_at); links https://docs.tolt.com/links/list (value: the referral code) and
  promotion codes https://docs.tolt.com/promotion-codes/list
- customer: https://docs.tolt.com/customers/list (id, customer_id: the billing id, email, name,
  partner_id, status lead/trial/active/canceled/refunded/suspended, created_at)
- commission: https://docs.tolt.com/commissions/retrieve and
  https://docs.tolt.com/concepts/commission-lifecycle (amount, revenue, currency, status
  `pending`/`approved`/`paid`/`rejected`/`refunded`, type `sale`/`refund`, transaction_id,
  customer_id, partner_id, created_at)

Tolt's API gives money in cents; its dashboard and this layout use decimals in major units. A
`refund`-type commission has a negative amount: a clawback of a commission already paid, which
the writer posts against the partner's approved balance, netted at the next payout.
"""
from __future__ import annotations

from core.importers.common import (
    ImportedCommission, ImportedCustomer, ImportedPartner, Importer, Layout, Row, col,
    full_name,
)

STATUSES = {"pending": "pending", "approved": "approved", "paid": "paid",
            "rejected": "reversed", "refunded": "reversed"}

PARTNERS = Layout("partners", (
    col("id", "id", "partner id"),
    col("email", "email", required=True),
    col("first_name", "first name", "first_name"),
    col("last_name", "last name", "last_name"),
    col("company_name", "company name", "company_name", "company"),
    col("link", "referral code", "link", "link value", "ref"),
    col("promotion_code", "promotion code", "promotion_code", "promo code", "coupon"),
    col("group", "group", "group name"),
    col("created_at", "created at", "created_at"),
))

CUSTOMERS = Layout("customers", (
    col("id", "id", "tolt customer id"),
    col("customer_id", "customer id", "customer_id", "billing customer id"),
    col("email", "email", "customer email"),
    col("partner_email", "partner email", "partner_email", required=True),
    col("partner_link", "partner referral code", "referral code", "link"),
    col("created_at", "created at", "created_at", "signed up at"),
))

COMMISSIONS = Layout("commissions", (
    col("id", "id", "commission id", required=True),
    col("amount", "amount", "commission", required=True),
    col("revenue", "revenue", "transaction amount"),
    col("currency", "currency"),
    col("status", "status", required=True),
    col("type", "type"),
    col("partner_email", "partner email", "partner_email", required=True),
    col("customer_id", "customer id", "customer_id"),
    col("customer_email", "customer email", "customer_email"),
    col("transaction_id", "transaction id", "transaction_id", "charge id"),
    col("created_at", "created at", "created_at", "date", required=True),
))


def partner(row: Row) -> ImportedPartner:
    email = row.email("email", required=True)
    assert email is not None
    code, group = row.text("promotion_code"), row.text("group")
    return ImportedPartner(
        row=row.number, source_id=row.text("id"), email=email,
        name=full_name(row.text("first_name"), row.text("last_name"))
        or row.text("company_name") or email,
        key=row.text("link"), promo_codes=(code,) if code else (), tags=(group,) if group else (),
        created_at=row.time("created_at"),
        columns={"email": row.header("email"),
                 "name": row.header("first_name"),
                 "key": row.header("link"),
                 "promo_codes": row.header("promotion_code"),
                 "tags": row.header("group")})


def customer(row: Row) -> ImportedCustomer:
    return row.customer("customer_id", "email", "a customer needs a customer id or an email",
                        "partner_email", "partner_link")


def commission(row: Row) -> ImportedCommission:
    currency = row.currency("currency")
    amount = row.money("amount", currency, required=True)
    assert amount is not None
    kind = (row.text("type") or "sale").lower()
    if kind not in ("sale", "refund", "lead", "custom"):
        raise row.fail("type", f"unknown value {kind!r} (expected sale or refund)")
    if amount.amount < 0 and kind != "refund":
        raise row.fail("amount", "is negative but the type is not refund")
    status = row.choice("status", STATUSES)
    return ImportedCommission(
        row=row.number, source_id=row.need("id"),
        partner=row.partner("partner_email"),
        customer_id=row.text("customer_id"), customer_email=row.email("customer_email"),
        commission=amount, status=status,
        occurred_at=row.time("created_at", required=True),  # type: ignore[arg-type]
        sale=row.money("revenue", currency), order_id=row.text("transaction_id"))


importer = Importer(
    name="tolt", title="Tolt",
    references=("https://docs.tolt.com/partners/list", "https://docs.tolt.com/customers/list",
                "https://docs.tolt.com/commissions/retrieve"),
    layouts={"partners": PARTNERS, "customers": CUSTOMERS, "commissions": COMMISSIONS},
    converters={"partners": partner, "customers": customer, "commissions": commission})

detect = importer.detect
rows = importer.rows
