"""connectors/stripe/webhooks.py: signatures through the SDK, bodies parsed into deliveries."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
import stripe
from werkzeug.datastructures import Headers

from connectors.stripe.webhooks import verify
from core.connectors import BadPayload, SignatureInvalid, SourceContext
from tests.conftest import fixture_bytes

SECRET = "whsec_test_secret"
SOURCE = SourceContext(id="src_1", program_id="prg_1", platform="stripe", webhook_secret=SECRET)


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        body.decode("utf-8"), secret, timestamp=at if at is not None else int(time.time()))


def test_good_signature_gives_the_event():
    body = fixture_bytes("stripe", "event.json")
    delivery = verify(SOURCE, {"Stripe-Signature": sign(body)}, body)
    assert delivery.delivery_id == "evt_1Pgc76B7WZ01zgkWwyRHS12y"
    assert delivery.topic == "plan.created"
    assert delivery.occurred_at == datetime.fromtimestamp(1234567890, tz=timezone.utc)
    assert delivery.payload == json.loads(body)
    assert delivery.body == body


def test_headers_are_case_insensitive_and_werkzeug_headers_work():
    body = fixture_bytes("stripe", "event.json")
    headers = Headers([("STRIPE-SIGNATURE", sign(body))])
    assert verify(SOURCE, headers, body).topic == "plan.created"
    assert verify(SOURCE, {"stripe-signature": sign(body)}, body).topic == "plan.created"


def test_one_of_several_v1_signatures_is_enough():
    body = fixture_bytes("stripe", "event.json")
    good = sign(body)
    header = good.replace("v1=", "v1=" + "0" * 64 + ",v1=")
    assert verify(SOURCE, {"Stripe-Signature": header}, body).delivery_id.startswith("evt_")


def test_forged_signature_is_refused():
    body = fixture_bytes("stripe", "event.json")
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {"Stripe-Signature": sign(body, secret="whsec_someone_else")}, body)


def test_tampered_body_is_refused():
    body = fixture_bytes("stripe", "event.json")
    header = sign(body)
    tampered = body.replace(b'"amount": 2000', b'"amount": 9000')
    assert tampered != body
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {"Stripe-Signature": header}, tampered)


def test_missing_signature_is_refused():
    body = fixture_bytes("stripe", "event.json")
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {}, body)
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {"Stripe-Signature": "garbage"}, body)


def test_stale_signature_is_refused():
    body = fixture_bytes("stripe", "event.json")
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {"Stripe-Signature": sign(body, at=int(time.time()) - 301)}, body)


def test_within_tolerance_is_accepted():
    body = fixture_bytes("stripe", "event.json")
    assert verify(SOURCE, {"Stripe-Signature": sign(body, at=int(time.time()) - 200)}, body)


def test_source_without_secret_refuses_everything():
    body = fixture_bytes("stripe", "event.json")
    no_secret = SourceContext(id="src_1", program_id="prg_1", platform="stripe")
    with pytest.raises(SignatureInvalid):
        verify(no_secret, {"Stripe-Signature": sign(body)}, body)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"object": "event"}',
                                  b'{"id": "evt_1", "type": "x"}'])
def test_signed_but_unparseable_body_is_bad_payload(body: bytes):
    with pytest.raises(BadPayload):
        verify(SOURCE, {"Stripe-Signature": sign(body)}, body)


@pytest.mark.parametrize("created", [664660350510, -10**15])
def test_a_created_time_that_is_no_date_is_bad_payload(created: int):
    """Found by the mutation stress test: year 23032 overflowed into a 500."""
    event = json.loads(fixture_bytes("stripe", "event.json"))
    body = json.dumps({**event, "created": created}).encode()
    with pytest.raises(BadPayload, match="not a date"):
        verify(SOURCE, {"Stripe-Signature": sign(body)}, body)


def test_non_utf8_body_is_bad_payload():
    with pytest.raises(BadPayload):
        verify(SOURCE, {"Stripe-Signature": "t=1,v1=00"}, b"\xff\xfe")
