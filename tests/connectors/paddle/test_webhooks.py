"""connectors.paddle.webhooks: Paddle-Signature checked by the SDK's Verifier, clock checked here.

The known-good vectors are the SDK's own (tests/fixtures/SOURCES.md, "Known-good Paddle vectors");
fresh signatures for modified bodies are made here with hmac, independently of the SDK.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest
from werkzeug.datastructures import Headers

from connectors.paddle import webhooks
from connectors.paddle.webhooks import TOLERANCE_SECONDS, verify
from core.connectors import BadPayload, SignatureInvalid, SourceContext
from tests.conftest import fixture_bytes, fixture_json

SECRET = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"
STANDARD = ("signature_standard_payload.json",
            "ts=1710498758;h1=558bf93944dbeb4790c7a8af6cb2ea435c8ca9c8396aafc1a4e37424ac132744")
SPECIAL = ("signature_special_chars_payload.json",
           "ts=1710498288;h1=38219b3ba1578184e625c29d201a27cd25bd69e2ec9c3ab87dcb90d87ff73a41")
NOW = 1_710_500_000  # a fixed clock for bodies signed here


def source(secret: str | None = SECRET) -> SourceContext:
    return SourceContext(id="src_1", program_id="prg_1", platform="paddle", webhook_secret=secret)


def vector(name: str) -> bytes:
    return fixture_bytes("paddle", name).strip()


def sign(body: bytes, ts: int = NOW, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return f"ts={ts};h1={digest}"


def fresh(body: bytes, ts: int = NOW, **kwargs):  # type: ignore[no-untyped-def]
    return verify(source(), {"Paddle-Signature": sign(body, ts)}, body, now=lambda: NOW, **kwargs)


@pytest.mark.parametrize("name,header", [STANDARD, SPECIAL])
def test_published_vectors_are_accepted_with_the_clock_check_relaxed(name, header):
    body = vector(name)
    delivery = verify(source(), {"Paddle-Signature": header}, body, tolerance=None)
    expected = json.loads(body)
    assert delivery.delivery_id == expected["event_id"]
    assert delivery.topic == "customer.created"
    assert delivery.payload == expected
    assert delivery.payload["notification_id"].startswith("ntf_")
    assert delivery.body == body
    assert delivery.occurred_at == datetime.fromisoformat(expected["occurred_at"])
    assert delivery.occurred_at.tzinfo is not None


@pytest.mark.parametrize("name,header", [STANDARD, SPECIAL])
def test_published_vectors_are_stale_under_the_default_tolerance(name, header):
    ts = int(header.split(";")[0].removeprefix("ts="))
    body = vector(name)
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify(source(), {"Paddle-Signature": header}, body, now=lambda: ts + TOLERANCE_SECONDS + 1)
    # just inside the window the same request passes: the refusal above was the clock alone
    assert verify(source(), {"Paddle-Signature": header}, body,
                  now=lambda: ts + TOLERANCE_SECONDS - 1).topic == "customer.created"


def test_default_tolerance_is_five_minutes_and_applies_both_ways():
    assert TOLERANCE_SECONDS == 300
    body = vector(STANDARD[0])
    with pytest.raises(SignatureInvalid):
        fresh(body, ts=NOW - 301)
    with pytest.raises(SignatureInvalid):
        fresh(body, ts=NOW + 301)
    assert fresh(body, ts=NOW - 299).delivery_id == json.loads(body)["event_id"]


def test_the_sdk_test_mode_variable_cannot_switch_the_clock_check_off(monkeypatch):
    monkeypatch.setenv("TEST_MODE", "1")
    with pytest.raises(SignatureInvalid):
        fresh(vector(STANDARD[0]), ts=NOW - 3600)


def test_header_name_is_case_insensitive_and_werkzeug_headers_work():
    body = vector(STANDARD[0])
    assert verify(source(), {"paddle-signature": STANDARD[1]}, body, tolerance=None)
    headers = Headers([("PADDLE-SIGNATURE", STANDARD[1]), ("Content-Type", "application/json")])
    delivery = verify(source(), headers, body, tolerance=None)
    assert delivery.headers["paddle-signature"] == STANDARD[1]


def test_any_of_several_h1_signatures_may_match():
    body = vector(STANDARD[0])
    good = sign(body)
    header = f"ts={NOW};h1={'0' * 64};{good.split(';')[1]}"
    assert verify(source(), {"Paddle-Signature": header}, body, now=lambda: NOW)


def test_forged_body_is_refused():
    body = vector(STANDARD[0]).replace(b"John Doe", b"Jane Doe")
    assert body != vector(STANDARD[0])
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(source(), {"Paddle-Signature": STANDARD[1]}, body, tolerance=None)


def test_wrong_secret_is_refused():
    body = vector(STANDARD[0])
    with pytest.raises(SignatureInvalid):
        verify(source(SECRET + "x"), {"Paddle-Signature": STANDARD[1]}, body, tolerance=None)


def test_forged_timestamp_is_refused():
    """Moving the timestamp into the window breaks the HMAC, which covers it."""
    body = vector(STANDARD[0])
    digest = STANDARD[1].split(";")[1]
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(source(), {"Paddle-Signature": f"ts={NOW};{digest}"}, body, now=lambda: NOW)


@pytest.mark.parametrize("headers", [
    {},
    {"Paddle-Signature": ""},
    {"Paddle-Signature": "garbage"},
    {"Paddle-Signature": f"ts={NOW}"},
    {"Paddle-Signature": "ts=abc;h1=00"},
    {"Paddle-Signature": f"ts={NOW};v1=00"},
    {"Paddle-Signature": f"ts={NOW};h1=a=b"},
    {"Stripe-Signature": f"t={NOW},v1=00"},
])
def test_missing_or_malformed_signature_is_refused(headers):
    with pytest.raises(SignatureInvalid):
        verify(source(), headers, vector(STANDARD[0]), now=lambda: NOW)


def test_source_without_secret_refuses_everything():
    with pytest.raises(SignatureInvalid, match="no webhook secret"):
        verify(source(None), {"Paddle-Signature": STANDARD[1]}, vector(STANDARD[0]),
               tolerance=None)


def test_body_that_is_not_utf8_cannot_be_verified():
    body = b"\xff\xfe{}"
    with pytest.raises(SignatureInvalid):
        fresh(body)


@pytest.mark.parametrize("body", [
    b"not json",
    b"[1, 2]",
    b'"a string"',
])
def test_signed_body_that_is_not_a_json_object_is_bad_payload(body):
    with pytest.raises(BadPayload):
        fresh(body)


@pytest.mark.parametrize("field,value", [
    ("event_id", None), ("event_id", ""), ("event_type", None), ("event_type", 7),
    ("occurred_at", "yesterday"), ("occurred_at", None), ("data", None), ("data", [1]),
])
def test_signed_notification_missing_its_envelope_is_bad_payload(field, value):
    payload = fixture_json("paddle", "transaction.completed.json")
    payload[field] = value
    with pytest.raises(BadPayload):
        fresh(json.dumps(payload).encode())


def test_whole_published_notification_signed_fresh_is_accepted_with_event_id_as_key():
    body = fixture_bytes("paddle", "transaction.completed.json")
    delivery = fresh(body)
    payload = json.loads(body)
    assert delivery.delivery_id == payload["event_id"] == "evt_01h8e1jxjnw9ra6zarhnz1a7y1"
    assert delivery.topic == "transaction.completed"
    assert delivery.occurred_at == datetime(2023, 8, 22, 7, 15, 45, 366122, tzinfo=timezone.utc)
    assert delivery.payload["data"]["id"] == "txn_01h8dzxgkvdwemdhbpcapj2tbj"


def test_a_replayed_notification_of_the_same_event_has_the_same_delivery_id():
    payload = fixture_json("paddle", "transaction.completed.json")
    first = fresh(json.dumps(payload).encode())
    payload["notification_id"] = "ntf_replayed"
    second = fresh(json.dumps(payload).encode())
    assert first.delivery_id == second.delivery_id


def test_module_constant_is_the_default():
    assert verify.__kwdefaults__["tolerance"] == webhooks.TOLERANCE_SECONDS
