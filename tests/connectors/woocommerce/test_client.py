"""The `woocommerce` client's own HTTP code runs against a faked store (responses)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests
import responses

from connectors.woocommerce import client
from core.connectors import ConnectError, SourceContext
from tests.conftest import fixture_json

STORE = "https://shop.example"
API = f"{STORE}/wp-json/wc/v3"


def source(**settings) -> SourceContext:
    return SourceContext(id="src_1", program_id="prg_1", platform="woocommerce",
                         account=STORE, settings=settings,
                         credentials={"store_url": "Shop.Example/", "consumer_key": "ck_x",
                                      "consumer_secret": "cs_y"},
                         webhook_url="https://tp.example/webhooks/woocommerce/src_1")


@responses.activate
def test_connect_creates_webhooks_with_a_secret():
    responses.get(f"{API}/webhooks", json=[])
    created = fixture_json("woocommerce", "webhook.create_a_webhook.json")
    for i in range(4):
        responses.post(f"{API}/webhooks", json={**created, "id": 200 + i})
    result = client.connect(source())
    assert result.account == STORE and result.settings == {"webhook_ids": [200, 201, 202, 203]}
    assert len(result.webhook_secret) > 30 and len(result.actions) == 4
    posts = [json.loads(c.request.body) for c in responses.calls if c.request.method == "POST"]
    assert [p["topic"] for p in posts] == list(client.TOPICS)
    assert {p["secret"] for p in posts} == {result.webhook_secret}
    assert {p["delivery_url"] for p in posts} == {"https://tp.example/webhooks/woocommerce/src_1"}
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_connect_reuses_existing_webhooks():
    existing = [{**fixture_json("woocommerce", "webhook.retrieve_a_webhook.json"), "id": 7,
                 "topic": t, "delivery_url": source().webhook_url} for t in client.TOPICS]
    responses.get(f"{API}/webhooks", json=existing)
    for _ in client.TOPICS:
        responses.put(f"{API}/webhooks/7", json=existing[0])
    result = client.connect(source())
    assert result.settings["webhook_ids"] == [7, 7, 7, 7]
    assert all("Updated" in a for a in result.actions)


@responses.activate
@pytest.mark.parametrize("status,words", [(401, "consumer key"), (404, "no WooCommerce REST API"),
                                          (500, "answered 500")])
def test_connect_errors_are_readable(status, words):
    responses.get(f"{API}/webhooks", json={"code": "x"}, status=status)
    with pytest.raises(ConnectError, match=words):
        client.connect(source())


def test_unreachable_store():
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/webhooks", body=requests.ConnectionError("refused"))
        with pytest.raises(ConnectError, match="cannot be reached"):
            client.connect(source())


@responses.activate
def test_disconnect_deletes_our_webhooks():
    responses.delete(f"{API}/webhooks/200", json={})
    responses.delete(f"{API}/webhooks/201", json={}, status=404)
    client.disconnect(source(webhook_ids=[200, 201]))
    assert [c.request.url.split("?")[0] for c in responses.calls] == [f"{API}/webhooks/200", f"{API}/webhooks/201"]
    assert "force=True" in responses.calls[0].request.url


@responses.activate
def test_fetch_history_pages_through_orders():
    orders = fixture_json("woocommerce", "order.list_all_orders.json")
    page1 = [dict(orders[0], id=1000 + i) for i in range(client.PER_PAGE)]
    responses.get(f"{API}/orders", json=page1, headers={"X-WP-TotalPages": "2"})
    responses.get(f"{API}/orders", json=orders[:1], headers={"X-WP-TotalPages": "2"})
    out = list(client.fetch_history(source(), datetime(2026, 1, 1, tzinfo=timezone.utc)))
    assert len(out) == client.PER_PAGE + 1
    assert out[0].delivery_id.startswith("backfill:1000:") and out[0].topic == "order.updated"
    assert "page=2" in responses.calls[1].request.url
    assert "modified_after=2026-01-01" in responses.calls[0].request.url
