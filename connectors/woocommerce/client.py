"""The WooCommerce REST API (wc/v3) through the `woocommerce` package, wrapped once.

`connect` checks the REST keys, then creates Touchpoint's order webhooks with a secret it
generates; `disconnect` deletes them; `fetch_history` pages through orders for backfill. Every
call goes through `call`, which turns the store's answers into `ConnectError`s a merchant can act
on.

Authentication is the package's: HTTP Basic over https, OAuth 1.0a signed query strings over plain
http. Some hosts drop the `Authorization` header before PHP sees it (WooCommerce then answers as
if no key was given); `connect` notices that and switches to the keys in the query string, which
WooCommerce's docs give as the way round, remembering it in the source's settings.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests

from core.connectors import ConnectError, ConnectResult, Delivery, SourceContext
from woocommerce import API

TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")
PER_PAGE = 100
TIMEOUT = 20
KEYS_HELP = ("create keys with Read/Write permission in WooCommerce > Settings > Advanced > "
             "REST API and give consumer_key and consumer_secret")


def normalize_store_url(value: str) -> str:
    """`Shop.Example/` -> `https://shop.example`; refuses what is not an http(s) URL."""
    value = value.strip()
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("store_url must be the store's address, like https://shop.example: "
                         f"{value!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def api(source: SourceContext, query_string_auth: bool | None = None) -> API:
    """A client for the source's store; `query_string_auth` defaults to what connect found."""
    creds = source.credentials
    if query_string_auth is None:
        query_string_auth = bool(source.settings.get("query_string_auth"))
    return API(url=normalize_store_url(creds.get("store_url") or source.account or ""),
               consumer_key=creds.get("consumer_key", ""),
               consumer_secret=creds.get("consumer_secret", ""),
               version="wc/v3", timeout=TIMEOUT, query_string_auth=query_string_auth)


def _error_of(resp: requests.Response) -> tuple[str, str]:
    """(code, message) of a WordPress REST error body, or ("", start of the body)."""
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200]
    if isinstance(body, dict):
        return str(body.get("code") or ""), str(body.get("message") or "")
    return "", resp.text[:200]


def request(client: API, method: str, endpoint: str, data: Any = None,
            params: dict[str, Any] | None = None) -> requests.Response:
    """One request through the package; an unreachable store is a ConnectError."""
    try:
        if method in ("post", "put"):
            return getattr(client, method)(endpoint, data, params=dict(params or {}))
        return getattr(client, method)(endpoint, params=dict(params or {}))
    except requests.RequestException as exc:
        raise ConnectError(f"the store at {client.url} cannot be reached: {exc}") from None


def parse(client: API, endpoint: str, resp: requests.Response, missing_ok: bool = False) -> Any:
    """The parsed JSON answer, or a ConnectError saying what to fix."""
    if resp.status_code == 404 and missing_ok:
        return None
    code, message = _error_of(resp) if resp.status_code >= 400 else ("", "")
    if resp.status_code in (401, 403):
        raise ConnectError(f"WooCommerce rejected the consumer key/secret "
                           f"({message or code or resp.status_code}): {KEYS_HELP}")
    if resp.status_code == 404 and code in ("rest_no_route", ""):
        raise ConnectError(f"no WooCommerce REST API at {client.url}/wp-json/wc/v3 (is the URL "
                           "right, WooCommerce active, and are permalinks other than 'Plain'?)")
    if resp.status_code >= 400:
        raise ConnectError(f"the store answered {resp.status_code} to {endpoint}: "
                           f"{message or code}")
    try:
        return resp.json() if resp.content else None
    except ValueError:
        raise ConnectError(
            f"the store answered {endpoint} with something that is not JSON (a maintenance page "
            f"or a security plugin?): {resp.text[:120]!r}") from None


def call(client: API, method: str, endpoint: str, data: Any = None,
         params: dict[str, Any] | None = None, missing_ok: bool = False) -> Any:
    return parse(client, endpoint, request(client, method, endpoint, data, params), missing_ok)


def keys_never_arrived(client: API, resp: requests.Response) -> bool:
    """True when Basic auth over https reached WooCommerce without its key: the answer is a plain
    permission error (`woocommerce_rest_cannot_view`) rather than WooCommerce's verdict on the
    key (`woocommerce_rest_authentication_error`: invalid key, wrong secret, read-only key)."""
    return (client.is_ssl and not client.query_string_auth and resp.status_code in (401, 403)
            and _error_of(resp)[0] != "woocommerce_rest_authentication_error")


def checked_client(source: SourceContext) -> tuple[API, list[dict[str, Any]]]:
    """A client whose keys the store accepts, and the store's webhooks (listing them is the
    check)."""
    params = {"per_page": 100}
    client = api(source)
    resp = request(client, "get", "webhooks", params=params)
    if keys_never_arrived(client, resp):
        client = api(source, query_string_auth=True)
        resp = request(client, "get", "webhooks", params=params)
    existing = parse(client, "webhooks", resp)
    return client, [h for h in existing or [] if isinstance(h, dict)]


def connect(source: SourceContext) -> ConnectResult:
    """Check the keys, then create (or reuse, with the new secret) one webhook per topic pointing
    at this source's URL. A failure half-way deletes what this call created."""
    client, existing = checked_client(source)
    secret = secrets.token_urlsafe(32)  # URL-safe: WooCommerce HTML-escapes other characters
    ids: list[int] = []
    actions: list[str] = []
    created: list[int] = []
    try:
        for topic in TOPICS:
            hook = next((h for h in existing if h.get("delivery_url") == source.webhook_url
                         and h.get("topic") == topic), None)
            if hook is not None:
                call(client, "put", f"webhooks/{hook['id']}",
                     {"secret": secret, "status": "active"})
                verb = "Updated"
            else:
                hook = call(client, "post", "webhooks", {
                    "name": f"Touchpoint {topic}", "topic": topic,
                    "delivery_url": source.webhook_url, "secret": secret, "status": "active"})
                if not isinstance(hook, dict) or not hook.get("id"):
                    raise ConnectError(
                        f"the store did not create the {topic} webhook: {hook!r}"[:300])
                created.append(int(hook["id"]))
                verb = "Created"
            ids.append(int(hook["id"]))
            actions.append(f"{verb} webhook {hook['id']} {topic} -> {source.webhook_url}")
    except ConnectError:
        for hook_id in created:
            try:
                call(client, "delete", f"webhooks/{hook_id}", params={"force": "true"},
                     missing_ok=True)
            except ConnectError:
                pass  # the original error is the one to show
        raise
    settings: dict[str, Any] = {"webhook_ids": ids}
    if client.query_string_auth:
        settings["query_string_auth"] = True
        actions.append("Sending the keys in the query string: this server drops the "
                       "Authorization header")
    return ConnectResult(webhook_secret=secret, account=normalize_store_url(client.url),
                         settings=settings, actions=tuple(actions))


def disconnect(source: SourceContext) -> None:
    """Delete our webhooks for good (`force=true`: webhooks have no trash); gone already is fine."""
    client = api(source)
    for hook_id in source.settings.get("webhook_ids") or []:
        call(client, "delete", f"webhooks/{hook_id}", params={"force": "true"}, missing_ok=True)


def _since(since: datetime) -> str:
    if since.tzinfo is not None:
        since = since.astimezone(timezone.utc)
    return since.strftime("%Y-%m-%dT%H:%M:%S")


def fetch_history(source: SourceContext, since: datetime) -> Iterator[Delivery]:
    """Orders modified since `since` (UTC), oldest id first, as `order.updated` deliveries.

    The delivery id names the order's status and modification time: a second run over unchanged
    orders stores nothing new, an order that changed since is processed again. Paging is by id,
    so orders created meanwhile land on the last page instead of shifting the others.
    """
    client = api(source)
    page = 1
    while True:
        resp = request(client, "get", "orders", params={
            "modified_after": _since(since), "dates_are_gmt": "true", "status": "any",
            "per_page": PER_PAGE, "page": page, "orderby": "id", "order": "asc"})
        orders = [o for o in parse(client, "orders", resp) or []
                  if isinstance(o, dict) and "id" in o]
        for order in orders:
            key = f"backfill:{order['id']}:{order.get('status')}:{order.get('date_modified_gmt')}"
            yield Delivery(delivery_id=key, topic="order.updated", payload=order,
                           body=json.dumps(order).encode())
        total_pages = int(resp.headers.get("X-WP-TotalPages") or 0)
        last = page >= total_pages if total_pages else len(orders) < PER_PAGE
        if not orders or last:
            return
        page += 1
