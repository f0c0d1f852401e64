"""connectors/shopify/client.py: ShopifyAPI's own code against a fake Shopify at the transport
(see fake.py for why `responses` cannot be used: the SDK speaks urllib, not requests)."""
from __future__ import annotations

import copy
import hashlib
import hmac
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import shopify

from connectors.shopify import client
from connectors.shopify.translate import translate
from core.connectors import ConnectError, SourceContext
from core.events import Referral, Sale
from core.money import Money
from tests.conftest import fixture_json
from tests.connectors.shopify.fake import FakeShopify
from tests.connectors.shopify.helpers import SHOP

KEY = "app-api-key"
SECRET = "shpss_0123456789abcdef0123456789abcdef"  # 32+ bytes: PyJWT warns on shorter HS256 keys
TOKEN = "shpat_token"
ADMIN = f"/admin/api/{client.API_VERSION}"
HOOK_URL = "https://tp.example/webhooks/shopify"


def source(**changes) -> SourceContext:
    values = dict(id="src_1", program_id="prg_1", platform="shopify", webhook_secret=SECRET,
                  account=SHOP, credentials={"shop": SHOP, "access_token": TOKEN},
                  settings={}, webhook_url=HOOK_URL)
    return SourceContext(**{**values, **changes})


@pytest.fixture
def fake():
    with FakeShopify() as f:
        yield f
    # No session may outlive a call.
    assert shopify.ShopifyResource.get_site() is None


def signed(params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    """Shopify's OAuth query HMAC, computed here independently of the SDK."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


# --- OAuth --------------------------------------------------------------------------------------

def test_permission_url_leaves_the_sdk_class_alone():
    url = client.oauth_permission_url(SHOP, KEY, SECRET, client.SCOPES,
                                      "https://tp.example/shopify/callback", "nonce-1")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", SHOP, "/admin/oauth/authorize")
    assert parse_qs(parts.query) == {"client_id": [KEY], "scope": ["read_orders"], "state": ["nonce-1"],
                                     "redirect_uri": ["https://tp.example/shopify/callback"]}
    assert shopify.Session.api_key is None and shopify.Session.secret is None


def test_callback_hmac_and_timestamp():
    fresh = {"code": "c0de", "shop": SHOP, "state": "nonce-1", "host": "YWRtaW4",
             "timestamp": str(int(time.time()))}
    assert client.validate_callback(signed(fresh), SECRET)
    assert not client.validate_callback(signed(fresh, "other-secret"), SECRET)
    assert not client.validate_callback({**signed(fresh), "shop": "evil.myshopify.com"}, SECRET)
    assert not client.validate_callback(fresh, SECRET)  # no hmac
    assert not client.validate_callback(signed({**fresh, "timestamp": "1577836800"}), SECRET)  # 2020
    assert not client.validate_callback(signed({**fresh, "timestamp": "soon"}), SECRET)


def test_exchange_code_for_an_offline_token(fake):
    fake.add("POST", "/admin/oauth/access_token", {"access_token": "shpat_new", "scope": "read_orders"})
    params = signed({"code": "c0de", "shop": SHOP, "timestamp": str(int(time.time()))})
    assert client.exchange_code(SHOP, params, KEY, SECRET) == "shpat_new"
    [call] = fake.calls
    assert call.url.startswith(f"https://{SHOP}/admin/oauth/access_token")
    assert parse_qs(call.body.decode()) == {"client_id": [KEY], "client_secret": [SECRET], "code": ["c0de"]}


def test_exchange_code_refusals(fake):
    with pytest.raises(ConnectError, match="HMAC"):
        client.exchange_code(SHOP, signed({"code": "c", "timestamp": "1"}), KEY, SECRET)
    assert fake.calls == []  # a forged callback never reaches Shopify
    fake.add("POST", "/admin/oauth/access_token", {"error": "invalid_request"}, status=400)
    params = signed({"code": "used", "shop": SHOP, "timestamp": str(int(time.time()))})
    with pytest.raises(ConnectError, match="refused"):
        client.exchange_code(SHOP, params, KEY, SECRET)


# --- session tokens -----------------------------------------------------------------------------

def session_token(secret=SECRET, aud=KEY, dest=f"https://{SHOP}", iss=None, exp_in=60, **extra):
    now = int(time.time())
    claims = {"iss": iss or f"{dest}/admin", "dest": dest, "aud": aud, "sub": "42",
              "exp": now + exp_in, "nbf": now - 5, "iat": now - 5, "jti": "j-1", "sid": "s-1", **extra}
    claims = {k: v for k, v in claims.items() if v is not None}
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def test_a_good_session_token():
    claims = client.decode_session_token(session_token(), KEY, SECRET)
    assert (claims["dest"], claims["aud"], claims["sub"]) == (f"https://{SHOP}", KEY, "42")


@pytest.mark.parametrize("header", [
    pytest.param(session_token(secret="another-secret-another-secret-xx"), id="signature"),
    pytest.param(session_token(aud="another-app"), id="aud"),
    pytest.param(session_token(iss="https://other.myshopify.com/admin"), id="iss-dest mismatch"),
    pytest.param(session_token(dest="https://evil.example", iss="https://evil.example/admin"), id="not a shop"),
    pytest.param(session_token(exp_in=-120), id="expired"),
    pytest.param(session_token(exp=None), id="no expiry"),
    pytest.param(session_token(sid=None), id="missing claim"),
    pytest.param(session_token().removeprefix("Bearer "), id="no Bearer"),
    pytest.param("Bearer not.a.jwt", id="garbage"),
    pytest.param(None, id="no header"),
])
def test_bad_session_tokens(header):
    with pytest.raises(client.SessionTokenInvalid):
        client.decode_session_token(header, KEY, SECRET)


# --- connect, webhooks, disconnect ---------------------------------------------------------------

def shop_and_webhooks(fake: FakeShopify, existing=()) -> None:
    fake.add("GET", f"{ADMIN}/shop.json", fixture_json("shopify", "shop.get.2024-04.json"))
    fake.add("GET", f"{ADMIN}/webhooks.json", {"webhooks": list(existing)})
    for n, topic in enumerate(client.WEBHOOK_TOPICS):
        fake.add("POST", f"{ADMIN}/webhooks.json",
                 {"webhook": {"id": 900 + n, "topic": topic, "address": HOOK_URL, "format": "json"}})


def test_connect_checks_the_token_and_registers_the_webhooks(fake):
    shop_and_webhooks(fake)
    result = client.connect(source())
    assert result.account == SHOP
    assert result.settings == {"webhook_ids": [900, 901, 902, 903], "currency": "USD"}
    assert "John Smith Test Store" in result.actions[0]
    assert all(c.headers["x-shopify-access-token"] == TOKEN for c in fake.calls)
    [listing] = fake.to("GET", f"{ADMIN}/webhooks.json")
    assert listing.query["address"] == [HOOK_URL]
    posts = fake.to("POST", f"{ADMIN}/webhooks.json")
    assert [p.json()["webhook"] for p in posts] == [
        {"topic": t, "address": HOOK_URL, "format": "json"} for t in client.WEBHOOK_TOPICS]


def test_registering_again_reuses_what_exists(fake):
    existing = [{"id": 700 + n, "topic": t, "address": HOOK_URL} for n, t in enumerate(client.WEBHOOK_TOPICS)]
    existing.append({"id": 799, "topic": "orders/paid", "address": "https://elsewhere.example/hook"})
    shop_and_webhooks(fake, existing[1:])
    ids = client.register_webhooks(source(), HOOK_URL)
    assert ids == [900, 701, 702, 703]  # only orders/paid was missing for this address
    assert len(fake.to("POST", f"{ADMIN}/webhooks.json")) == 1


def test_connect_refusals(fake):
    fake.add("GET", f"{ADMIN}/shop.json", {"errors": "[API] Invalid API key or access token"}, status=401)
    with pytest.raises(ConnectError, match="refused the access token"):
        client.connect(source())
    fake.routes.clear()
    fake.add("GET", f"{ADMIN}/shop.json", {"errors": "forbidden"}, status=403)
    with pytest.raises(ConnectError, match="read_orders"):
        client.connect(source())
    fake.routes.clear()
    shop_and_webhooks(fake)
    with pytest.raises(ConnectError, match="https"):
        client.connect(source(webhook_url="http://127.0.0.1:8000/webhooks/shopify"))
    assert fake.to("POST", f"{ADMIN}/webhooks.json") == []
    fake.routes.clear()
    fake.add("GET", f"{ADMIN}/shop.json", fixture_json("shopify", "shop.get.2024-04.json"))
    fake.add("GET", f"{ADMIN}/webhooks.json", {"webhooks": []})
    fake.add("POST", f"{ADMIN}/webhooks.json", {"errors": {"address": ["is invalid"]}}, status=422)
    with pytest.raises(ConnectError, match="address is invalid"):
        client.connect(source())


def test_connect_without_a_token_only_explains(fake):
    result = client.connect(source(credentials={"shop": SHOP}))
    assert result.account == SHOP and HOOK_URL in result.actions[0]
    assert fake.calls == []
    with pytest.raises(ConnectError):
        client.register_webhooks(source(credentials={}), HOOK_URL)


def test_disconnect_deletes_the_webhooks(fake):
    fake.add("DELETE", f"{ADMIN}/webhooks/900.json", {})
    fake.add("DELETE", f"{ADMIN}/webhooks/901.json", {"errors": "Not Found"}, status=404)  # already gone
    client.disconnect(source(settings={"webhook_ids": [900, 901]}))
    assert [c.path for c in fake.calls] == [f"{ADMIN}/webhooks/900.json", f"{ADMIN}/webhooks/901.json"]
    fake.add("DELETE", f"{ADMIN}/webhooks/902.json", {"errors": "boom"}, status=500)
    with pytest.raises(ConnectError, match="902"):
        client.disconnect(source(settings={"webhook_ids": [902]}))


# --- the customer journey -----------------------------------------------------------------------

SALE = Sale(order_id="450789469", amount=Money(100, "USD"), occurred_at=datetime(2026, 3, 1, tzinfo=timezone.utc))


def journey(first=None, last=None, ready=True):
    return {"data": {"order": {"customerJourneySummary": {"ready": ready, "firstVisit": first,
                                                          "lastVisit": last}}}}


def visit(landing=None, code=None):
    return {"landingPage": landing, "referralCode": code, "referrerUrl": None, "utmParameters": None}


@pytest.mark.parametrize("answer, expected", [
    (journey(last=visit("https://shop.example/p?tp_click=clk_1")), Referral(click_id="clk_1", evidence="customer_journey")),
    (journey(first=visit("https://shop.example/?utm_source=x", "bob")), Referral(ref="bob", evidence="customer_journey")),
    (journey(first=visit("https://shop.example/?ref=ann"), last=visit("https://shop.example/?via=cat")),
     Referral(ref="cat", evidence="customer_journey")),  # the last visit first
    (journey(first=visit(None, "dee")), Referral(ref="dee", evidence="customer_journey")),  # landing page withheld
    (journey(first=visit("https://shop.example/?source=newsletter", "newsletter")), None),  # a campaign name
    (journey(ready=False), None),
    ({"data": {"order": {"customerJourneySummary": None}}}, None),
    ({"data": {"order": None}, "errors": [{"message": "Access denied for customerJourneySummary"}]}, None),
])
def test_lookup_referral_reads_the_customer_journey(fake, answer, expected):
    fake.add("POST", f"{ADMIN}/graphql.json", answer)
    assert client.lookup_referral(source(), SALE) == expected
    [call] = fake.calls
    assert call.headers["x-shopify-access-token"] == TOKEN
    sent = call.json()
    assert sent["variables"] == {"id": "gid://shopify/Order/450789469"}
    assert "customerJourneySummary" in sent["query"] and "referralCode" in sent["query"]


def test_lookup_referral_never_fails_the_delivery(fake):
    fake.add("POST", f"{ADMIN}/graphql.json", {"errors": "Internal error"}, status=500)
    assert client.lookup_referral(source(), SALE) is None
    assert client.lookup_referral(source(credentials={}), SALE) is None
    assert len(fake.calls) == 1


# --- backfill -----------------------------------------------------------------------------------

def test_backfill_pages_through_orders(fake):
    partly_refunded = fixture_json("shopify", "order.get.2024-04.json")["order"]  # one refund inside
    authorized = fixture_json("shopify", "order.json")["order"]  # not paid: nothing
    authorized["id"] = 2
    cancelled = copy.deepcopy(partly_refunded)
    cancelled.update(id=3, refunds=[], financial_status="paid", cancelled_at="2026-03-03T10:00:00Z")
    nxt = f"https://{SHOP}{ADMIN}/orders.json?limit=250&page_info=cursor2"
    fake.add("GET", f"{ADMIN}/orders.json", {"orders": [partly_refunded, authorized]},
             headers={"Link": f'<{nxt}>; rel="next"'})
    fake.add("GET", f"{ADMIN}/orders.json", {"orders": [cancelled]})
    fake.add("GET", f"{ADMIN}/shop.json", fixture_json("shopify", "shop.get.2024-04.json"))

    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    deliveries = []
    for delivery in client.fetch_history(source(), since):
        deliveries.append(delivery)
        # Processing a delivery may use the API in between (the customer journey): the next
        # page must still be fetched with the shop's session.
        client.shop_details(SHOP, TOKEN)

    assert [(x.delivery_id, x.topic) for x in deliveries] == [
        ("backfill:order:450789469", "orders/paid"),
        ("backfill:refund:509562969", "refunds/create"),
        ("backfill:order:3", "orders/paid"),
        ("backfill:cancel:3", "orders/cancelled")]
    first, second = fake.to("GET", f"{ADMIN}/orders.json")
    assert first.query == {"status": ["any"], "updated_at_min": ["2026-01-01T00:00:00+00:00"],
                           "limit": ["250"]}
    assert second.query == {"limit": ["250"], "page_info": ["cursor2"]}
    assert all(c.headers["x-shopify-access-token"] == TOKEN for c in fake.calls)

    # The deliveries translate like the webhooks they stand for.
    [sale] = translate(deliveries[0])
    assert (sale.amount, sale.paid_total) == (Money(59700, "USD"), Money(59894, "USD"))
    [refund] = translate(deliveries[1])
    assert (refund.order_id, refund.refund_id, refund.amount) == ("450789469", "509562969", Money(20900, "USD"))
    assert translate(deliveries[3])[0].order_id == "3"


def test_backfill_is_stable_and_needs_a_token(fake):
    fake.add("GET", f"{ADMIN}/orders.json", {"orders": [fixture_json("shopify", "orders.json")["orders"][0]]})
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    once = [(x.delivery_id, x.body) for x in client.fetch_history(source(), since)]
    again = [(x.delivery_id, x.body) for x in client.fetch_history(source(), since)]
    assert once == again and len(once) == 1
    calls = len(fake.calls)
    assert list(client.fetch_history(source(credentials={}), since)) == []
    assert len(fake.calls) == calls
