from datetime import timezone

import pytest

from connectors.woocommerce import translate, webhooks
from connectors.woocommerce.webhooks import verify
from core.connectors import BadPayload, SignatureInvalid, SourceContext
from tests.conftest import fixture_bytes, fixture_json
from tests.connectors.woocommerce.helpers import SECRET, body, headers, order

SOURCE = SourceContext(id="src_1", program_id="prg_1", platform="woocommerce", webhook_secret=SECRET,
                       settings={"webhook_ids": [142, 143, 144, 145]})
CONNECTING = SourceContext(id="src_1", program_id="prg_1", platform="woocommerce", webhook_secret=SECRET)


def test_good_signature_parses_the_order():
    raw = fixture_bytes("woocommerce", "order.retrieve_an_order.json")
    d = verify(SOURCE, headers(raw, delivery="54"), raw)
    assert (d.topic, d.payload["id"]) == ("order.updated", 727)
    assert d.delivery_id.startswith("142:54:") and d.occurred_at.tzinfo is timezone.utc
    assert d.headers["x-wc-webhook-topic"] == "order.updated"
    assert "x-wc-webhook-signature" not in d.headers


def test_signature_is_base64_hmac_sha256_of_the_raw_body():
    # A known vector, computed independently: HMAC-SHA256("key", "The quick brown fox jumps
    # over the lazy dog") in base64.
    assert webhooks.signature("key", b"The quick brown fox jumps over the lazy dog") == \
        "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="


def test_delivery_ids_are_stable_and_keep_same_second_deliveries_apart():
    a, b = body(order(status="processing")), body(order(status="completed"))
    first = verify(SOURCE, headers(a, delivery="d1"), a).delivery_id
    assert verify(SOURCE, headers(a, delivery="d1"), a).delivery_id == first  # a resend: one row
    # WooCommerce's id is wp_hash(webhook id + second): a second change within that second
    # comes with the same id and must not be taken for a duplicate.
    assert verify(SOURCE, headers(b, delivery="d1"), b).delivery_id != first
    h = {k: v for k, v in headers(a).items() if k != "X-WC-Webhook-Delivery-ID"}
    assert verify(SOURCE, h, a).delivery_id == verify(SOURCE, h, a).delivery_id


def test_published_delivery_uses_the_headers_we_read():
    sample = fixture_json("woocommerce", "webhook_delivery.order.updated.json")
    assert {"X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID",
            "X-WC-Webhook-ID"} <= set(sample["request_headers"])


@pytest.mark.parametrize("mutate", [
    lambda h, b: ({**h, "X-WC-Webhook-Signature": "AAAA"}, b),
    lambda h, b: (h, b + b" "),
    lambda h, b: (h, b.replace(b'"29.35"', b'"2935.00"')),
    lambda h, b: ({k: v for k, v in h.items() if k != "X-WC-Webhook-Signature"}, b),
    lambda h, b: ({**h, "X-WC-Webhook-Signature": ""}, b),
    lambda h, b: ({**h, "X-WC-Webhook-Signature": headers(b, secret="other")["X-WC-Webhook-Signature"]}, b),
], ids=["garbage", "body-changed", "amount-changed", "missing", "empty", "other-secret"])
def test_forged_or_missing_signatures_are_refused(mutate):
    raw = body(order())
    h, b = mutate(headers(raw), raw)
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, h, b)


def test_a_source_without_secret_refuses_everything_signed():
    raw = body(order())
    no_secret = SourceContext(id="s", program_id="p", platform="woocommerce")
    with pytest.raises(SignatureInvalid):
        verify(no_secret, headers(raw), raw)


def test_replayed_delivery_is_the_same_delivery():
    """WooCommerce signs no timestamp, so staleness cannot be checked; a replay is a duplicate."""
    raw = body(order(status="cancelled"))
    h = headers(raw, delivery="old")
    assert verify(SOURCE, h, raw).delivery_id == verify(SOURCE, dict(h), raw).delivery_id


def test_creation_ping_is_a_harmless_delivery():
    # `WC_Webhook::deliver_ping`: form body, no X-WC-* header, no signature.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    d = verify(SOURCE, form, b"webhook_id=142")
    assert (d.topic, d.delivery_id, d.payload) == ("ping", "ping:142", None)
    assert translate.translate(d) == []
    # while connecting, the source does not know its webhook ids yet
    assert verify(CONNECTING, form, b"webhook_id=999").topic == "ping"


@pytest.mark.parametrize("raw", [
    b"webhook_id=142&status=completed", b"webhook_id=abc", b"webhook_id=", b"webhook_id=1" + b"0" * 25,
    body(order()), b'{"webhook_id": 142}',
])
def test_unsigned_bodies_other_than_the_ping_are_refused(raw):
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {"X-WC-Webhook-Topic": "order.updated"}, raw)


def test_unsigned_ping_of_a_webhook_that_is_not_ours_is_refused():
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {}, b"webhook_id=999")


def test_a_ping_claiming_an_order_topic_is_still_only_a_ping():
    d = verify(SOURCE, {"X-WC-Webhook-Topic": "order.updated"}, b"webhook_id=143")
    assert d.topic == "ping" and translate.translate(d) == []


def test_a_signed_ping_is_checked():
    raw = b"webhook_id=142"
    assert verify(SOURCE, {"X-WC-Webhook-Signature": webhooks.signature(SECRET, raw)}, raw).topic == "ping"
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, {"X-WC-Webhook-Signature": webhooks.signature("other", raw)}, raw)


def test_bad_bodies():
    for raw in (b"not json", b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(BadPayload):
            verify(SOURCE, headers(raw), raw)
    raw = body(order())
    h = {k: v for k, v in headers(raw).items()
         if k not in ("X-WC-Webhook-Topic", "X-WC-Webhook-Resource", "X-WC-Webhook-Event")}
    with pytest.raises(BadPayload):
        verify(SOURCE, h, raw)


def test_topic_from_resource_and_event_when_the_topic_header_is_missing():
    raw = body(order())
    h = {k: v for k, v in headers(raw, topic="order.deleted").items() if k != "X-WC-Webhook-Topic"}
    assert verify(SOURCE, h, raw).topic == "order.deleted"


def test_header_names_are_case_insensitive():
    raw = body(order())
    lower = {k.lower(): v for k, v in headers(raw).items()}
    upper = {k.upper(): v for k, v in headers(raw).items()}
    assert verify(SOURCE, lower, raw).topic == verify(SOURCE, upper, raw).topic == "order.updated"
