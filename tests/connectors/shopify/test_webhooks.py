"""connectors/shopify/webhooks.py: HMAC over the raw body, dedupe keys, shop domains."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest

from connectors.shopify.webhooks import account_from_headers, normalize_account, verify
from core.connectors import BadPayload, SignatureInvalid, SourceContext
from tests.conftest import fixture_bytes, fixture_json
from tests.connectors.shopify.helpers import SECRET, SHOP, headers

SOURCE = SourceContext(id="src_1", program_id="prg_1", platform="shopify", webhook_secret=SECRET,
                       account=SHOP)
RAW = fixture_bytes("shopify", "order.json")


def test_published_order_with_a_good_hmac():
    # The signature computed independently of the code under test.
    sig = base64.b64encode(hmac.new(SECRET.encode(), RAW, hashlib.sha256).digest()).decode()
    d = verify(SOURCE, {"X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "orders/paid",
                        "X-Shopify-Webhook-Id": "w-1", "X-Shopify-Shop-Domain": SHOP}, RAW)
    assert (d.topic, d.delivery_id, d.body) == ("orders/paid", "orders/paid:webhook:w-1", RAW)
    assert d.payload == fixture_json("shopify", "order.json")
    assert d.headers["x-shopify-shop-domain"] == SHOP and d.occurred_at is None


def test_header_names_are_case_insensitive():
    h = {k.upper(): v for k, v in headers(RAW, "orders/paid").items()}
    assert verify(SOURCE, h, RAW).topic == "orders/paid"


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda h, b: ({**h, "X-Shopify-Hmac-Sha256": "AAAA"}, b), id="forged"),
    pytest.param(lambda h, b: (h, b + b"\n"), id="body changed"),
    pytest.param(lambda h, b: ({k: v for k, v in h.items() if k != "X-Shopify-Hmac-Sha256"}, b),
                 id="missing"),
    pytest.param(lambda h, b: (headers(b, "orders/paid", secret="someone-else"), b), id="wrong secret"),
    pytest.param(lambda h, b: ({**h, "X-Shopify-Hmac-Sha256": ""}, b), id="empty"),
])
def test_forged_and_missing_signatures_are_refused(mutate):
    h, b = mutate(headers(RAW, "orders/paid"), RAW)
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, h, b)


def test_a_source_without_a_secret_accepts_nothing():
    with pytest.raises(SignatureInvalid):
        verify(SourceContext(id="s", program_id="p", platform="shopify", account=SHOP),
               headers(RAW, "orders/paid"), RAW)


def test_stale_replays_are_the_same_delivery():
    """Shopify signs no timestamp, so "stale" cannot be told from the signature: a replay of a
    captured delivery is refused by its dedupe key instead (the same key as the original)."""
    h = {**headers(RAW, "orders/paid", "w-1"), "X-Shopify-Event-Id": "e-1",
         "X-Shopify-Triggered-At": "2020-01-01T00:00:00Z"}
    assert verify(SOURCE, h, RAW).delivery_id == verify(SOURCE, dict(h), RAW).delivery_id


def test_dedupe_key_is_the_event_id_per_topic():
    base = {**headers(RAW, "orders/paid", "w-1"), "X-Shopify-Event-Id": "e-9"}
    first = verify(SOURCE, base, RAW).delivery_id
    assert first == "orders/paid:event:e-9"
    # A second subscription to the same topic: another webhook id, the same event.
    assert verify(SOURCE, {**base, "X-Shopify-Webhook-Id": "w-2"}, RAW).delivery_id == first
    # The same event firing another topic counts separately.
    other = {**headers(RAW, "orders/create", "w-3"), "X-Shopify-Event-Id": "e-9"}
    assert verify(SOURCE, other, RAW).delivery_id == "orders/create:event:e-9"
    # Neither id: the body's hash, stable across retries.
    bare = {k: v for k, v in headers(RAW, "orders/paid").items() if k != "X-Shopify-Webhook-Id"}
    assert verify(SOURCE, bare, RAW).delivery_id == verify(SOURCE, bare, RAW).delivery_id
    assert verify(SOURCE, bare, RAW).delivery_id.startswith("orders/paid:body:")


def test_triggered_at_with_nanoseconds():
    h = {**headers(RAW, "orders/paid"), "X-Shopify-Triggered-At": "2024-04-02T13:59:11.877041743Z"}
    assert verify(SOURCE, h, RAW).occurred_at == datetime(2024, 4, 2, 13, 59, 11, 877041, tzinfo=timezone.utc)
    h["X-Shopify-Triggered-At"] = "yesterday"
    assert verify(SOURCE, h, RAW).occurred_at is None


def test_bad_payloads():
    with pytest.raises(BadPayload):
        verify(SOURCE, headers(b"nope", "orders/paid"), b"nope")
    with pytest.raises(BadPayload):
        verify(SOURCE, headers(b"[1]", "orders/paid"), b"[1]")
    h = {k: v for k, v in headers(RAW, "orders/paid").items() if k != "X-Shopify-Topic"}
    with pytest.raises(BadPayload):
        verify(SOURCE, h, RAW)


def test_a_privacy_body_for_another_shop_is_refused():
    """Every shop of the public app shares the secret: a body naming shop A is refused when
    it arrives under shop B's header."""
    payload = fixture_json("shopify", "customers_redact.json")
    payload["shop_domain"] = "other.myshopify.com"
    raw = json.dumps(payload).encode()
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, headers(raw, "customers/redact"), raw)
    payload["shop_domain"] = SHOP
    raw = json.dumps(payload).encode()
    assert verify(SOURCE, headers(raw, "customers/redact"), raw).payload["customer"]["id"] == 191167


def test_shop_domains():
    assert normalize_account("https://Demo.myshopify.com/admin") == SHOP
    assert normalize_account("  demo.MYSHOPIFY.com ") == SHOP
    assert normalize_account("a.myshopify.com") == "a.myshopify.com"
    for bad in ("demo.example.com", "evil.com/x.myshopify.com", "", "-x.myshopify.com",
                "x-.myshopify.com", "a.b.myshopify.com", "demo", "demo.myshopify.com.evil.com"):
        with pytest.raises(ValueError):
            normalize_account(bad)
    assert account_from_headers({"x-shopify-shop-domain": "Demo.myshopify.com"}) == SHOP
    assert account_from_headers({"X-Shopify-Shop-Domain": "evil.example"}) is None
    assert account_from_headers({}) is None
