"""Outgoing webhooks, part 2: endpoints, signatures and the dispatcher.

Endpoints are registered by the merchant (API or /admin/webhooks); each gets its own random
secret (`whsec_...`), kept encrypted with the credentials vault because it must be read back to
sign. `core.outbox` queues one `OutgoingDelivery` per endpoint and event in the transaction of
the change; `dispatch_due` (from `touchpoint jobs run`) sends them.

Signature (the scheme Stripe and Svix made familiar): the header
`Touchpoint-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>`.
The receiver recomputes it over the raw body, compares in constant time, and refuses a `t` too
far from its clock (replays); `verify_signature` is that check, for receivers written in Python
and for our tests. `Touchpoint-Event-Id` lets a receiver drop the repeats a retry can cause.

Delivery: 2xx is success; anything else, a timeout or a refused connection is logged as an
attempt (status code, duration, error) and retried after `BACKOFF_SECONDS * 2**(attempts-1)`
(1 min, 2, 4, ... capped at 6 h) until `MAX_ATTEMPTS`, then the delivery is `failed`; the admin
page and `POST /api/v1/webhook-deliveries/{id}/retry` queue it again. Once an endpoint fails in a
run, its other due deliveries wait with it (no attempt counted), so a dead endpoint costs one
request per backoff period rather than a timeout per queued event. Each delivery is claimed
with a conditional UPDATE before it is sent, so two dispatchers never send the same attempt, and
the HTTP request runs outside any database transaction (a slow receiver holds no lock).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import update
from sqlmodel import Session, select

from core.db import Database
from core.errors import ApiError, not_found
from core.ids import new_id
from core.models import OutgoingAttempt, OutgoingDelivery, OutgoingEvent, WebhookEndpoint
from core.schemas import (
    WebhookAttemptOut, WebhookDeliveryOut, WebhookEndpointIn, WebhookEndpointOut,
    WebhookEndpointPatch,
)
from core.security import Vault

SIGNATURE_HEADER = "Touchpoint-Signature"
MAX_ATTEMPTS = 10
BACKOFF_SECONDS = 60
MAX_BACKOFF = timedelta(hours=6)
TIMEOUT_SECONDS = 10
LEASE = timedelta(minutes=2)  # a claimed delivery is not claimed again for this long
TOLERANCE_SECONDS = 300


# --- signing -------------------------------------------------------------------------------------

def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Touchpoint-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None,
                     tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse old timestamps."""
    parts: dict[str, list[str]] = {}
    for piece in header.split(","):
        key, _, value = piece.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        stamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - stamp) > tolerance:
        return False
    expected = sign(secret, body, stamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after `attempts` failed ones: 1, 2, 4, ... minutes, ≤ 6 h."""
    return min(timedelta(seconds=BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


# --- endpoints -----------------------------------------------------------------------------------

def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ApiError("invalid_request", "url: must be an absolute http(s) URL, like "
                       "https://example.com/touchpoint-events")
    return url.strip()


def create_endpoint(s: Session, vault: Vault, program_id: str,
                    data: WebhookEndpointIn) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (shown to the merchant once, in this answer)."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(id=new_id("we"), program_id=program_id, url=_check_url(data.url),
                               description=data.description, events=sorted(set(data.events)),
                               secret_encrypted=vault.encrypt({"secret": secret}))
    s.add(endpoint)
    s.flush()
    return endpoint, secret


def rotate_secret(s: Session, vault: Vault, endpoint: WebhookEndpoint) -> str:
    """A new secret, from now on: deliveries sent after this are signed with it."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.secret_encrypted = vault.encrypt({"secret": secret})
    s.add(endpoint)
    return secret


def get_endpoint(s: Session, program_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = s.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.program_id != program_id or endpoint.status == "deleted":
        raise not_found("webhook endpoint")
    return endpoint


def update_endpoint(s: Session, endpoint: WebhookEndpoint,
                    patch: WebhookEndpointPatch) -> WebhookEndpoint:
    values = patch.model_dump(exclude_unset=True)
    for name, value in values.items():
        if value is None and name != "description":
            raise ApiError("invalid_request", f"{name}: may not be null")
    if "url" in values:
        values["url"] = _check_url(values["url"])
    if "events" in values:
        values["events"] = sorted(set(values["events"]))
    for name, value in values.items():
        setattr(endpoint, name, value)
    s.add(endpoint)
    return endpoint


def delete_endpoint(s: Session, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Soft delete: the delivery log keeps naming it; nothing more is queued or sent to it."""
    endpoint.status = "deleted"
    s.add(endpoint)
    return endpoint


def endpoint_secret(vault: Vault, endpoint: WebhookEndpoint) -> str:
    return str(vault.decrypt(endpoint.secret_encrypted)["secret"])


def endpoint_out(e: WebhookEndpoint, secret: str | None = None) -> WebhookEndpointOut:
    return WebhookEndpointOut(id=e.id, url=e.url, description=e.description,
                              events=list(e.events or []), status=e.status,
                              created_at=e.created_at, secret=secret)


# --- the delivery log ----------------------------------------------------------------------------

def delivery_out(s: Session, d: OutgoingDelivery,
                 attempts: list[OutgoingAttempt] | None = None) -> WebhookDeliveryOut:
    if attempts is None:
        attempts = list(s.exec(select(OutgoingAttempt).where(OutgoingAttempt.delivery_id == d.id)
                               .order_by(OutgoingAttempt.at, OutgoingAttempt.id)))
    event = s.get(OutgoingEvent, d.event_id)
    return WebhookDeliveryOut(
        id=d.id, endpoint_id=d.endpoint_id, event_id=d.event_id, event_type=d.event_type,
        status=d.status, attempts=d.attempts,  # type: ignore[arg-type]
        next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code, last_error=d.last_error,
        delivered_at=d.delivered_at, created_at=d.created_at,
        payload=event.payload if event else {},
        attempt_log=[WebhookAttemptOut(at=a.at, status_code=a.status_code,
                                       duration_ms=a.duration_ms, error=a.error)
                     for a in attempts])


def get_delivery(s: Session, program_id: str, delivery_id: str) -> OutgoingDelivery:
    d = s.get(OutgoingDelivery, delivery_id)
    if d is None or d.program_id != program_id:
        raise not_found("webhook delivery")
    return d


def retry_delivery(s: Session, d: OutgoingDelivery,
                   now: datetime | None = None) -> OutgoingDelivery:
    """Queue a delivery again now (a failed one gets a fresh round of attempts)."""
    if d.status == "succeeded":
        raise ApiError("already_delivered", f"delivery {d.id} already succeeded", 409)
    endpoint = s.get(WebhookEndpoint, d.endpoint_id)
    if endpoint is None or endpoint.status != "active":
        raise ApiError("endpoint_inactive", "the endpoint is disabled or deleted; enable it first",
                       409)
    d.status = "pending"
    d.next_attempt_at = now or datetime.now(timezone.utc)
    if d.attempts >= MAX_ATTEMPTS:
        d.attempts = 0
    s.add(d)
    return d


# --- dispatching ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    delivery_id: str
    program_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    url: str
    secret: str
    body: bytes
    attempts: int


def _claim(db: Database, vault: Vault, now: datetime, limit: int) -> list[Claimed]:
    """Take up to `limit` due deliveries: each claim is a conditional UPDATE that moves
    `next_attempt_at` past a lease, so a concurrent dispatcher skips what this one took."""
    claimed = []
    with db.write() as s:
        rows = s.exec(
            select(OutgoingDelivery, WebhookEndpoint, OutgoingEvent)
            .join(WebhookEndpoint, WebhookEndpoint.id == OutgoingDelivery.endpoint_id)
            .join(OutgoingEvent, OutgoingEvent.id == OutgoingDelivery.event_id)
            .where(OutgoingDelivery.status == "pending", OutgoingDelivery.next_attempt_at <= now,
                   WebhookEndpoint.status == "active")
            .order_by(OutgoingDelivery.next_attempt_at, OutgoingDelivery.created_at,
                      OutgoingDelivery.id)  # due first; of equals, the older event first
            .limit(limit)).all()
        for d, endpoint, event in rows:
            took = s.execute(
                update(OutgoingDelivery)
                .where(OutgoingDelivery.id == d.id, OutgoingDelivery.status == "pending",
                       OutgoingDelivery.next_attempt_at == d.next_attempt_at)
                .values(next_attempt_at=now + LEASE)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if took == 1:
                body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True).encode()
                claimed.append(Claimed(d.id, d.program_id, d.endpoint_id, d.event_id,
                                       d.event_type, endpoint.url,
                                       endpoint_secret(vault, endpoint), body, d.attempts))
    return claimed


def _send(http: requests.Session, c: Claimed) -> tuple[int | None, int, str | None]:
    """POST one delivery: (status code or None, milliseconds, error or None)."""
    stamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "Touchpoint-Webhooks/1",
               SIGNATURE_HEADER: sign(c.secret, c.body, stamp),
               "Touchpoint-Event-Id": c.event_id, "Touchpoint-Event-Type": c.event_type,
               "Touchpoint-Delivery-Id": c.delivery_id}
    started = time.perf_counter()
    try:
        resp = http.post(c.url, data=c.body, headers=headers, timeout=TIMEOUT_SECONDS,
                         allow_redirects=False)
    except requests.RequestException as exc:
        ms = int((time.perf_counter() - started) * 1000)
        return None, ms, f"{type(exc).__name__}: {exc}"[:500]
    ms = int((time.perf_counter() - started) * 1000)
    if 200 <= resp.status_code < 300:
        return resp.status_code, ms, None
    return resp.status_code, ms, f"HTTP {resp.status_code}: {resp.text[:200]}"


def _postpone(db: Database, c: Claimed, until: datetime) -> None:
    """Not sent: its endpoint just failed in this run. It waits as long as that delivery's
    backoff, with no attempt counted, so a dead endpoint costs one probe per period, not one
    timeout per queued event."""
    with db.write() as s:
        s.execute(update(OutgoingDelivery)
                  .where(OutgoingDelivery.id == c.delivery_id,
                         OutgoingDelivery.status == "pending")
                  .values(next_attempt_at=until)
                  .execution_options(synchronize_session=False))


def _record(db: Database, c: Claimed, code: int | None, ms: int, error: str | None,
            now: datetime) -> OutgoingDelivery:
    with db.write() as s:
        s.add(OutgoingAttempt(program_id=c.program_id, delivery_id=c.delivery_id, at=now,
                              status_code=code, duration_ms=ms, error=error))
        d = s.get(OutgoingDelivery, c.delivery_id)
        assert d is not None
        d.attempts += 1
        d.last_status_code, d.last_error = code, error
        if error is None:
            d.status, d.delivered_at, d.next_attempt_at = "succeeded", now, None
        elif d.attempts >= MAX_ATTEMPTS:
            d.status, d.next_attempt_at = "failed", None
        else:
            d.status, d.next_attempt_at = "pending", now + backoff(d.attempts)
        s.add(d)
        return d


def dispatch_due(db: Database, vault: Vault, now: datetime | None = None, limit: int = 500,
                 http: requests.Session | None = None,
                 clock: Callable[[], datetime] | None = None) -> dict[str, int]:
    """Send every due delivery once; returns {"sent", "failed", "retrying", "postponed"}.
    After an endpoint fails, its other deliveries of this run wait with it (`_postpone`)."""
    clock = clock or (lambda: datetime.now(timezone.utc))
    now = now or clock()
    counts = {"sent": 0, "failed": 0, "retrying": 0, "postponed": 0}
    down: dict[str, datetime] = {}
    claimed = _claim(db, vault, now, limit)
    if not claimed:
        return counts
    own = http is None
    http = http or requests.Session()
    try:
        for c in claimed:
            if c.endpoint_id in down:
                _postpone(db, c, down[c.endpoint_id])
                counts["postponed"] += 1
                continue
            code, ms, error = _send(http, c)
            d = _record(db, c, code, ms, error, max(now, clock()))
            counts["sent" if d.status == "succeeded" else
                   "failed" if d.status == "failed" else "retrying"] += 1
            if error is not None:
                down[c.endpoint_id] = d.next_attempt_at or now + backoff(d.attempts)
    finally:
        if own:
            http.close()
    return counts


def recent_deliveries(s: Session, program_id: str, limit: int = 50,
                      **filters: Any) -> list[OutgoingDelivery]:
    stmt = select(OutgoingDelivery).where(OutgoingDelivery.program_id == program_id)
    for name, value in filters.items():
        if value:
            stmt = stmt.where(getattr(OutgoingDelivery, name) == value)
    newest = (OutgoingDelivery.created_at.desc(),  # type: ignore[attr-defined]
              OutgoingDelivery.id.desc())  # type: ignore[attr-defined]
    return list(s.exec(stmt.order_by(*newest).limit(limit)))
