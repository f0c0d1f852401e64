"""The storefront script in a real headless Chromium: a merchant page on www.shop.example,
Touchpoint on touchpoint.test, both served on loopback."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlmodel import select
from werkzeug.wrappers import Request, Response

from core import make_app
from core.db import get_db
from core.models import Click
from tests.browser import chromium, free_port, needs_chromium, serving
from tests.factories import new_program
from tests.fakes import fake

pytestmark = [needs_chromium, pytest.mark.browser]


class Merchant:
    """A tiny store: every path answers the same page with the script and checkout links, and
    /cart/update.js records what the script sent (like Shopify's cart API)."""

    def __init__(self, script_src: str) -> None:
        self.script_src = script_src
        self.cart_updates: list[dict] = []
        self.shopify = False

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        req = Request(environ)
        if req.path == "/cart/update.js":
            self.cart_updates.append(json.loads(req.get_data()))
            return Response("{}", content_type="application/json")(environ, start_response)
        shopify = "<script>window.Shopify = {shop: 'x'};</script>" if self.shopify else ""
        html = f"""<!doctype html><html><head>{shopify}<script src="{self.script_src}" async></script></head>
        <body><h1>Demo shop</h1>
        <a id="buy" href="https://buy.stripe.com/test_123">Buy</a>
        <form><input type="hidden" name="tp_click" id="hidden"></form>
        <script>setTimeout(() => {{ const a = document.createElement('a'); a.id = 'late';
          a.href = 'https://checkout.stripe.com/c/pay/cs_1'; document.body.appendChild(a); }}, 50);</script>
        </body></html>"""
        return Response(html, content_type="text/html")(environ, start_response)


@pytest.fixture
def stack(tmp_path, request):
    from tests.conftest import _sqlite_template  # noqa: F401  (the fixture below)

    template = request.getfixturevalue("_sqlite_template")
    db = tmp_path / "tp.db"
    shutil.copy(template, db)
    tp_port, shop_port = free_port(), free_port()
    base = f"http://touchpoint.test:{tp_port}"
    app = make_app({"database_url": f"sqlite:///{db}", "secret_key": "k", "base_url": base,
                    "var_dir": tmp_path, "testing": True}, (fake,))
    api = new_program(app, domain="shop.example")
    api.partner("Ann", key="ann")
    api.partner("Bob", key="bob")
    merchant = Merchant(f"{base}/t.js?pk={api.publishable_key}")
    with serving(app, tp_port), serving(merchant, shop_port), chromium() as browser:
        context = browser.new_context()
        yield {"app": app, "page": context.new_page(), "context": context, "merchant": merchant,
               "shop": f"http://www.shop.example:{shop_port}", "api": api,
               "other_shop": f"http://evil.example:{shop_port}"}
    app.extensions["touchpoint_db"].dispose()


def clicks(app) -> list[Click]:
    with app.app_context(), get_db().session() as s:
        return list(s.exec(select(Click).order_by(Click.created_at)))


def cookie(context, name="tp_click"):
    return {c["domain"]: c for c in context.cookies() if c["name"] == name}


def test_ref_visit_records_a_click_and_keeps_it(stack):
    page, app = stack["page"], stack["app"]
    page.goto(stack["shop"] + "/landing?ref=ann")
    click_id = page.evaluate("Touchpoint.ready")
    [c] = clicks(app)
    assert click_id == c.id and c.url.endswith("/landing?ref=ann")
    jar = cookie(stack["context"])
    assert jar[".shop.example"]["value"] == c.id  # shared by www.shop.example and shop.example
    assert jar[".shop.example"]["expires"] > __import__("time").time() + 29 * 86400
    page.wait_for_function("document.getElementById('late') && document.getElementById('late').href.includes('client_reference_id')")
    assert page.get_attribute("#buy", "href") == f"https://buy.stripe.com/test_123?client_reference_id={c.id}"
    assert page.input_value("#hidden") == c.id
    assert page.evaluate("Touchpoint.clickId()") == c.id
    Path("/tmp/tp-shots").mkdir(exist_ok=True)
    page.screenshot(path="/tmp/tp-shots/merchant.png")


def test_second_visit_chains_the_visitor_and_via_works(stack):
    page, app = stack["page"], stack["app"]
    page.goto(stack["shop"] + "/?ref=ann")
    first = page.evaluate("Touchpoint.ready")
    page.goto(stack["shop"] + "/?via=bob")
    second = page.evaluate("Touchpoint.ready")
    a, b = clicks(app)
    assert (a.id, b.id) == (first, second) and b.visitor_id == a.visitor_id == a.id


def test_tp_click_is_adopted_without_a_new_click(stack):
    page = stack["page"]
    page.goto(stack["shop"] + "/p?tp_click=clk_from_redirect")
    assert page.evaluate("Touchpoint.ready") == "clk_from_redirect"
    assert clicks(stack["app"]) == []
    assert cookie(stack["context"])[".shop.example"]["value"] == "clk_from_redirect"


def test_plain_visit_calls_nothing_and_shopify_cart_gets_the_attribute(stack):
    page, merchant = stack["page"], stack["merchant"]
    page.goto(stack["shop"] + "/")
    assert page.evaluate("Touchpoint.ready") is None and clicks(stack["app"]) == []
    merchant.shopify = True
    page.goto(stack["shop"] + "/?ref=ann")
    click_id = page.evaluate("Touchpoint.ready")
    page.wait_for_function("sessionStorage.getItem('tp_cart') !== null")
    assert merchant.cart_updates == [{"attributes": {"tp_click": click_id}}]


def test_other_domains_are_refused(stack):
    page = stack["page"]
    page.goto(stack["other_shop"] + "/?ref=ann")
    assert page.evaluate("Touchpoint.ready") is None
    assert clicks(stack["app"]) == [] and cookie(stack["context"]) == {}
