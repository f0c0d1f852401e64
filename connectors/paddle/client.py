"""The Paddle Billing SDK (`paddle_billing.Client`), wrapped once.

- `fetch_history(source, since)`: completed/paid transactions and approved adjustments, listed with
  the SDK's pagination and yielded as notification bodies, so backfill goes down the webhook path.
- `lookup_referral(source, sale)`: a sale whose only hint is a Paddle discount id -> its code.
- `connect(source)` / `disconnect(source)`: check the API key; create (and later delete) the
  notification destination when the merchant gave no webhook secret.

The SDK turns every list page into typed entities and drops the JSON. `translate` wants the JSON
(API entities and notification `data` have the same shape), and serialising entities back loses
fields the SDK does not model, so `_RawItems` keeps each entity's JSON as the SDK's own session
receives it, and the SDK's pagination still drives the listing.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from paddle_billing import Client, Environment, Options
from paddle_billing.Entities.Events import EventTypeName
from paddle_billing.Entities.NotificationSettings import NotificationSettingType
from paddle_billing.Entities.Shared import AdjustmentStatus, TransactionStatus
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Resources.Adjustments.Operations import ListAdjustments
from paddle_billing.Resources.NotificationSettings.Operations import CreateNotificationSetting
from paddle_billing.Resources.Shared.Operations import Comparator, DateComparison, Pager
from paddle_billing.Resources.Transactions.Operations import ListTransactions
from requests import RequestException, Response

from connectors.paddle.constants import (
    API_KEY,
    ENVIRONMENT,
    SANDBOX_KEY_PREFIX,
    SUBSCRIBED_EVENTS,
)
from connectors.paddle.translate import parse_time
from core.connectors import ConnectError, ConnectResult, Delivery, SourceContext
from core.events import Referral, Sale

log = logging.getLogger(__name__)

# Settings key of the destination Touchpoint created (and so may delete on disconnect).
DESTINATION_SETTING = "notification_setting_id"
DESTINATION_DESCRIPTION = "Touchpoint"
# Backfill may wait out Paddle's rate limit; a lookup runs inside webhook processing and must not.
HISTORY_RETRIES, LOOKUP_RETRIES = 3, 0
TIMEOUT_SECONDS = 30.0


# --- the client ----------------------------------------------------------------------------------

def environment(credentials: Mapping[str, str]) -> Environment:
    """`environment` ("sandbox" or "production") when given, else from the key: Paddle's sandbox
    keys start with `pdl_sdbx_`; older keys without a prefix are taken as production."""
    named = (credentials.get(ENVIRONMENT) or "").strip().lower()
    if named in ("sandbox", "production"):
        return Environment.SANDBOX if named == "sandbox" else Environment.PRODUCTION
    if named:
        raise ValueError(f"environment must be 'sandbox' or 'production', not {named!r}")
    key = credentials.get(API_KEY) or ""
    return Environment.SANDBOX if key.startswith(SANDBOX_KEY_PREFIX) else Environment.PRODUCTION


def build_client(source: SourceContext, retries: int = HISTORY_RETRIES) -> Client | None:
    """The SDK client for this source, or None when it has no API key."""
    key = source.credentials.get(API_KEY)
    if not key:
        return None
    return Client(key, options=Options(environment(source.credentials)), retry_count=retries,
                  timeout=TIMEOUT_SECONDS)


class _RawItems:
    """A `requests` response hook keeping the JSON of every entity a response carries, by id."""

    def __init__(self) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}

    @classmethod
    def attach(cls, client: Client) -> _RawItems:
        raw = cls()
        session = client.client
        hooks = session.hooks.get("response") or []
        session.hooks["response"] = [*(hooks if isinstance(hooks, list) else [hooks]), raw]
        return raw

    def __call__(self, response: Response, *args: Any, **kwargs: Any) -> None:
        try:
            data = response.json().get("data")
        except (ValueError, AttributeError):
            return
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                self._by_id[item["id"]] = item

    def pop(self, entity_id: str) -> dict[str, Any]:
        return self._by_id.pop(entity_id)


# --- backfill ------------------------------------------------------------------------------------

def _as_utc(moment: datetime) -> datetime:
    """The SDK formats every date with a literal `Z`: hand it UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _notification(delivery_id: str, topic: str, occurred_at: datetime | None,
                  data: dict[str, Any]) -> Delivery:
    """An API entity dressed as the notification Paddle would have sent. The id is stable (entity
    id and state), so running backfill twice stores nothing new."""
    occurred = occurred_at or datetime.now(timezone.utc)
    payload = {"event_id": delivery_id, "event_type": topic,
               "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
               "notification_id": None, "data": data}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return Delivery(delivery_id=delivery_id, topic=topic, payload=payload, body=body,
                    occurred_at=occurred, headers={})


def _transactions(client: Client, raw: _RawItems, since: datetime) -> Iterator[Delivery]:
    listing = ListTransactions(
        pager=Pager(), statuses=[TransactionStatus.Completed, TransactionStatus.Paid],
        updated_at=DateComparison(since, Comparator.GTE))
    for txn in client.transactions.list(listing):
        data = raw.pop(txn.id)
        status = str(data.get("status"))
        yield _notification(f"backfill:{txn.id}:{status}", f"transaction.{status}",
                            parse_time(data.get("updated_at")), data)


def _adjustments(client: Client, raw: _RawItems, since: datetime) -> Iterator[Delivery]:
    """Paddle cannot filter adjustments by date: list the approved ones, keep those approved
    (updated) since `since`. An adjustment's status is final once approved, so the id is too."""
    listing = ListAdjustments(pager=Pager(), statuses=[AdjustmentStatus.Approved])
    for adjustment in client.adjustments.list(listing):
        data = raw.pop(adjustment.id)
        changed = parse_time(data.get("updated_at")) or parse_time(data.get("created_at"))
        if changed is None or changed < since:
            continue
        yield _notification(f"backfill:{adjustment.id}:approved", "adjustment.updated",
                            changed, data)


def fetch_history(source: SourceContext, since: datetime) -> Iterator[Delivery]:
    """Past sales, then the refunds and chargebacks on them (core accepts either order)."""
    client = build_client(source)
    if client is None:
        raise ConnectError("this Paddle source has no api_key; add one to backfill")
    raw = _RawItems.attach(client)
    since = _as_utc(since)
    yield from _transactions(client, raw, since)
    yield from _adjustments(client, raw, since)


# --- referral lookup -----------------------------------------------------------------------------

def lookup_referral(source: SourceContext, sale: Sale) -> Referral | None:
    """A Paddle discount id on the sale -> the discount's code, which is what partners are given.
    Best effort: Paddle unreachable or the discount gone means no extra hint, never a failure."""
    discount_ids = [c for c in sale.referral.promo_codes if c.startswith("dsc_")]
    client = build_client(source, retries=LOOKUP_RETRIES) if discount_ids else None
    if client is None:
        return None
    codes: list[str] = []
    for discount_id in discount_ids:
        try:
            code = client.discounts.get(discount_id).code
        except (ApiError, RequestException, KeyError, ValueError) as exc:
            log.warning("Paddle discount %s lookup failed: %s", discount_id, exc)
            continue
        if code:
            codes.append(code)
    return Referral(promo_codes=tuple(codes), evidence="discount") if codes else None


# --- connect / disconnect ------------------------------------------------------------------------

def _refused(exc: Exception) -> ConnectError:
    """A reason the merchant can act on."""
    if isinstance(exc, ApiError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return ConnectError(f"Paddle refused the API key ({exc.error_code}): {exc.detail}")
        return ConnectError(f"Paddle answered {exc.error_code}: {exc.detail}")
    return ConnectError(f"could not reach Paddle: {exc}")


def _manual_steps(source: SourceContext) -> tuple[str, ...]:
    add = (f"In Paddle > Developer tools > Notifications, add a destination for "
           f"{source.webhook_url} with these events: {', '.join(SUBSCRIBED_EVENTS)}.")
    secret = (f"If you connected with a placeholder webhook_secret, send the destination's secret "
              f"key with PATCH /api/v1/sources/{source.id}.")
    return (add, secret)


def connect(source: SourceContext) -> ConnectResult:
    """No API key: nothing to check, the merchant creates the destination (webhook secret given).
    API key and webhook secret: check the key with one cheap call. API key alone: create the
    notification destination (or reuse ours for this URL) and keep its secret key."""
    try:
        client = build_client(source, retries=LOOKUP_RETRIES)
    except ValueError as exc:
        raise ConnectError(str(exc)) from None
    if client is None:
        return ConnectResult(actions=_manual_steps(source))
    try:
        if source.webhook_secret:
            client.transactions.list(ListTransactions(pager=Pager(per_page=1)))
            return ConnectResult(actions=("Paddle API key checked.", *_manual_steps(source)))
        return _ensure_destination(client, source)
    except (ApiError, RequestException) as exc:
        raise _refused(exc) from None


def _ensure_destination(client: Client, source: SourceContext) -> ConnectResult:
    for setting in client.notification_settings.list():
        if setting.destination == source.webhook_url:
            return ConnectResult(
                webhook_secret=setting.endpoint_secret_key,
                actions=(f"Using the existing Paddle notification destination {setting.id}.",))
    created = client.notification_settings.create(CreateNotificationSetting(
        description=DESTINATION_DESCRIPTION, destination=source.webhook_url,
        subscribed_events=[EventTypeName(name) for name in SUBSCRIBED_EVENTS],
        type=NotificationSettingType.Url, include_sensitive_fields=False, api_version=1))
    done = f"Created the Paddle notification destination {created.id} for {source.webhook_url}."
    return ConnectResult(webhook_secret=created.endpoint_secret_key,
                         settings={DESTINATION_SETTING: created.id}, actions=(done,))


def disconnect(source: SourceContext) -> None:
    """Delete the destination Touchpoint created; one the merchant made is theirs to remove."""
    setting_id = source.settings.get(DESTINATION_SETTING)
    client = build_client(source, retries=LOOKUP_RETRIES) if setting_id else None
    if client is None:
        return
    try:
        client.notification_settings.delete(str(setting_id))
    except ApiError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return
        raise _refused(exc) from None
    except RequestException as exc:
        raise _refused(exc) from None
