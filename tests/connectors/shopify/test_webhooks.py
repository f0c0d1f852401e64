import pytest

from connectors.shopify.webhooks import account_from_headers, normalize_shop, verify
from core.connectors import BadPayload, SignatureInvalid, SourceContext
from tests.conftest import fixture_bytes
from tests.connectors.shopify.helpers import SECRET, SHOP, headers

SOURCE = SourceContext(id="src_1", program_id="prg_1", platform="shopify", webhook_secret=SECRET,
                       account=SHOP)


def test_published_order_with_a_good_hmac():
    raw = fixture_bytes("shopify", "order.json")
    d = verify(SOURCE, headers(raw, "orders/paid", "w-1"), raw)
    assert (d.topic, d.delivery_id) == ("orders/paid", "webhook:w-1")
    h = {**headers(raw, "orders/paid"), "X-Shopify-Event-Id": "e-9"}
    assert verify(SOURCE, h, raw).delivery_id == "orders/paid:event:e-9"


@pytest.mark.parametrize("mutate", [
    lambda h, b: ({**h, "X-Shopify-Hmac-Sha256": "AAAA"}, b),
    lambda h, b: (h, b + b"\n"),
    lambda h, b: ({k: v for k, v in h.items() if k != "X-Shopify-Hmac-Sha256"}, b),
    lambda h, b: (headers(b, "orders/paid", secret="someone-else"), b),
])
def test_forged_hmacs_are_refused(mutate):
    raw = fixture_bytes("shopify", "order.json")
    h, b = mutate(headers(raw, "orders/paid"), raw)
    with pytest.raises(SignatureInvalid):
        verify(SOURCE, h, b)


def test_bad_payloads():
    with pytest.raises(BadPayload):
        verify(SOURCE, headers(b"nope", "orders/paid"), b"nope")
    raw = fixture_bytes("shopify", "order.json")
    h = {k: v for k, v in headers(raw, "orders/paid").items() if k != "X-Shopify-Topic"}
    with pytest.raises(BadPayload):
        verify(SOURCE, h, raw)


def test_shop_domains():
    assert normalize_shop("https://Demo.myshopify.com/admin") == "demo.myshopify.com"
    for bad in ("demo.example.com", "evil.com/x.myshopify.com", "", "-x.myshopify.com"):
        with pytest.raises(ValueError):
            normalize_shop(bad)
    assert account_from_headers({"x-shopify-shop-domain": "Demo.myshopify.com"}) == SHOP
    assert account_from_headers({"X-Shopify-Shop-Domain": "evil.example"}) is None
