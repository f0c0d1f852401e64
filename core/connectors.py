"""The connector interface: what a platform package gives core, and what core gives it back.

Each package in `connectors/` builds one `Connector` from plain functions in its own modules
(`webhooks.verify`, `translate.translate`, `client.fetch_history`, ...). `app.py` lists them in one
explicit tuple; `Registry` holds them in `app.extensions["touchpoint"]`. Core never names a platform:
it only looks connectors up by `id`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.events import Event, Referral, Sale


class SignatureInvalid(Exception):
    """The delivery's signature is missing, forged or stale: answered 401, nothing stored."""


class BadPayload(Exception):
    """The delivery is signed but cannot be understood: answered 400, nothing stored."""


class ConnectError(Exception):
    """Connecting a source failed (wrong keys, store unreachable): answered 400 with the reason."""


def header_map(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with lower-case names: Flask gives `Headers`, tests and backfill plain dicts."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or BadPayload saying why not."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadPayload("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadPayload("the body is not a JSON object")
    return payload


@dataclass(frozen=True)
class SourceContext:
    """A connected platform account, with its credentials decrypted, as connectors see it.

    `account` is the platform's name for the account (a Shopify shop domain, a WooCommerce store URL),
    `credentials` the platform's API credentials (`api_key`, `consumer_key`, `access_token`, ...),
    `settings` what `connect` stored (registered webhook ids, ...).
    """

    id: str
    program_id: str
    platform: str
    webhook_secret: str | None = None
    account: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str = ""


@dataclass(frozen=True)
class Delivery:
    """One notification from a platform, verified and parsed.

    `delivery_id` is the platform's own id of this notification (Stripe event id, Paddle
    notification id, WooCommerce delivery id, Shopify webhook id): the same id twice is one delivery.
    """

    delivery_id: str
    topic: str
    payload: Any
    body: bytes
    occurred_at: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectResult:
    """What connecting a source did: values to store and sentences to show the merchant."""

    webhook_secret: str | None = None
    account: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    actions: tuple[str, ...] = ()


Verify = Callable[[SourceContext, Mapping[str, str], bytes], Delivery]
Translate = Callable[[Delivery], list[Event]]
FetchHistory = Callable[[SourceContext, datetime], Iterator[Delivery]]


@dataclass(frozen=True)
class Connector:
    """One platform.

    - `verify(source, headers, body)`: check the signature with the platform's SDK, parse the body;
      raise `SignatureInvalid` or `BadPayload`. Called before anything is stored. Never writes.
    - `translate(delivery)`: pure mapping to `core.events`; unknown topics give `[]`. No IO.
    - `fetch_history(source, since)`: yields past notifications (or API objects wrapped as
      deliveries with stable ids) for `touchpoint backfill`; they go down the webhook path.
    - `account_from_headers(headers)`: for platforms with one endpoint for every account (Shopify):
      the account name to find the source by; None where the source id is in the URL.
    - `connect(source)`: on `POST /api/v1/sources`, check credentials and register webhooks;
      raise `ConnectError` with a reason the merchant can act on. `disconnect(source)` undoes it.
    - `lookup_referral(source, sale)`: when a sale carries no referral evidence, ask the platform's
      API for more (Shopify's customer journey). Return None when nothing is found.
    - `write_back(source, customer_id, partner_key, click_id)`: stamp the attribution on the
      platform's customer record. Failures are logged by core, never raised to the webhook.
    - `normalize_account(value)`: canonical account name from user input (a shop domain).
    """

    id: str
    name: str
    verify: Verify
    translate: Translate
    credential_fields: tuple[str, ...] = ()
    required_fields: tuple[str, ...] = ()
    fetch_history: FetchHistory | None = None
    account_from_headers: Callable[[Mapping[str, str]], str | None] | None = None
    connect: Callable[[SourceContext], ConnectResult] | None = None
    disconnect: Callable[[SourceContext], None] | None = None
    lookup_referral: Callable[[SourceContext, Sale], Referral | None] | None = None
    write_back: Callable[[SourceContext, str, str, str | None], None] | None = None
    normalize_account: Callable[[str], str] | None = None
    blueprint: Any = None
    docs: str = ""


class Registry:
    """The connectors of one app, by id."""

    def __init__(self, connectors: tuple[Connector, ...]) -> None:
        ids = [c.id for c in connectors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate connector ids: {ids}")
        self._by_id = {c.id: c for c in connectors}

    def get(self, connector_id: str) -> Connector | None:
        return self._by_id.get(connector_id)

    def ids(self) -> list[str]:
        return list(self._by_id)

    def __iter__(self) -> Iterator[Connector]:
        return iter(self._by_id.values())
