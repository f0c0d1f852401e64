"""Rewardful: affiliates, referrals and commissions exported from the Rewardful dashboard.

Rewardful's help centre documents no column list for its dashboard CSV exports (only the payout
CSVs for PayPal and Wise, and its own import template: `stripe_customer_id, first_name,
last_name, email, paypal_email, wise_email, token`). The exports carry the fields of its API
objects, so the layouts follow those names, with the dashboard's spaced spellings accepted too:

- affiliate: https://developers.rewardful.com/rest-api/affiliates (id, first_name, last_name,
  email, links[].token, created_at)
- referral: https://developers.rewardful.com/rest-api/referrals (id, stripe_customer_id,
  customer email, affiliate, conversion_state, created_at)
- commission: https://developers.rewardful.com/rest-api/commissions/object (id, amount,
  currency, state `pending`/`due`/`paid`/`voided`, sale.sale_amount_cents,
  sale.refund_amount_cents, sale.stripe_charge_id, created_at)
- import template:
  https://help.rewardful.com/en/articles/1988486-how-do-i-import-data-into-rewardful

Amounts are decimals in major units ("30.00"); the API's `*_cents` columns are read as minor
units when a file has them instead.
"""
from __future__ import annotations

from core.importers.common import (
    ImportedCommission, ImportedCustomer, ImportedPartner, Importer, Layout, Row, col,
    full_name,
)
from core.money import Money

STATES = {"pending": "pending", "due": "approved", "paid": "paid", "voided": "reversed"}

AFFILIATES = Layout("partners", (
    col("id", "id", "affiliate id"),
    col("email", "email", "affiliate email", required=True),
    col("first_name", "first name", "first_name"),
    col("last_name", "last name", "last_name"),
    col("token", "token", "link token", "referral code"),
    col("created_at", "created at", "created_at", "joined"),
))

REFERRALS = Layout("customers", (
    col("id", "id", "referral id"),
    col("affiliate_email", "affiliate email", "affiliate_email", required=True),
    col("affiliate_token", "affiliate token", "token"),
    col("customer_id", "stripe customer id", "stripe_customer_id", "customer id"),
    col("customer_email", "customer email", "email"),
    col("created_at", "created at", "created_at", "converted at"),
))

COMMISSIONS = Layout("commissions", (
    col("id", "id", "commission id", required=True),
    col("affiliate_email", "affiliate email", "affiliate_email", required=True),
    col("customer_id", "stripe customer id", "stripe_customer_id", "customer id"),
    col("customer_email", "customer email", "customer_email"),
    col("amount", "amount", "commission amount"),
    col("amount_cents", "amount_cents", "commission amount cents"),
    col("currency", "currency"),
    col("state", "state", "status", required=True),
    col("sale_amount", "sale amount", "sale_amount"),
    col("sale_amount_cents", "sale amount cents", "sale_amount_cents"),
    col("refund_amount", "refund amount", "refund_amount"),
    col("refund_amount_cents", "refund amount cents", "refund_amount_cents"),
    col("charge_id", "stripe charge id", "stripe_charge_id", "charge id"),
    col("created_at", "created at", "created_at", required=True),
))


def affiliate(row: Row) -> ImportedPartner:
    email = row.email("email", required=True)
    assert email is not None
    return ImportedPartner(row=row.number, source_id=row.text("id"), email=email,
                           name=full_name(row.text("first_name"), row.text("last_name")) or email,
                           key=row.text("token"), created_at=row.time("created_at"),
        columns={"email": row.header("email"),
                 "name": row.header("first_name"),
                 "key": row.header("token")})


def referral(row: Row) -> ImportedCustomer:
    return row.customer("customer_id", "customer_email",
                        "a referral needs a Stripe customer id or a customer email",
                        "affiliate_email", "affiliate_token")


def _amount(row: Row, name: str, currency: str, required: bool = False) -> Money | None:
    """The decimal column, or its API-style `*_cents` twin when only that one is filled."""
    if row.text(name) is not None or f"{name}_cents" not in row.fields:
        return row.money(name, currency, required=required and f"{name}_cents" not in row.fields)
    return row.money(f"{name}_cents", currency, required=required, minor_units=True)


def commission(row: Row) -> ImportedCommission:
    currency = row.currency("currency")
    amount = _amount(row, "amount", currency, required=True)
    assert amount is not None  # required: an empty cell raised ImportFailed
    return ImportedCommission(
        row=row.number, source_id=row.need("id"),
        partner=row.partner("affiliate_email"),
        customer_id=row.text("customer_id"), customer_email=row.email("customer_email"),
        commission=amount, status=row.choice("state", STATES),
        occurred_at=row.time("created_at", required=True),  # type: ignore[arg-type]
        sale=_amount(row, "sale_amount", currency),
        refunded=_amount(row, "refund_amount", currency),
        order_id=row.text("charge_id"))


importer = Importer(
    name="rewardful", title="Rewardful",
    references=("https://developers.rewardful.com/rest-api/commissions/object",
                ("https://help.rewardful.com/en/articles/"
                 "1988486-how-do-i-import-data-into-rewardful")),
    layouts={"partners": AFFILIATES, "customers": REFERRALS, "commissions": COMMISSIONS},
    converters={"partners": affiliate, "customers": referral, "commissions": commission})

detect = importer.detect
rows = importer.rows
