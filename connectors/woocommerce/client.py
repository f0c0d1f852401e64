"""The WooCommerce REST API through the `woocommerce` package, wrapped once.

Connecting checks the keys, then creates Touchpoint's webhooks with a generated secret;
disconnecting deletes them; backfill pages through orders. Every call goes through `_call`, which
turns the store's answers into `ConnectError`s a merchant can act on.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from woocommerce import API

from core.connectors import ConnectError, ConnectResult, Delivery, SourceContext

TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")
PER_PAGE = 100
TIMEOUT = 20


def normalize_store_url(value: str) -> str:
    """`Shop.Example/` -> `https://shop.example`; refuses what is not an http(s) URL."""
    value = value.strip()
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"store_url must be the store's address, like https://shop.example: {value!r}")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc.lower()}{path}"


def api(source: SourceContext) -> API:
    creds = source.credentials
    url = normalize_store_url(creds.get("store_url") or source.account or "")
    return API(url=url, consumer_key=creds.get("consumer_key", ""),
               consumer_secret=creds.get("consumer_secret", ""), version="wc/v3", timeout=TIMEOUT)


def _call(method: str, client: API, endpoint: str, data: Any = None,
          params: dict[str, Any] | None = None) -> requests.Response:
    try:
        if method == "get":
            resp = client.get(endpoint, params=params or {})
        elif method == "post":
            resp = client.post(endpoint, data)
        elif method == "put":
            resp = client.put(endpoint, data)
        else:
            resp = client.delete(endpoint, params=params or {})
    except requests.RequestException as exc:
        raise ConnectError(f"the store at {client.url} cannot be reached: {exc}") from None
    if resp.status_code in (401, 403):
        raise ConnectError("WooCommerce refused the consumer key and secret: create keys with "
                           "Read/Write permission (WooCommerce > Settings > Advanced > REST API)")
    if resp.status_code == 404:
        raise ConnectError(f"no WooCommerce REST API at {client.url}/wp-json/wc/v3 (is the URL "
                           "right, and are permalinks enabled?)")
    if resp.status_code >= 400:
        raise ConnectError(f"the store answered {resp.status_code} to {endpoint}: {resp.text[:200]}")
    return resp


def connect(source: SourceContext) -> ConnectResult:
    """Check the keys, then create (or reuse) one webhook per topic pointing at Touchpoint."""
    client = api(source)
    existing = _call("get", client, "webhooks", params={"per_page": 100}).json()
    secret = secrets.token_urlsafe(32)
    ids, actions = [], []
    for topic in TOPICS:
        for hook in existing:
            if hook.get("delivery_url") == source.webhook_url and hook.get("topic") == topic:
                # Reuse it, with our new secret, so the store and Touchpoint agree again.
                _call("put", client, f"webhooks/{hook['id']}", {"secret": secret, "status": "active"})
                ids.append(hook["id"])
                actions.append(f"Updated webhook {hook['id']} {topic} -> {source.webhook_url}")
                break
        else:
            hook = _call("post", client, "webhooks", {
                "name": f"Touchpoint {topic}", "topic": topic, "delivery_url": source.webhook_url,
                "secret": secret, "status": "active"}).json()
            ids.append(hook["id"])
            actions.append(f"Created webhook {hook['id']} {topic} -> {source.webhook_url}")
    return ConnectResult(webhook_secret=secret, account=normalize_store_url(client.url),
                         settings={"webhook_ids": ids}, actions=tuple(actions))


def disconnect(source: SourceContext) -> None:
    client = api(source)
    for hook_id in source.settings.get("webhook_ids", []):
        try:
            _call("delete", client, f"webhooks/{hook_id}", params={"force": True})
        except ConnectError as exc:
            if "no WooCommerce REST API" not in str(exc):  # already gone is fine
                raise


def fetch_history(source: SourceContext, since: datetime) -> Iterator[Delivery]:
    """Orders modified since `since`, oldest first, as `order.updated` deliveries. The id
    includes the order's modification time: an order that changed since the last run is
    processed again, one that did not is already stored."""
    client = api(source)
    page = 1
    while True:
        resp = _call("get", client, "orders", params={
            "modified_after": since.strftime("%Y-%m-%dT%H:%M:%S"), "dates_are_gmt": "true",
            "per_page": PER_PAGE, "page": page, "orderby": "modified", "order": "asc"})
        orders = resp.json()
        for order in orders:
            body = json.dumps(order).encode()
            yield Delivery(delivery_id=f"backfill:{order['id']}:{order.get('status')}:"
                                       f"{order.get('date_modified_gmt')}",
                           topic="order.updated", payload=order, body=body)
        pages = int(resp.headers.get("X-WP-TotalPages", "0") or 0)
        if not orders or len(orders) < PER_PAGE or (pages and page >= pages):
            return
        page += 1
