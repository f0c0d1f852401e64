"""FirstPromoter: promoters, referrals and commissions exported from the FirstPromoter dashboard.

FirstPromoter documents that Promoters > Export downloads a CSV, and its v2 API has a referrals
export answering `text/csv`, but neither page lists the columns. The layouts follow the field
names of its API objects, which those exports carry:

- promoter: https://docs.firstpromoter.com/api-reference-v1/promoters-api/list (id, email,
  first/last name, default_ref_id, promotions[].promo_code, created_at)
- referrals export:
  https://docs.firstpromoter.com/api-reference-v2/api-affiliate/referrals/export-referrals
  (type lead/customer; state subscribed, signup, active, cancelled, refunded, denied, pending,
  moved)
- commission:
  https://docs.firstpromoter.com/api-reference-v2/api-admin/commissions/get-all-commissions
  (status `pending`/`approved`/`denied`, a separate paid filter, amount, sale amount) and the v1
  reward object https://docs.firstpromoter.com/api-reference-v1/rewards-api/create (amount, unit,
  conversion_amount, event_id)

Amounts are decimals in major units. An approved commission marked paid is `paid`; `denied` is
reversed.
"""
from __future__ import annotations

from core.importers.common import (
    ImportedCommission, ImportedCustomer, ImportedPartner, Importer, Layout, Row, col,
    full_name,
)

STATUSES = {"pending": "pending", "approved": "approved", "denied": "reversed",
            "paid": "paid", "cancelled": "reversed"}

PROMOTERS = Layout("partners", (
    col("id", "id", "promoter id"),
    col("email", "email", required=True),
    col("first_name", "first name", "first_name"),
    col("last_name", "last name", "last_name"),
    col("name", "name"),
    col("ref_id", "ref id", "ref_id", "default ref id", "referral id"),
    col("promo_code", "promo code", "promo_code", "coupon"),
    col("created_at", "created at", "created_at", "joined at"),
))

REFERRALS = Layout("customers", (
    col("id", "id", "referral id"),
    col("email", "email", "referral email"),
    col("uid", "uid", "customer id"),
    col("promoter_email", "promoter email", "promoter_email", required=True),
    col("ref_id", "ref id", "ref_id"),
    col("created_at", "created at", "created_at", "signed up at"),
))

COMMISSIONS = Layout("commissions", (
    col("id", "id", "commission id", required=True),
    col("status", "status", required=True),
    col("paid", "paid", "is paid", "is_paid"),
    col("amount", "amount", "commission amount", required=True),
    col("currency", "currency"),
    col("sale_amount", "sale amount", "sale_amount", "conversion amount", "conversion_amount"),
    col("promoter_email", "promoter email", "promoter_email", required=True),
    col("referral_email", "referral email", "referral_email", "lead email"),
    col("referral_uid", "referral uid", "referral_uid", "lead uid", "customer id"),
    col("event_id", "event id", "event_id", "transaction id"),
    col("created_at", "created at", "created_at", required=True),
))


def promoter(row: Row) -> ImportedPartner:
    email = row.email("email", required=True)
    assert email is not None
    code = row.text("promo_code")
    return ImportedPartner(
        row=row.number, source_id=row.text("id"), email=email,
        name=full_name(row.text("first_name"), row.text("last_name")) or row.text("name") or email,
        key=row.text("ref_id"), promo_codes=(code,) if code else (),
        created_at=row.time("created_at"),
        columns={"email": row.header("email"),
                 "name": row.header("first_name"),
                 "key": row.header("ref_id"),
                 "promo_codes": row.header("promo_code")})


def referral(row: Row) -> ImportedCustomer:
    return row.customer("uid", "email", "a referral needs a uid or an email",
                        "promoter_email", "ref_id")


def commission(row: Row) -> ImportedCommission:
    currency = row.currency("currency")
    status = row.choice("status", STATUSES)
    if status == "approved" and row.boolean("paid"):
        status = "paid"
    return ImportedCommission(
        row=row.number, source_id=row.need("id"),
        partner=row.partner("promoter_email"),
        customer_id=row.text("referral_uid"), customer_email=row.email("referral_email"),
        commission=row.money("amount", currency, required=True),  # type: ignore[arg-type]
        status=status, occurred_at=row.time("created_at", required=True),  # type: ignore[arg-type]
        sale=row.money("sale_amount", currency), order_id=row.text("event_id"))


importer = Importer(
    name="firstpromoter", title="FirstPromoter",
    references=("https://docs.firstpromoter.com/api-reference-v1/promoters-api/list",
                ("https://docs.firstpromoter.com/api-reference-v2/api-admin/commissions/"
                 "get-all-commissions")),
    layouts={"partners": PROMOTERS, "customers": REFERRALS, "commissions": COMMISSIONS},
    converters={"partners": promoter, "customers": referral, "commissions": commission})

detect = importer.detect
rows = importer.rows
