from datetime import datetime, timezone

import pytest

from connectors.woocommerce.webhooks import verify
from core.connectors import BadPayload, SignatureInvalid, SourceContext
from tests.conftest import fixture_bytes, fixture_json
from tests.connectors.woocommerce.helpers import SECRET, body, headers, order

SOURCE = SourceContext(id="src_1", program_id="prg_1", platform="woocommerce", webhook_secret=SECRET)


def test_good_signature_parses_the_order():
    raw = fixture_bytes("woocommerce", "order.retrieve_an_order.json")
    d = verify(SOURCE, headers(raw, delivery="54"), raw)
    assert (d.topic, d.delivery_id, d.payload["id"]) == ("order.updated", "142:54", 727)
    assert d.occurred_at.tzinfo is timezone.utc


def test_published_delivery_signature_shape():
    """The sample delivery's headers name the same fields we read."""
    sample = fixture_json("woocommerce", "webhook_delivery.order.updated.json")
    assert {"X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID"} <= set(sample["request_headers"])


@pytest.mark.parametrize("mutate", [
    lambda h, b: ({**h, "X-WC-Webhook-Signature": "AAAA"}, b),
    lambda h, b: (h, b + b" "),
    lambda h, b: ({k: v for k, v in h.items() if k != "X-WC-Webhook-Signature"}, b),
    lambda h, b: ({**h, "X-WC-Webhook-Signature": headers(b, secret="other")["X-WC-Webhook-Signature"]}, b),
])
def test_forged_signatures_are_refused(mutate):
    raw = body(order())
    h, b = mutate(headers(raw), raw)
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, h, b)


def test_creation_ping_is_a_harmless_delivery():
    d = verify(SOURCE, {"Content-Type": "application/x-www-form-urlencoded"}, b"webhook_id=142")
    assert (d.topic, d.delivery_id, d.payload) == ("ping", "ping:142", None)
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {}, b"webhook_id=142&status=completed")


def test_bad_bodies():
    for raw in (b"not json", b"[1, 2]"):
        with pytest.raises(BadPayload):
            verify(SOURCE, headers(raw), raw)
    raw = body(order())
    h = {k: v for k, v in headers(raw).items() if k != "X-WC-Webhook-Topic"}
    with pytest.raises(BadPayload):
        verify(SOURCE, h, raw)


def test_header_names_are_case_insensitive():
    raw = body(order())
    lower = {k.lower(): v for k, v in headers(raw).items()}
    assert verify(SOURCE, lower, raw).topic == "order.updated"
    assert datetime.now(timezone.utc)
