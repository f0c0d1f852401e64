"""What is at rest in the database, read raw (every column of every table, as stored):

- platform credentials and webhook secrets are encrypted, API keys and passwords hashed: none of
  them appears anywhere in clear;
- no raw IP address is stored: not from clicks (short links, the click API, IPv4 and IPv6), not
  from platform payloads that carry a shopper's address;
- a privacy erasure really erases: after a shop's `customers/redact`, no email, name, phone,
  street, platform customer id or click address hash of that customer remains in any table, the
  webhook inbox's stored bodies and the data-request exports included; other customers keep
  theirs, and the money stays. `shop/redact` erases every customer of the shop.

Runs on SQLite and PostgreSQL, with the fake connector and Shopify's (whose published privacy
payloads drive the erasure).
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, select

from connectors.shopify.webhooks import signature
from core.db import get_db
from core.models import Click, Conversion, Program
from core.sources import attach_source
from core.users import create_user
from tests.conftest import fixture_json
from tests.core.test_journeys import click, set_click_time
from tests.factories import new_program, stored_clicks
from tests.fakes import fake, sign
from tests.reliability import figures  # noqa: F401 - the fixture

SHOP, APP_SECRET = "privacy.myshopify.com", "shpss_privacy_secret_0123456789abcdef"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def connectors():
    from connectors.shopify import connector as shopify

    return (fake, shopify)


@pytest.fixture
def app(db_url, tmp_path, connectors):
    from core import make_app

    application = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                            "base_url": "http://touchpoint.test", "var_dir": tmp_path,
                            "testing": True, "ratelimit_enabled": False}, connectors)
    yield application
    application.extensions["touchpoint_db"].dispose()


def everything(app: Any, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every table's rows as one text, values as the database returns them (bytes decoded)."""
    import core.models  # noqa: F401 - every table registered

    out = {}
    with app.app_context(), get_db().engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in skip:
                continue
            parts = []
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("utf-8", "replace")
                    elif isinstance(value, (dict, list)):
                        value = json.dumps(value)
                    parts.append(str(value))
            out[table.name] = "\n".join(parts)
    return out


def found(app: Any, needles: list[str], skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(table, needle) for every needle present anywhere, case-insensitively."""
    tables = everything(app, skip)
    return [(t, n) for t, body in tables.items() for n in needles if n.lower() in body.lower()]


# --- secrets ---------------------------------------------------------------------------------------

def test_credentials_keys_and_passwords_are_never_stored_in_clear(app, figures):  # noqa: F811
    api = new_program(app)
    secrets = [api.key, "fake_api_key_SENSITIVE_1", "whsec_SENSITIVE_2", "rotated_SENSITIVE_3",
               "whsec_rotated_SENSITIVE_4", "shpss_SENSITIVE_5", "owner password SENSITIVE 6"]
    src = api.ok("post", "/api/v1/sources", {"platform": "fake", "api_key": secrets[1],
                                             "webhook_secret": secrets[2]}, 201)
    api.ok("patch", f"/api/v1/sources/{src['id']}", {"api_key": secrets[3],
                                                     "webhook_secret": secrets[4]})
    api.ok("post", "/api/v1/sources", {"platform": "shopify", "shop": SHOP,
                                       "webhook_secret": secrets[5]}, 201)
    with app.app_context(), get_db().write() as s:
        create_user(s, api.program_id, "owner@shop.example", secrets[6])
    listed = json.dumps(api.ok("get", "/api/v1/sources"))
    assert not [x for x in secrets if x in listed]
    assert found(app, secrets) == []
    figures["secrets_checked"] += len(secrets)
    # ... and they are there, encrypted: the new secret is the one that verifies.
    body = json.dumps({"id": "d1", "topic": "noop", "at": NOW.isoformat()}).encode()
    resp = api.client.post(f"/webhooks/fake/{src['id']}", data=body,
                           headers={"X-Fake-Signature": sign(secrets[4], body)})
    assert resp.status_code == 200


# --- addresses -------------------------------------------------------------------------------------

ADDRESSES = ["203.0.113.77", "2001:db8::1234", "198.51.100.23", "192.0.2.55", "192.0.2.66"]


def _shopify_source(app: Any, api: Any) -> str:
    with app.app_context(), get_db().write() as s:
        return attach_source(s, s.get(Program, api.program_id), "shopify", SHOP, {},
                             APP_SECRET).id


def _shopify(api: Any, topic: str, payload: dict[str, Any], webhook_id: str) -> Any:
    raw = json.dumps(payload).encode()
    resp = api.client.post("/webhooks/shopify", data=raw, headers={
        "X-Shopify-Hmac-Sha256": signature(APP_SECRET, raw), "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": webhook_id,
        "Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "processed", resp.get_json()
    return resp


def _order(order_id: int, customer_id: int, email: str, first: str, last: str, phone: str,
           street: str, ip: str, click_id: str | None = None) -> dict[str, Any]:
    """The published sample order, as another customer's (fields changed in code)."""
    o = copy.deepcopy(fixture_json("shopify", "order.json")["order"])
    o["id"], o["email"], o["contact_email"], o["phone"] = order_id, email, email, phone
    o["processed_at"] = NOW.isoformat()
    o["customer"].update(id=customer_id, email=email, first_name=first, last_name=last, phone=phone)
    for key in ("billing_address", "shipping_address"):
        o[key].update(first_name=first, last_name=last, name=f"{first} {last}", phone=phone,
                      address1=street)
    o["browser_ip"] = ip
    o["client_details"]["browser_ip"] = ip
    if click_id:
        o["note_attributes"] = [{"name": "tp_click", "value": click_id}]
    # The sample's own phone number sits in more places (the customer's default address...).
    return json.loads(json.dumps(o).replace("555-625-1199", phone))


def test_no_raw_ip_address_is_stored(app, figures):  # noqa: F811
    api = new_program(app)
    ann = api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    link = api.ok("post", "/api/v1/links", {"partner_id": ann["id"], "url": "https://shop.example/p"}, 201)
    ua = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"}
    for ip in ADDRESSES[:2]:
        resp = api.client.post("/api/v1/track/click", json={
            "publishable_key": api.publishable_key, "ref": "ann", "url": "https://shop.example/"},
            headers=ua, environ_base={"REMOTE_ADDR": ip})
        assert resp.status_code == 200
    resp = api.client.get(f"/r/{link['key']}", headers=ua, environ_base={"REMOTE_ADDR": ADDRESSES[2]})
    assert resp.status_code == 302
    _shopify_source(app, api)
    _shopify(api, "orders/paid", _order(1001, 501, "ip@example.com", "Ivy", "Pham", "555-0101",
                                        "1 Main St", ADDRESSES[3]), "w-ip-1")
    # The fake platform too: an address in any field of any payload.
    src = api.ok("post", "/api/v1/sources", {"platform": "fake", "webhook_secret": "whsec"}, 201)
    body = json.dumps({"id": "ip-1", "topic": "sale", "order": "o-ip", "amount": 100,
                       "at": NOW.isoformat(), "visitor": {"ip": ADDRESSES[4]}}).encode()
    resp = api.client.post(f"/webhooks/fake/{src['id']}", data=body,
                           headers={"X-Fake-Signature": sign("whsec", body)})
    assert resp.status_code == 200 and resp.get_json()["status"] == "processed"
    clicks = stored_clicks(app)
    assert len(clicks) == 3 and all(c.ip_hash for c in clicks)  # hashed, not dropped
    assert found(app, ADDRESSES) == []
    figures["addresses_checked"] += len(ADDRESSES)


def test_the_rate_limiter_stores_no_raw_address(db_url, tmp_path, connectors):
    """Its counters are keyed per client address: hashed, as the clicks' (rate limits on)."""
    from core import make_app

    limited = make_app({"database_url": db_url, "secret_key": "k", "var_dir": tmp_path,
                        "testing": True, "base_url": "http://touchpoint.test"}, connectors)
    try:
        client = limited.test_client()
        client.post("/webhooks/fake/src_nope", data=b"{}", environ_base={"REMOTE_ADDR": ADDRESSES[0]})
        client.post("/admin/login", data={}, environ_base={"REMOTE_ADDR": ADDRESSES[0]})
        api = new_program(limited)
        api.partner("Ann", key="ann")
        client.post("/api/v1/track/click", json={"publishable_key": api.publishable_key,
                                                 "ref": "ann"}, environ_base={"REMOTE_ADDR": ADDRESSES[0]})
        assert found(limited, [ADDRESSES[0]]) == []
    finally:
        limited.extensions["touchpoint_db"].dispose()


# --- erasure ---------------------------------------------------------------------------------------

BOB = dict(order_id=2001, customer_id=191167, email="john@example.com", first="Johnathan",
           last="Erasable", phone="555-625-1199", street="42 Forget-Me Lane", ip=ADDRESSES[3])
KEEP = dict(order_id=2002, customer_id=777001, email="keep@example.com", first="Keepsake",
            last="Staysworth", phone="555-000-7777", street="7 Stay Road", ip=ADDRESSES[4])


def _shop_with_orders(app: Any) -> Any:
    api = new_program(app)
    api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    _shopify_source(app, api)
    c = click(api, ref="ann")
    set_click_time(app, c, NOW - timedelta(hours=1))
    _shopify(api, "orders/paid", _order(**BOB, click_id=c), "w-bob")
    _shopify(api, "orders/paid", _order(**KEEP), "w-keep")
    request = fixture_json("shopify", "customers_data_request.json")
    request["shop_domain"] = SHOP
    _shopify(api, "customers/data_request", request, "w-request")
    with app.app_context(), get_db().session() as s:
        api.click_hash = s.get(Click, c).ip_hash
    return api


def _traces(person: dict[str, Any]) -> list[str]:
    return [person["email"], person["first"], person["last"], person["phone"], person["street"],
            f":{person['customer_id']}"]  # the customer's platform id, as core namespaces it


def test_customer_redact_erases_every_trace_of_the_customer(app, figures):  # noqa: F811
    api = _shop_with_orders(app)
    needles = _traces(BOB) + [api.click_hash]
    assert {n for _, n in found(app, needles)} == set(needles)  # all there before
    redact = fixture_json("shopify", "customers_redact.json")
    redact["shop_domain"] = SHOP
    _shopify(api, "customers/redact", redact, "w-redact")
    assert found(app, needles) == []
    assert {n for _, n in found(app, _traces(KEEP))} == set(_traces(KEEP))  # others untouched
    with app.app_context(), get_db().session() as s:
        sales = {c.external_id: c for c in s.exec(select(Conversion))}
    assert sales["2001"].partner_id is not None and sales["2001"].commission > 0  # money stays
    figures["erasure_traces_checked"] += len(_traces(BOB)) + 1


def test_shop_redact_erases_every_customer_of_the_shop(app, figures):  # noqa: F811
    api = _shop_with_orders(app)
    payload = fixture_json("shopify", "shop_redact.json")
    payload["shop_domain"] = SHOP
    _shopify(api, "shop/redact", payload, "w-shop-redact")
    assert found(app, _traces(BOB) + _traces(KEEP) + [api.click_hash]) == []
    figures["erasure_traces_checked"] += len(_traces(BOB)) + len(_traces(KEEP)) + 1
