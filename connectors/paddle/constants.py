"""Names Paddle Billing and Touchpoint agree on, kept in one place (saleor's `consts.py`).

The webhook module, the translation and the API client all read these, so the events Touchpoint
subscribes a notification destination to are exactly the events `translate` understands.
"""
from __future__ import annotations

# Paddle.js `customData` keys the merchant's checkout sets (see README.md).
CLICK_KEY = "tp_click"
REF_KEY = "tp_ref"

# Transaction origins that are a later payment of an existing subscription: renewals, one-off
# charges and proration charges all inherit the attribution of the subscription's first payment.
# `web` and `api` are first purchases; `subscription_payment_method_change` is a zero-amount
# card check, skipped as a zero total anyway.
RENEWAL_ORIGINS = frozenset({"subscription_recurring", "subscription_charge", "subscription_update"})

# Adjustment statuses and actions (Paddle's `adjustment.action`).
ADJUSTMENT_APPROVED = "approved"
REFUND_ACTIONS = frozenset({"refund", "credit"})

# The notification destination's events: every topic `translate` handles, nothing else.
SUBSCRIBED_EVENTS: tuple[str, ...] = (
    "transaction.completed",
    "transaction.paid",
    "subscription.created",
    "subscription.activated",
    "subscription.updated",
    "subscription.canceled",
    "adjustment.created",
    "adjustment.updated",
    "customer.created",
    "customer.updated",
)

# Credential keys accepted by `POST /api/v1/sources` for a Paddle source.
API_KEY = "api_key"
ENVIRONMENT = "environment"
SANDBOX_KEY_PREFIX = "pdl_sdbx_"
