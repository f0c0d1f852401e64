"""WooCommerce: a merchant connects with REST API keys; Touchpoint creates its own webhooks."""
from connectors.woocommerce import client, translate, webhooks
from core.connectors import Connector

connector = Connector(
    id="woocommerce",
    name="WooCommerce",
    verify=webhooks.verify,
    translate=translate.translate,
    credential_fields=("store_url", "consumer_key", "consumer_secret"),
    required_fields=("store_url", "consumer_key", "consumer_secret"),
    fetch_history=client.fetch_history,
    connect=client.connect,
    disconnect=client.disconnect,
    normalize_account=client.normalize_store_url,
)
