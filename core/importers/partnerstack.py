"""PartnerStack: partners, customers and rewards exported from the PartnerStack dashboard.

PartnerStack's "Export all records" (Partner Management > All partners) is documented without a
column list; the partner view lists Customers (name, email, customer key, submitted on) and
Rewards (customer name, reward amount, status, source, created). The layouts use the headers of
PartnerStack's own historical-data import templates, which name the same fields:

- https://support.partnerstack.com/hc/en-us/articles/360058412814-Learning-more-about-your-partners
- https://support.partnerstack.com/hc/en-us/articles/
  360009012554-Importing-Historical-Data-into-PartnerStack
  (partner_first, partner_last, partner_email, partner_key, partner_group, partner_joined_date;
  customer_key, customer_email, customer_name; reward amount and status)
- rewards API: https://docs.partnerstack.com/reference (reward_key, amount, currency, status,
  payment_status available/in_transit/withdrawn/paid_externally/expired/failed, created_at)

`partner_key` is both PartnerStack's id for a partner and the code in their links, so it becomes
the partner's key here and customers and rewards find their partner by it (or by email).
"""
from __future__ import annotations

from core.importers.common import (
    ImportedCommission, ImportedCustomer, ImportedPartner, Importer, Layout, PartnerRef, Row, col,
    full_name,
)

STATUSES = {"pending": "pending", "hold": "pending", "held": "pending", "approved": "approved",
            "available": "approved", "failed": "approved", "paid": "paid",
            "paid_externally": "paid", "paid externally": "paid", "in_transit": "paid",
            "in transit": "paid", "withdrawn": "paid", "declined": "reversed",
            "rejected": "reversed", "reversed": "reversed", "expired": "reversed",
            "cancelled": "reversed", "canceled": "reversed"}

PARTNERS = Layout("partners", (
    col("partner_key", "partner key", "partner_key", "key"),
    col("email", "partner email", "partner_email", "email", required=True),
    col("first_name", "partner first", "partner_first", "first name", "first_name"),
    col("last_name", "partner last", "partner_last", "last name", "last_name"),
    col("group", "partner group", "partner_group", "group"),
    col("created_at", "partner joined date", "partner_joined_date", "signed up", "created at"),
))

CUSTOMERS = Layout("customers", (
    col("customer_key", "customer key", "customer_key", required=True),
    col("email", "customer email", "customer_email", "email"),
    col("partner_key", "partner key", "partner_key"),
    col("partner_email", "partner email", "partner_email"),
    col("created_at", "submitted on", "created at", "customer_created_date", "created_at"),
))

REWARDS = Layout("commissions", (
    col("reward_key", "reward key", "reward_key", "key", required=True),
    col("amount", "reward amount", "reward_amount", "amount", required=True),
    col("currency", "currency"),
    col("status", "reward status", "reward_status", "status", required=True),
    col("partner_key", "partner key", "partner_key"),
    col("partner_email", "partner email", "partner_email"),
    col("customer_key", "customer key", "customer_key"),
    col("customer_email", "customer email", "customer_email"),
    col("transaction_amount", "transaction amount", "transaction_amount"),
    col("transaction_key", "transaction key", "transaction_key", "invoice key"),
    col("created_at", "created", "created at", "created_at", required=True),
))


def _partner_ref(row: Row) -> PartnerRef:
    ref = row.partner("partner_email", "partner_key", email_required=False)
    if ref.email is None and ref.key is None:
        raise row.fail("partner_key", "names no partner (give a partner key or partner email)")
    return ref


def partner(row: Row) -> ImportedPartner:
    email = row.email("email", required=True)
    assert email is not None
    group = row.text("group")
    key = row.text("partner_key")
    return ImportedPartner(
        row=row.number, source_id=key, email=email,
        name=full_name(row.text("first_name"), row.text("last_name")) or email, key=key,
        tags=(group,) if group else (), created_at=row.time("created_at"),
        columns={"email": row.header("email"),
                 "name": row.header("first_name"),
                 "key": row.header("partner_key"),
                 "tags": row.header("group")})


def customer(row: Row) -> ImportedCustomer:
    key = row.need("customer_key")
    return ImportedCustomer(row=row.number, source_id=key, partner=_partner_ref(row),
                            customer_id=key, email=row.email("email"),
                            created_at=row.time("created_at"))


def reward(row: Row) -> ImportedCommission:
    currency = row.currency("currency")
    return ImportedCommission(
        row=row.number, source_id=row.need("reward_key"), partner=_partner_ref(row),
        customer_id=row.text("customer_key"), customer_email=row.email("customer_email"),
        commission=row.money("amount", currency, required=True),  # type: ignore[arg-type]
        status=row.choice("status", STATUSES),
        occurred_at=row.time("created_at", required=True),  # type: ignore[arg-type]
        sale=row.money("transaction_amount", currency), order_id=row.text("transaction_key"))


importer = Importer(
    name="partnerstack", title="PartnerStack",
    references=(
        ("https://support.partnerstack.com/hc/en-us/articles/"
         "360009012554-Importing-Historical-Data-into-PartnerStack"),
        ("https://support.partnerstack.com/hc/en-us/articles/"
         "360058412814-Learning-more-about-your-partners")),
    layouts={"partners": PARTNERS, "customers": CUSTOMERS, "commissions": REWARDS},
    converters={"partners": partner, "customers": customer, "commissions": reward})

detect = importer.detect
rows = importer.rows
