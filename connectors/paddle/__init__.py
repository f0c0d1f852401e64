"""Paddle Billing: notifications signed with `Paddle-Signature`, referral in `custom_data`.

A source needs the notification destination's secret key (`webhook_secret`), or an `api_key` with
which Touchpoint creates the destination itself. The API key also enables backfill and discount
lookups. See README.md.
"""
from __future__ import annotations

from connectors.paddle import client, translate, webhooks
from connectors.paddle.constants import API_KEY, ENVIRONMENT
from core.connectors import Connector

connector = Connector(
    id="paddle",
    name="Paddle Billing",
    verify=webhooks.verify,
    translate=translate.translate,
    credential_fields=(API_KEY, ENVIRONMENT),
    required_fields=(),
    fetch_history=client.fetch_history,
    connect=client.connect,
    disconnect=client.disconnect,
    lookup_referral=client.lookup_referral,
)
