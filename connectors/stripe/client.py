"""The Stripe SDK, wrapped once: every call Touchpoint makes to Stripe's API is in this module.

A `stripe.StripeClient` is built per call from the source's `api_key` (a restricted key is
enough; see README.md). Its HTTP goes through `requests` (`stripe.RequestsClient`), named
explicitly so tests can fake api.stripe.com with `responses` while the SDK's own code runs.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import stripe

from core.connectors import ConnectError, ConnectResult, Delivery, SourceContext
from core.events import Referral, Sale

from .translate import EVENT_TYPES, event_time

log = logging.getLogger(__name__)

ENDPOINT_DESCRIPTION = "Touchpoint affiliate tracking"


def make_client(api_key: str, http_client: stripe.HTTPClient | None = None) -> stripe.StripeClient:
    """A client for one account. The webhook endpoint and the events list are left at the
    account's API version, so webhooks and backfill render objects the same way."""
    return stripe.StripeClient(api_key, http_client=http_client or stripe.RequestsClient())


def client_for(source: SourceContext) -> stripe.StripeClient | None:
    api_key = (source.credentials or {}).get("api_key")
    return make_client(api_key) if api_key else None


def explain(exc: stripe.StripeError, needs: str) -> str:
    """A sentence the merchant can act on."""
    message = exc.user_message or str(exc)
    if isinstance(exc, stripe.AuthenticationError):
        return (f"Stripe refused the API key ({message}). "
                "Paste a secret or restricted key (sk_... or rk_...).")
    if isinstance(exc, stripe.PermissionError):
        return (f"The Stripe key may not {needs} ({message}). "
                "Give the restricted key that permission.")
    if isinstance(exc, stripe.APIConnectionError):
        return f"Could not reach Stripe: {message}"
    return f"Stripe said: {message}"


# --- connect / disconnect -------------------------------------------------------------------------

def connect(source: SourceContext) -> ConnectResult:
    """With an `api_key`: create the webhook endpoint and keep its signing secret. Without one the
    merchant created the endpoint and gave `webhook_secret`; there is nothing to do."""
    client = client_for(source)
    if client is None:
        return ConnectResult()
    try:
        endpoint = client.v1.webhook_endpoints.create(params={
            "url": source.webhook_url,
            "enabled_events": list(EVENT_TYPES),  # type: ignore[typeddict-item]
            "description": ENDPOINT_DESCRIPTION,
            "metadata": {"touchpoint_source": source.id},
        })
    except stripe.StripeError as exc:
        raise ConnectError(explain(exc, "create webhook endpoints")) from None
    return ConnectResult(
        webhook_secret=endpoint.secret,
        settings={"webhook_endpoint_id": endpoint.id},
        actions=(f"Created Stripe webhook endpoint {endpoint.id} for {source.webhook_url}",),
    )


def disconnect(source: SourceContext) -> None:
    """Delete the endpoint `connect` created; one already deleted in the dashboard is fine."""
    endpoint_id = (source.settings or {}).get("webhook_endpoint_id")
    client = client_for(source)
    if not endpoint_id or client is None:
        return
    try:
        client.v1.webhook_endpoints.delete(endpoint_id)
    except stripe.InvalidRequestError as exc:
        if exc.code != "resource_missing":
            raise ConnectError(explain(exc, "delete webhook endpoints")) from None
    except stripe.StripeError as exc:
        raise ConnectError(explain(exc, "delete webhook endpoints")) from None


# --- write-back -----------------------------------------------------------------------------------

def write_back(source: SourceContext, customer_id: str, partner_key: str,
               click_id: str | None) -> None:
    """Stamp the attribution on the Stripe customer (`metadata.tp_partner`, `tp_click`), so the
    merchant sees it in the dashboard and later Checkouts of the customer carry it. Core runs this
    after the commit and logs failures."""
    client = client_for(source)
    if client is None:
        return
    meta = {"tp_partner": partner_key}
    if click_id:
        meta["tp_click"] = click_id  # never "" : an empty value deletes the key in Stripe
    client.v1.customers.update(customer_id, params={"metadata": meta})


# --- lookup --------------------------------------------------------------------------------------

def lookup_referral(source: SourceContext, sale: Sale) -> Referral | None:
    """More evidence for a sale whose own hints matched no partner (core asks only then).

    - A webhook names a promotion code by its id (`promo_...`); partners register the code customers
      type (`FALL20`), so each id is fetched for its `code`.
    - The Stripe customer may carry `metadata.tp_click` / `tp_partner`, set by the merchant's server
      or by our write-back after an earlier attribution (e.g. a renewal whose first payment predates
      Touchpoint, or a customer created with the click id before subscribing).

    A refused or missing object (deleted customer, key without read permission) only means less
    evidence. Network and server errors are raised: the delivery is then marked failed and retried
    by `touchpoint jobs run`, instead of the sale staying uncredited for good.
    """
    client = client_for(source)
    if client is None:
        return None
    promo_ids = [promo for promo in sale.referral.promo_codes if promo.startswith("promo_")]
    codes = tuple(code for code in (promotion_code_text(client, p) for p in promo_ids) if code)
    click = partner = None
    if sale.customer_id:
        meta = customer_metadata(client, sale.customer_id)
        click, partner = meta.get("tp_click") or None, meta.get("tp_partner") or None
    found = Referral(click_id=click, ref=partner, promo_codes=codes,
                     evidence="stripe.customer.metadata" if (click or partner)
                     else "stripe.promotion_code")
    return None if found.is_empty() else found


def promotion_code_text(client: stripe.StripeClient, promo_id: str) -> str | None:
    """The customer-facing code of a `promo_...` id."""
    try:
        code = client.v1.promotion_codes.retrieve(promo_id).to_dict().get("code")
    except (stripe.InvalidRequestError, stripe.PermissionError, stripe.AuthenticationError) as exc:
        log.warning("stripe: cannot read promotion code %s: %s", promo_id, exc.user_message or exc)
        return None
    return code if isinstance(code, str) and code else None


def customer_metadata(client: stripe.StripeClient, customer_id: str) -> dict[str, str]:
    """The customer's metadata; {} for a deleted or unreadable customer."""
    try:
        customer = client.v1.customers.retrieve(customer_id)
    except (stripe.InvalidRequestError, stripe.PermissionError, stripe.AuthenticationError) as exc:
        log.warning("stripe: cannot read customer %s: %s", customer_id, exc.user_message or exc)
        return {}
    data = customer.to_dict(recursive=True)
    meta = data.get("metadata")
    if data.get("deleted") or not isinstance(meta, Mapping):
        return {}
    return {str(k): str(v) for k, v in meta.items()}


# --- backfill -------------------------------------------------------------------------------------

def fetch_history(source: SourceContext, since: datetime) -> Iterator[Delivery]:
    """Past events of the types Touchpoint handles, created at or after `since`, oldest first.

    Stripe keeps events for 30 days only: an older `since` returns what is left. Each event is the
    same one a webhook delivered (same `evt_...` id), so a backfill after webhooks, or a second
    backfill, stores nothing twice. Stripe lists newest first; we yield oldest first, as webhooks
    arrived, so a subscription's first invoice is seen before its renewals.
    """
    client = client_for(source)
    if client is None:
        return
    listed = client.v1.events.list(params={
        "created": {"gte": int(since.timestamp())},
        "types": list(EVENT_TYPES),
        "limit": 100,
    })
    events = [event.to_dict(recursive=True, for_json=True)
              for event in listed.auto_paging_iter()]
    for event in reversed(events):
        yield delivery_of(event)


def delivery_of(event: Mapping[str, Any]) -> Delivery:
    """An API-listed event shaped like a webhook delivery (payload = the event, body = its JSON)."""
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return Delivery(delivery_id=event["id"], topic=event["type"], payload=dict(event), body=body,
                    occurred_at=event_time(event))
