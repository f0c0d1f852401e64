"""The shared connector contract, run over every connector registered in app.CONNECTORS
(allauth's shared test mixin: the platforms' own tests only supply data)."""
from __future__ import annotations

import importlib
from datetime import datetime, timezone

import pytest

from app import CONNECTORS
from core.connectors import BadPayload, Connector, Delivery, SignatureInvalid, SourceContext

MODULES = ("webhooks", "translate", "client")


@pytest.fixture(params=CONNECTORS, ids=lambda c: c.id)
def connector(request) -> Connector:
    return request.param


def source(connector: Connector) -> SourceContext:
    return SourceContext(id="src_contract", program_id="prg_contract", platform=connector.id,
                         webhook_secret="contract-secret", account="contract.myshopify.com",
                         webhook_url="http://touchpoint.test/webhooks/x")


def test_one_package_per_connector_with_the_same_modules(connector):
    assert connector.id and connector.name
    package = importlib.import_module(f"connectors.{connector.id}")
    assert package.connector is connector
    for name in MODULES:
        importlib.import_module(f"connectors.{connector.id}.{name}")
    assert connector.fetch_history is not None, "every platform can be backfilled"
    assert set(connector.required_fields) <= set(connector.credential_fields) | {"webhook_secret"}


@pytest.mark.parametrize("headers,body", [
    ({}, b"{}"),
    ({}, b""),
    ({"Content-Type": "application/json"}, b'{"id": "evt_1", "type": "x"}'),
])
def test_unsigned_or_forged_deliveries_are_refused(connector, headers, body):
    forged = {**headers, **{h: "t=1,v1=00;ts=1;h1=00" for h in (
        "Stripe-Signature", "Paddle-Signature")}, "X-WC-Webhook-Signature": "AAAA",
        "X-Shopify-Hmac-Sha256": "AAAA", "X-Shopify-Shop-Domain": "contract.myshopify.com",
        "X-Shopify-Topic": "orders/paid", "X-WC-Webhook-Topic": "order.updated"}
    for h in (headers, forged):
        with pytest.raises((SignatureInvalid, BadPayload)):
            connector.verify(source(connector), h, body)


def test_unknown_topics_translate_to_nothing(connector):
    delivery = Delivery(delivery_id="d1", topic="contract.unknown/topic", payload={}, body=b"{}",
                        occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert connector.translate(delivery) == []
