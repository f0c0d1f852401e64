"""Stripe: Checkout, Payment Links and Billing. See README.md for connecting an account."""
from __future__ import annotations

from core.connectors import Connector

from . import client, translate, webhooks

connector = Connector(
    id="stripe",
    name="Stripe",
    verify=webhooks.verify,
    translate=translate.translate,
    # Either `api_key` (Touchpoint creates the webhook endpoint and keeps its secret) or the
    # top-level `webhook_secret` of an endpoint the merchant created: neither alone is required.
    credential_fields=("api_key",),
    required_fields=(),
    fetch_history=client.fetch_history,
    connect=client.connect,
    disconnect=client.disconnect,
    write_back=client.write_back,
    lookup_referral=client.lookup_referral,
)
