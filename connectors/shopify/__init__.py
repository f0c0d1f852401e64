"""Shopify: the public app (OAuth install, embedded page) or a custom app's token; one webhook
endpoint for every shop, found by `X-Shopify-Shop-Domain`."""
from core.connectors import Connector
from connectors.shopify import client, install, translate, webhooks

connector = Connector(
    id="shopify",
    name="Shopify",
    verify=webhooks.verify,
    translate=translate.translate,
    credential_fields=("shop", "access_token"),
    required_fields=("shop", "webhook_secret"),
    fetch_history=client.fetch_history,
    account_from_headers=webhooks.account_from_headers,
    connect=client.connect,
    disconnect=client.disconnect,
    lookup_referral=client.lookup_referral,
    normalize_account=webhooks.normalize_account,
    blueprint=install.bp,
)
