"""The `woocommerce` package's own HTTP code runs against a faked store (responses)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from connectors.woocommerce import client
from connectors.woocommerce.translate import translate
from core.connectors import ConnectError, SourceContext
from tests.conftest import fixture_json

STORE = "https://shop.example"
API = f"{STORE}/wp-json/wc/v3"
HOOK_URL = "https://tp.example/webhooks/woocommerce/src_1"
DENIED = {"code": "woocommerce_rest_authentication_error", "message": "Consumer secret is invalid.",
          "data": {"status": 401}}
NO_KEY = {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
          "data": {"status": 401}}


def source(store: str = "Shop.Example/", **settings) -> SourceContext:
    return SourceContext(id="src_1", program_id="prg_1", platform="woocommerce",
                         account=client.normalize_store_url(store), settings=settings,
                         credentials={"store_url": store, "consumer_key": "ck_x",
                                      "consumer_secret": "cs_y"},
                         webhook_url=HOOK_URL)


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def created_webhook(i: int) -> dict:
    return {**fixture_json("woocommerce", "webhook.create_a_webhook.json"), "id": 200 + i}


def test_store_urls_are_normalised():
    assert client.normalize_store_url(" Shop.Example/ ") == "https://shop.example"
    assert client.normalize_store_url("http://Shop.Example/store/") == "http://shop.example/store"
    with pytest.raises(ValueError):
        client.normalize_store_url("ftp://shop.example")


@responses.activate
def test_connect_creates_webhooks_with_a_secret_over_basic_auth():
    responses.get(f"{API}/webhooks", json=[])
    for i in range(len(client.TOPICS)):
        responses.post(f"{API}/webhooks", json=created_webhook(i), status=201)
    result = client.connect(source())
    assert result.account == STORE and result.settings == {"webhook_ids": [200, 201, 202, 203]}
    assert result.actions[0] == f"Created webhook 200 order.created -> {HOOK_URL}"
    assert len(result.webhook_secret) >= 40 and len(result.actions) == 4
    posts = [json.loads(c.request.body) for c in responses.calls if c.request.method == "POST"]
    assert [p["topic"] for p in posts] == list(client.TOPICS)
    assert {(p["secret"], p["delivery_url"], p["status"]) for p in posts} == \
        {(result.webhook_secret, HOOK_URL, "active")}
    # https: HTTP Basic with the keys, nothing in the query string
    auth = responses.calls[0].request.headers["Authorization"]
    assert base64.b64decode(auth.split()[1]) == b"ck_x:cs_y"
    assert "consumer_secret" not in responses.calls[0].request.url
    assert query(responses.calls[0])["per_page"] == ["100"]


@responses.activate
def test_plain_http_store_gets_oauth1_signed_urls():
    api = "http://shop.example/wp-json/wc/v3"
    responses.get(f"{api}/webhooks", json=[])
    for i in range(len(client.TOPICS)):
        responses.post(f"{api}/webhooks", json=created_webhook(i), status=201)
    result = client.connect(source("http://shop.example"))
    assert result.account == "http://shop.example"
    first = responses.calls[0].request
    q = query(responses.calls[0])
    assert "Authorization" not in first.headers and "consumer_secret" not in first.url
    assert q["oauth_consumer_key"] == ["ck_x"] and q["oauth_signature_method"] == ["HMAC-SHA256"]
    assert q["oauth_signature"][0]


@responses.activate
def test_connect_switches_to_query_string_keys_when_the_server_drops_basic_auth():
    # The first answer is "no key given" (the Authorization header never reached PHP); the keys
    # in the query string work.
    responses.get(f"{API}/webhooks", json=NO_KEY, status=401,
                  match=[matchers.header_matcher({"Authorization": "Basic " + base64.b64encode(b"ck_x:cs_y").decode()})])
    responses.get(f"{API}/webhooks", json=[],
                  match=[matchers.query_param_matcher({"per_page": "100", "consumer_key": "ck_x",
                                                       "consumer_secret": "cs_y"})])
    for i in range(len(client.TOPICS)):
        responses.post(f"{API}/webhooks", json=created_webhook(i), status=201)
    result = client.connect(source())
    assert result.settings["query_string_auth"] is True
    assert "query string" in result.actions[-1]
    assert all("consumer_key=ck_x" in c.request.url for c in responses.calls[1:])
    # later calls (disconnect, backfill) use what connect found
    assert client.api(source(**result.settings)).query_string_auth is True


@responses.activate
def test_connect_reuses_existing_webhooks_with_the_new_secret():
    existing = [{**fixture_json("woocommerce", "webhook.retrieve_a_webhook.json"), "id": 7 + i,
                 "topic": t, "delivery_url": HOOK_URL} for i, t in enumerate(client.TOPICS)]
    other = {**existing[0], "id": 99, "delivery_url": "https://elsewhere.example/hook"}
    responses.get(f"{API}/webhooks", json=[other, *existing])
    for hook in existing:
        responses.put(f"{API}/webhooks/{hook['id']}", json=hook)
    result = client.connect(source())
    assert result.settings["webhook_ids"] == [7, 8, 9, 10]
    assert all(a.startswith("Updated webhook") for a in result.actions)
    puts = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PUT"]
    assert puts == [{"secret": result.webhook_secret, "status": "active"}] * 4
    assert not [c for c in responses.calls if c.request.method in ("POST", "DELETE")]


@responses.activate
def test_a_failure_half_way_deletes_what_was_created():
    responses.get(f"{API}/webhooks", json=[])
    responses.post(f"{API}/webhooks", json=created_webhook(0), status=201)
    responses.post(f"{API}/webhooks", json={"code": "woocommerce_rest_authentication_error",
                                            "message": "The API key provided does not have write permissions."},
                   status=401)
    responses.delete(f"{API}/webhooks/200", json={})
    with pytest.raises(ConnectError, match="write permissions.*Read/Write"):
        client.connect(source())
    delete = responses.calls[-1]
    assert delete.request.method == "DELETE" and delete.request.url.startswith(f"{API}/webhooks/200")
    assert query(delete)["force"] == ["true"]


@responses.activate
@pytest.mark.parametrize("status,answer,words", [
    (401, DENIED, "rejected the consumer key/secret \\(Consumer secret is invalid.\\)"),
    (404, {"code": "rest_no_route", "message": "No route"}, "no WooCommerce REST API"),
    (404, "<html>not found</html>", "no WooCommerce REST API"),
    (500, {"code": "internal_server_error", "message": "boom"}, "answered 500 to webhooks: boom"),
    (200, "<html>Briefly unavailable for scheduled maintenance</html>", "not JSON"),
])
def test_connect_errors_are_readable(status, answer, words):
    kwargs = {"json": answer} if isinstance(answer, dict) else {"body": answer}
    responses.get(f"{API}/webhooks", status=status, **kwargs)
    with pytest.raises(ConnectError, match=words):
        client.connect(source())
    assert not [c for c in responses.calls if c.request.method == "POST"]


@responses.activate
def test_wrong_keys_are_not_retried_in_the_query_string():
    responses.get(f"{API}/webhooks", json=DENIED, status=401)
    with pytest.raises(ConnectError, match="rejected"):
        client.connect(source())
    assert len(responses.calls) == 1


def test_unreachable_store():
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/webhooks", body=requests.ConnectionError("refused"))
        with pytest.raises(ConnectError, match="cannot be reached"):
            client.connect(source())


@responses.activate
def test_disconnect_deletes_our_webhooks_and_tolerates_gone_ones():
    responses.delete(f"{API}/webhooks/200", json=fixture_json("woocommerce", "webhook.delete_a_webhook.json"))
    responses.delete(f"{API}/webhooks/201", json={"code": "woocommerce_rest_webhook_invalid_id"}, status=404)
    client.disconnect(source(webhook_ids=[200, 201]))
    assert [c.request.url.split("?")[0] for c in responses.calls] == [f"{API}/webhooks/200", f"{API}/webhooks/201"]
    assert all(query(c)["force"] == ["true"] for c in responses.calls)


@responses.activate
def test_disconnect_with_revoked_keys_says_so():
    responses.delete(f"{API}/webhooks/200", json=DENIED, status=401)
    with pytest.raises(ConnectError, match="rejected"):
        client.disconnect(source(webhook_ids=[200]))


@responses.activate
def test_fetch_history_pages_through_orders():
    orders = fixture_json("woocommerce", "order.list_all_orders.json")
    page1 = [dict(orders[0], id=1000 + i) for i in range(client.PER_PAGE)]
    responses.get(f"{API}/orders", json=page1, headers={"X-WP-TotalPages": "2", "X-WP-Total": "102"})
    responses.get(f"{API}/orders", json=orders, headers={"X-WP-TotalPages": "2", "X-WP-Total": "102"})
    since = datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    out = list(client.fetch_history(source(), since))
    assert len(out) == client.PER_PAGE + 2 and len(responses.calls) == 2
    q = query(responses.calls[0])
    assert q["modified_after"] == ["2026-01-01T00:00:00"] and q["dates_are_gmt"] == ["true"]
    assert (q["per_page"], q["page"], q["orderby"], q["order"]) == (["100"], ["1"], ["id"], ["asc"])
    assert query(responses.calls[1])["page"] == ["2"]
    last = out[-1]
    assert last.delivery_id == "backfill:723:completed:2017-03-21T19:54:51"
    assert last.topic == "order.updated" and json.loads(last.body) == last.payload
    # the same path as a webhook: order 723 is a sale with its two refunds
    assert [type(e).__name__ for e in translate(last)] == ["Sale", "Refund", "Refund"]


@responses.activate
def test_fetch_history_stops_on_an_empty_page_without_page_headers():
    orders = fixture_json("woocommerce", "order.list_all_orders.json")
    responses.get(f"{API}/orders", json=[dict(orders[0], id=i) for i in range(client.PER_PAGE)])
    responses.get(f"{API}/orders", json=[])
    assert len(list(client.fetch_history(source(), datetime(2026, 1, 1)))) == client.PER_PAGE
    assert len(responses.calls) == 2


@responses.activate
def test_fetch_history_ids_are_stable_and_change_with_the_order():
    orders = fixture_json("woocommerce", "order.list_all_orders.json")
    responses.get(f"{API}/orders", json=orders, headers={"X-WP-TotalPages": "1"})
    first = [x.delivery_id for x in client.fetch_history(source(), datetime(2026, 1, 1))]
    assert first == [x.delivery_id for x in client.fetch_history(source(), datetime(2026, 1, 1))]
    responses.replace(responses.GET, f"{API}/orders", json=[dict(orders[0], status="refunded",
                                                                 date_modified_gmt="2026-02-01T00:00:00")],
                      headers={"X-WP-TotalPages": "1"})
    [changed] = [x.delivery_id for x in client.fetch_history(source(), datetime(2026, 1, 1))]
    assert changed not in first


@responses.activate
def test_fetch_history_error_is_readable():
    responses.get(f"{API}/orders", json=DENIED, status=401)
    with pytest.raises(ConnectError, match="rejected"):
        list(client.fetch_history(source(), datetime(2026, 1, 1)))
