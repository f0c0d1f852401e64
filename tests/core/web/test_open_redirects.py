"""No redirect of Touchpoint's leads off the sites it may lead to: short links (`/r/<key>`) only
ever to the program's allowed domains, the admin's `next` only within /admin, the Shopify
install flow only to the shop's own myshopify domain, and the embedded page framed only by
Shopify. Crafted keys, URLs, `next` values and `shop` parameters are never a 5xx either.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.core.web.test_admin import csrf_token, login, make_user
from tests.factories import new_program
from tests.fakes import fake
from tests.reliability import figures  # noqa: F401 - the fixture

APP_KEY, APP_SECRET = "app-key", "app-secret-for-redirects-0123456789"

EVIL_URLS = [
    "https://evil.example/", "http://evil.example", "https://shop.example.evil.example/",
    "https://evil.example/shop.example", "https://shop.example@evil.example/",
    "https://evil.example\\@shop.example/", "//evil.example/", "///evil.example",
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "https:evil.example",
    "https://evil.example%2F@shop.example/", "https://shop.example%00.evil.example/",
    "https://xn--shp-example-evil.example/", "ftp://shop.example/", "https://shop.example:evil@x/",
    "https://shop.example.", "\thttps://evil.example", "https://ѕhop.example/",
]
EVIL_NEXT = [
    "https://evil.example/", "//evil.example", "/\\evil.example", "\\\\evil.example",
    "/%2F%2Fevil.example", "https:evil.example", "/admin\r\nSet-Cookie: x=1", "/admin\nLocation: //evil.example",
    "javascript:alert(1)", "/admin/../../\\evil.example", " //evil.example", "/\t/evil.example",
]


@pytest.fixture
def connectors():
    from connectors.shopify import connector as shopify

    return (fake, shopify)


@pytest.fixture
def app(db_url, tmp_path, connectors):
    from core import make_app

    application = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                            "base_url": "https://tp.example", "var_dir": tmp_path,
                            "testing": True, "ratelimit_enabled": False,
                            "shopify_api_key": APP_KEY, "shopify_api_secret": APP_SECRET}, connectors)
    yield application
    application.extensions["touchpoint_db"].dispose()


def stays_local(location: str | None, prefix: str = "/") -> bool:
    """A Location a browser resolves on this site, under `prefix`."""
    if location is None:
        return True
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        return parts.scheme in ("http", "https") and parts.netloc in ("tp.example", "localhost") \
            and parts.path.startswith(prefix)
    return location.startswith(prefix) and not location.startswith("//") and "\\" not in location \
        and not re.search(r"[\x00-\x20]", location)


def test_links_are_only_made_and_followed_to_allowed_domains(app, figures):  # noqa: F811
    api = new_program(app)
    ann = api.partner("Ann", key="ann")
    for url in EVIL_URLS:
        resp = api.post("/api/v1/links", json={"partner_id": ann["id"], "url": url})
        assert resp.status_code < 500, url
        if resp.status_code == 201:  # whatever was accepted must lead to an allowed host
            follow = api.client.get(f"/r/{resp.get_json()['key']}")
            host = (urlsplit(follow.headers.get("Location", "")).hostname or "").rstrip(".")
            assert follow.status_code == 404 or host == "shop.example" \
                or host.endswith(".shop.example"), (url, follow.headers)
        figures["link_urls_tried"] += 1
    good = api.ok("post", "/api/v1/links", {"partner_id": ann["id"],
                                            "url": "https://shop.example/p?x=1#top"}, 201)
    for suffix in ("?url=https://evil.example", "?next=//evil.example&tp_click=forged",
                   "/../evil", "%0d%0aLocation:%20https://evil.example", "?redirect=javascript:x"):
        resp = api.client.get(f"/r/{good['key']}{suffix}")
        assert resp.status_code in (302, 404), (suffix, resp.status_code)
        if resp.status_code == 302:
            target = urlsplit(resp.headers["Location"])
            assert (target.scheme, target.hostname, target.path) == ("https", "shop.example", "/p")
            assert target.query.startswith("x=1&tp_click=clk_") and "forged" not in target.query
        figures["short_link_requests"] += 1
    for key in ("..", "%2F%2Fevil.example", "evil.example", "x\r\nLocation: //evil", "a" * 2000):
        resp = api.client.get(f"/r/{key}")
        # 404; or Werkzeug's 308 merging doubled slashes, which stays on this site.
        assert resp.status_code in (404, 308) and stays_local(resp.headers.get("Location"), "/r/"), key
        figures["short_link_requests"] += 1
    # A domain the program no longer allows: its existing links stop redirecting.
    api.ok("patch", "/api/v1/program", {"allowed_domains": ["other-shop.example"]})
    app.extensions["touchpoint"]["clicks"]._links._data.clear()  # no waiting for the cache
    assert api.client.get(f"/r/{good['key']}").status_code == 404


def test_a_short_link_key_with_a_nul_byte_is_a_404(app):
    resp = app.test_client().get("/r/%00")
    assert resp.status_code == 404


def test_admin_next_stays_in_the_admin(app, figures):  # noqa: F811
    api = new_program(app)
    email = make_user(app, api.program_id)
    for nxt in EVIL_NEXT:
        client = app.test_client()
        token = csrf_token(client, "/admin/login")
        resp = client.post("/admin/login", query_string={"next": nxt},
                           data={"email": email, "password": "correct horse battery",
                                 "csrf_token": token})
        assert resp.status_code == 302, (nxt, resp.status_code)
        assert stays_local(resp.headers.get("Location"), "/admin"), (nxt, resp.headers["Location"])
        figures["next_values_tried"] += 1
    # Signed out, a page sends to the login with a `next` of itself, which is kept.
    resp = app.test_client().get("/admin/conversions?status=held")
    assert resp.status_code == 302 and "next=/admin/conversions" in resp.headers["Location"]


def test_shopify_install_only_leads_to_the_shop(app, figures):  # noqa: F811
    client = app.test_client()
    for shop in ("evil.example", "evil.example/x.myshopify.com", "x.myshopify.com.evil.example",
                 "x.myshopify.com@evil.example", "//evil.example", "x.myshopify.com/../evil",
                 "x.myshopify.com%2F@evil.example", "x.myshopify.com\r\nLocation: //evil", "",
                 "https://evil.example/?x=.myshopify.com", "*.myshopify.com"):
        resp = client.get("/shopify/install", query_string={"shop": shop})
        assert resp.status_code in (302, 400), shop
        if resp.status_code == 302:  # a pasted URL of a shop is read as that shop, nothing else
            target = urlsplit(resp.headers["Location"])
            assert target.scheme == "https" and re.fullmatch(
                r"[a-z0-9-]+\.myshopify\.com", target.hostname or ""), (shop, resp.headers["Location"])
        resp = client.get("/shopify/callback", query_string={"shop": shop, "code": "c",
                                                            "hmac": "00", "timestamp": "1"})
        assert resp.status_code in (400, 401) and "Location" not in resp.headers, shop
        figures["shop_values_tried"] += 1
    resp = client.get("/shopify/install", query_string={"shop": "Good-Shop.myshopify.com"})
    target = urlsplit(resp.headers["Location"])
    assert (resp.status_code, target.scheme, target.hostname) == (302, "https", "good-shop.myshopify.com")


@pytest.mark.parametrize("shop", [
    "* x.myshopify.com", "https://evil.example x.myshopify.com", "x.myshopify.com; script-src *",
    "evil.example/.myshopify.com", "'none' x.myshopify.com",
])
def test_only_shopify_may_frame_the_embedded_page(app, shop):
    resp = app.test_client().get("/shopify/app", query_string={"shop": shop})
    policy = resp.headers["Content-Security-Policy"]
    sources = policy.removeprefix("frame-ancestors").strip().rstrip(";").split()
    assert all(re.fullmatch(r"https://([a-z0-9-]+\.myshopify\.com|admin\.shopify\.com)", s)
               for s in sources), policy
    assert ";" not in policy.rstrip(";"), policy
