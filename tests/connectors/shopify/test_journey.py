"""The Shopify app end to end, against a faked Shopify at the transport (the SDK's own code
runs), on SQLite and PostgreSQL: install, orders with a cart attribute, a landing ref, a discount
code and only a customer journey, a partial refund, a cancellation, uninstall, redact; forged
HMACs and session tokens refused; a custom app connecting by token; backfill."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import shopify
from sqlmodel import select

from connectors.shopify import connector as shopify_connector
from connectors.shopify.client import API_VERSION
from core.backfill import run as backfill
from core.db import get_db
from core.models import Click, Conversion, Customer, PersonalDataExport, Program, Source
from tests.conftest import fixture_json
from tests.connectors.shopify.fake import FakeShopify
from tests.connectors.shopify.helpers import SECRET, SHOP, body, headers, order, refund
from tests.factories import Api

KEY = "app-api-key"
ADMIN = f"/admin/api/{API_VERSION}"


@pytest.fixture
def connectors():
    return (shopify_connector,)


@pytest.fixture
def app(db_url, tmp_path, connectors):
    from core import make_app

    application = make_app({"database_url": db_url, "secret_key": "test", "testing": True,
                            "base_url": "https://tp.example", "var_dir": tmp_path,
                            "shopify_api_key": KEY, "shopify_api_secret": SECRET}, connectors)
    yield application
    application.extensions["touchpoint_db"].dispose()


def fake_shop() -> FakeShopify:
    fake = FakeShopify()
    fake.add("POST", "/admin/oauth/access_token", {"access_token": "shpat_1", "scope": "read_orders"})
    fake.add("GET", f"{ADMIN}/shop.json", fixture_json("shopify", "shop.get.2024-04.json"))
    fake.add("GET", f"{ADMIN}/webhooks.json", {"webhooks": []})
    fake.add("POST", f"{ADMIN}/webhooks.json", {"webhook": {"id": 901, "topic": "orders/paid"}})
    return fake


def install(client) -> FakeShopify:
    resp = client.get(f"/shopify/install?shop={SHOP}")
    assert resp.status_code == 302
    target = urlsplit(resp.headers["Location"])
    query = parse_qs(target.query)
    assert target.netloc == SHOP and target.path == "/admin/oauth/authorize"
    assert query["client_id"] == [KEY] and query["redirect_uri"] == ["https://tp.example/shopify/callback"]
    params = {"code": "c0de", "shop": SHOP, "state": query["state"][0], "timestamp": str(int(time.time()))}
    shopify.Session.setup(api_key=KEY, secret=SECRET)
    params["hmac"] = shopify.Session.calculate_hmac(params)
    with fake_shop() as fake:
        resp = client.get("/shopify/callback", query_string=params)
    assert resp.status_code == 302 and resp.headers["Location"] == f"https://{SHOP}/admin/apps/{KEY}"
    return fake


def session_token(secret: str = SECRET, aud: str = KEY, dest: str = f"https://{SHOP}") -> str:
    now = int(time.time())
    return jwt.encode({"iss": f"{dest}/admin", "dest": dest, "aud": aud, "sub": "1", "exp": now + 60,
                       "nbf": now - 5, "iat": now, "jti": "j", "sid": "s"}, secret, algorithm="HS256")


def deliver(client, topic, payload, webhook_id, secret=SECRET):
    raw = body(payload)
    return client.post("/webhooks/shopify", data=raw, headers=headers(raw, topic, webhook_id, secret))


def program(app) -> Program:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(Program)).one()


def conv(app, order_id):
    with app.app_context(), get_db().session() as s:
        return s.exec(select(Conversion).where(Conversion.external_id == str(order_id))).one()


def test_install_creates_the_program_and_registers_webhooks(app):
    client = app.test_client()
    fake = install(client)
    prog = program(app)
    assert (prog.name, prog.currency) == ("John Smith Test Store", "USD")
    posts = [c for c in fake.calls if c[0] == "POST" and c[1].endswith("/webhooks.json")]
    assert len(posts) == 4
    assert b"https://tp.example/webhooks/shopify" in posts[0][2]
    with app.app_context(), get_db().session() as s:
        src = s.exec(select(Source)).one()
        assert (src.account, src.status, src.settings["webhook_ids"]) == (SHOP, "active", [901] * 4)
        assert "shpat_1" not in src.secrets_encrypted


def test_callback_refuses_bad_hmac_and_state(app):
    client = app.test_client()
    client.get(f"/shopify/install?shop={SHOP}")
    params = {"code": "c", "shop": SHOP, "state": "x", "timestamp": str(int(time.time())), "hmac": "00"}
    assert client.get("/shopify/callback", query_string=params).status_code == 401
    shopify.Session.setup(api_key=KEY, secret=SECRET)
    params.pop("hmac")
    params["hmac"] = shopify.Session.calculate_hmac(params)
    assert client.get("/shopify/callback", query_string=params).status_code == 401  # state
    assert client.get("/shopify/install?shop=evil.example").status_code == 400


def test_order_journey(app):
    client = app.test_client()
    install(client)
    prog = program(app)
    from core.db import get_db as _db
    from core.programs import rotate_secret_key
    with app.app_context(), _db().write() as s:
        key = rotate_secret_key(s, s.get(Program, prog.id))
    api = Api(client, prog.id, key, prog.publishable_key)
    ann, bob, cat = api.partner("Ann", key="ann"), api.partner("Bob", key="bob"), api.partner("Cat", key="cat")
    api.ok("post", "/api/v1/promo-codes", {"partner_id": cat["id"], "code": "CAT10"})
    api.reward(event="sale", value=10)
    clk = client.post("/api/v1/track/click", json={"publishable_key": prog.publishable_key,
                                                   "ref": "ann"}).get_json()["click_id"]
    with app.app_context(), get_db().write() as s:
        s.get(Click, clk).created_at = datetime(2026, 3, 1, tzinfo=timezone.utc)

    assert deliver(client, "orders/paid", order(1, click=clk), "w1").status_code == 200
    assert deliver(client, "orders/paid", order(1, click=clk), "w1").get_json()["duplicate"]
    r2 = deliver(client, "orders/paid", order(2, landing="/?ref=bob"), "w2")
    assert r2.status_code == 200, r2.get_json()
    assert r2.get_json()["status"] == "processed", r2.get_json()
    assert deliver(client, "orders/paid", order(3, codes=("cat10",)), "w3").status_code == 200
    c1, c2, c3 = conv(app, 1), conv(app, 2), conv(app, 3)
    assert (c1.partner_id, c1.commission, c1.attribution["evidence"]) == (ann["id"], 3980, "note_attributes")
    assert (c2.partner_id, c2.attribution["evidence"]) == (bob["id"], "landing_site")
    assert (c3.partner_id, c3.attribution["touch"]) == (cat["id"], "promo_code")

    # No evidence on the order: the customer journey from the Admin GraphQL API.
    o4 = order(4, landing="")
    with FakeShopify() as fake:
        fake.add("POST", f"{ADMIN}/graphql.json", {"data": {"order": {"customerJourneySummary": {
            "firstVisit": {"landingPage": "https://shop.example/?utm_source=x", "referralCode": "bob"},
            "lastVisit": None}}}})
        deliver(client, "orders/paid", o4, "w4")
    c4 = conv(app, 4)
    assert (c4.partner_id, c4.attribution["evidence"]) == (bob["id"], "customer_journey")

    # A partial refund of 209.00 of 409.94, then a cancellation of another order.
    deliver(client, "refunds/create", refund(1, 77, "209.00"), "w5")
    assert (conv(app, 1).commission, conv(app, 1).status) == (1951, "partially_refunded")
    deliver(client, "orders/cancelled", order(3), "w6")
    assert (conv(app, 3).commission, conv(app, 3).status) == (0, "reversed")

    # Privacy: a data request exports, a redact erases.
    req = fixture_json("shopify", "customers_data_request.json")
    req["customer"], req["shop_domain"] = {"id": 10, "email": "c1@example.com"}, SHOP
    deliver(client, "customers/data_request", req, "w7")
    with app.app_context(), get_db().session() as s:
        [export] = s.exec(select(PersonalDataExport)).all()
        assert export.data["customers"][0]["email"] == "c1@example.com"
        assert len(export.data["customers"][0]["conversions"]) == 1
    red = fixture_json("shopify", "customers_redact.json")
    red["customer"], red["shop_domain"] = {"id": 10, "email": "c1@example.com"}, SHOP
    deliver(client, "customers/redact", red, "w8")
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(Customer).where(Customer.email == "c1@example.com")).all() == []
    assert conv(app, 1).commission == 1951  # the money stays

    # Forged HMACs change nothing; uninstall stops counting; shop/redact erases everyone.
    assert deliver(client, "orders/paid", order(9), "w9", secret="forged").status_code == 401
    deliver(client, "app/uninstalled", {"id": 1}, "w10")
    resp = deliver(client, "orders/paid", order(10, click=clk), "w11")
    assert resp.status_code == 200 and "not active" in resp.get_json()["ignored"]
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(Conversion).where(Conversion.external_id == "10")).first() is None


def test_shop_redact_erases_the_shop(app):
    client = app.test_client()
    install(client)
    deliver(client, "orders/paid", order(1), "w1")
    redact = {**fixture_json("shopify", "shop_redact.json"), "shop_domain": SHOP}
    deliver(client, "shop/redact", redact, "w2")
    with app.app_context(), get_db().session() as s:
        assert all(c.email is None for c in s.exec(select(Customer)))


def test_embedded_app_needs_a_valid_session_token(app):
    client = app.test_client()
    install(client)
    page = client.get(f"/shopify/app?shop={SHOP}&host=x")
    assert page.status_code == 200 and b"app-bridge.js" in page.data and KEY.encode() in page.data
    good = client.get("/shopify/app/data", headers={"Authorization": f"Bearer {session_token()}"})
    assert good.status_code == 200 and good.get_json()["program"]["currency"] == "USD"
    for bad in (session_token(secret="wrong"), session_token(aud="other-app"),
                session_token(dest="https://other.myshopify.com"), "garbage"):
        resp = client.get("/shopify/app/data", headers={"Authorization": f"Bearer {bad}"})
        assert resp.status_code in (401, 404), bad
    made = client.post("/shopify/app/partners", json={"name": "Dee", "email": "dee@x.example"},
                       headers={"Authorization": f"Bearer {session_token()}"})
    assert made.status_code == 201
    changed = client.patch("/shopify/app/settings", json={"attribution_model": "first_touch"},
                           headers={"Authorization": f"Bearer {session_token()}"})
    assert changed.get_json()["attribution_model"] == "first_touch"
    auth = {"Authorization": f"Bearer {session_token()}"}
    dee = made.get_json()["id"]
    assert client.post("/shopify/app/links", json={"partner_id": dee, "url": "https://shop.apple.com/x"},
                       headers=auth).status_code == 201
    assert client.post("/shopify/app/links", json={"partner_id": dee, "url": "https://evil.example/"},
                       headers=auth).status_code == 400
    assert client.post("/shopify/app/promo-codes", json={"partner_id": dee, "code": "DEE5"},
                       headers=auth).status_code == 201
    assert client.post("/shopify/app/rewards", json={"type": "percent", "value": 15},
                       headers=auth).status_code == 201
    setup = client.get("/shopify/app/setup", headers=auth).get_json()
    assert [len(setup[k]) for k in ("links", "promo_codes", "rewards")] == [1, 1, 1]
    assert client.get("/shopify/app/setup").status_code == 401


def test_custom_app_connects_with_a_token_and_backfills(app):
    from tests.factories import new_program

    api = new_program(app)
    api.partner("Cat", key="cat")
    api.ok("post", "/api/v1/promo-codes", {"partner_id": api.get("/api/v1/partners").get_json()["data"][0]["id"], "code": "TENOFF"})
    api.reward(event="sale", value=10)
    with fake_shop():
        src = api.ok("post", "/api/v1/sources", {"platform": "shopify", "shop": "Demo.myshopify.com",
                                                 "access_token": "shpat_custom",
                                                 "webhook_secret": SECRET}, 201)
    assert src["account"] == SHOP and src["webhook_url"] == "https://tp.example/webhooks/shopify"
    with FakeShopify() as fake:
        fake.add("GET", f"{ADMIN}/shop.json", {"errors": "Invalid API key"}, status=401)
        bad = api.post("/api/v1/sources", json={"platform": "shopify", "shop": "other.myshopify.com",
                                               "access_token": "x", "webhook_secret": "y"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "connect_failed"
    orders = fixture_json("shopify", "orders.json")["orders"]
    for o in orders:
        o["financial_status"] = "paid"
        o["discount_codes"] = [{"code": "tenoff", "amount": "10.00"}]
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with app.app_context():
        for expected_new in (len(orders), 0):
            with FakeShopify() as fake:
                fake.add("GET", f"{ADMIN}/orders.json", {"orders": orders})
                counts = backfill(src["id"], since, progress=False)
            assert counts["new"] == expected_new and counts["failed"] == 0
    with app.app_context(), get_db().session() as s:
        convs = s.exec(select(Conversion)).all()
        assert len(convs) == len(orders) and all(c.partner_id for c in convs)
