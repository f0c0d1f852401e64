"""The storefront script (`/t.js`) in a real headless Chromium: the merchant's pages live on
http://www.shop.example:PORT (a tiny WSGI app here), Touchpoint on http://touchpoint.test:PORT2;
Chromium maps both names to 127.0.0.1 (see tests/browser.py), so cookies have real domains and
the click API is a real cross-origin CORS call."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from core import make_app
from tests.browser import CHROMIUM, HOSTS, free_port, needs_chromium, serving
from tests.factories import new_program, stored_clicks
from tests.fakes import fake

pytestmark = [needs_chromium, pytest.mark.browser,
              pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
SHOTS = Path("/tmp/tp-shots")
CLICK_API = "/api/v1/track/click"


class Merchant:
    """A tiny store: every page is the same HTML with the script, Stripe links and a form;
    `/cart/update.js` records what it receives, like Shopify's cart API."""

    def __init__(self) -> None:
        self.script_src = ""
        self.shopify = False
        self.consent_loader = False
        self.cart_updates: list[dict] = []

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        req = Request(environ)
        if req.path == "/cart/update.js" and req.method == "POST":
            self.cart_updates.append(json.loads(req.get_data()))
            return Response("{}", content_type="application/json")(environ, start_response)
        shopify = "<script>window.Shopify = {shop: 'demo.myshopify.com'};</script>" if self.shopify else ""
        tag = f'<script src="{self.script_src}" async></script>'
        if self.consent_loader:  # like a consent manager: the tag is inert, a loader runs its code
            tag = (f'<script type="text/plain" id="tp" src="{self.script_src}"></script>'
                   '<script>fetch(document.getElementById("tp").src).then(r => r.text())'
                   '.then(code => (0, eval)(code));</script>')
        html = f"""<!doctype html><html><head><title>Demo shop</title>{shopify}
{tag}
<style>body{{font:16px system-ui;margin:2em}} a{{display:block;margin:.5em 0}}</style></head>
<body><h1>Demo shop</h1>
<a id="buy" href="https://buy.stripe.com/test_123">Buy with a Stripe Payment Link</a>
<a id="checkout" href="https://checkout.stripe.com/c/pay/cs_test_1?locale=en">Stripe Checkout</a>
<a id="other" href="https://example.org/page">Not a checkout link</a>
<shop-button></shop-button>
<form id="order" action="/order"><input type="hidden" name="tp_click" id="hidden">
<input type="hidden" name="other" id="other-input"></form>
<script>
customElements.define('shop-button', class extends HTMLElement {{
  connectedCallback() {{ this.attachShadow({{mode: 'open'}}).innerHTML =
    '<a id="shadow-buy" href="https://buy.stripe.com/test_shadow">Buy (a web component)</a>'; }}
}});
setTimeout(() => {{
  const a = document.createElement('a'); a.id = 'late'; a.textContent = 'Added later';
  a.href = 'https://buy.stripe.com/test_late'; document.body.appendChild(a);
  const f = document.createElement('form'); f.innerHTML = '<input type="hidden" name="tp_click" id="late-input">';
  document.body.appendChild(f);
}}, 100);
</script></body></html>"""
        return Response(html, content_type="text/html")(environ, start_response)


class Logged:
    """WSGI wrapper: what Touchpoint was asked, as (method, path, status, Origin)."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app, self.seen, self.lock = app, [], threading.Lock()

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        def start(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            with self.lock:
                self.seen.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO"),
                                  int(status.split()[0]), environ.get("HTTP_ORIGIN")))
            return start_response(status, headers, exc_info)
        return self.app(environ, start_response=start)

    def posts(self) -> list[tuple]:
        return [s for s in self.seen if s[0] == "POST" and s[1] == CLICK_API]


@pytest.fixture(scope="module")
def browser():
    """tests/browser.py's Chromium, with track.shop.example (a first-party tracking subdomain)
    mapped too."""
    from playwright.sync_api import sync_playwright

    rules = ", ".join(f"MAP {h} 127.0.0.1" for h in (*HOSTS, "track.shop.example"))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            f"--host-resolver-rules={rules}"])
        yield b
        b.close()


@pytest.fixture
def stack(db_url, tmp_path, browser):
    tp_port, shop_port = free_port(), free_port()
    base = f"http://touchpoint.test:{tp_port}"
    app = make_app({"database_url": db_url, "secret_key": "script-test", "base_url": base,
                    "var_dir": tmp_path, "testing": True}, (fake,))
    api = new_program(app, domain="shop.example")
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    merchant = Merchant()
    merchant.script_src = f"{base}/t.js?pk={api.publishable_key}"
    logged = Logged(app)
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with serving(logged, tp_port), serving(merchant, shop_port):
        yield {"app": app, "api": api, "page": page, "context": context, "merchant": merchant,
               "log": logged, "shop": f"http://www.shop.example:{shop_port}",
               "apex": f"http://shop.example:{shop_port}", "evil": f"http://evil.example:{shop_port}",
               "track": f"http://track.shop.example:{tp_port}"}
    context.close()
    app.extensions["touchpoint_db"].dispose()
    assert errors == []  # nothing thrown into the page


def visit(page, url: str):  # type: ignore[no-untyped-def]
    """Open `url` and wait for the script: the click id it settled on."""
    page.goto(url)
    page.wait_for_function("window.Touchpoint !== undefined")
    return page.evaluate("Touchpoint.ready")


clicks = stored_clicks


def jar(context) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """The browser's tp_click cookies by domain."""
    return {c["domain"]: c for c in context.cookies() if c["name"] == "tp_click"}


def lifetime_days(c: dict) -> float:
    return (c["expires"] - time.time()) / 86400


def test_a_ref_visit_records_a_click_and_keeps_it_on_the_shop_domain(stack):
    api, page, app = stack["api"], stack["page"], stack["app"]
    api.ok("patch", "/api/v1/program", {"cookie_days": 45})
    click_id = visit(page, stack["shop"] + "/landing?ref=ann&utm_source=news")
    [c] = clicks(app)
    assert click_id == c.id and c.partner_id == api.ann["id"]
    assert c.url == stack["shop"] + "/landing?ref=ann&utm_source=news" and c.utm_source == "news"
    [(_, _, status, origin)] = stack["log"].posts()
    assert status == 200 and origin == stack["shop"]
    # One cookie, on shop.example (not www.shop.example), for the program's cookie_days.
    cookies = jar(stack["context"])
    assert list(cookies) == [".shop.example"] and cookies[".shop.example"]["value"] == c.id
    assert 44.99 < lifetime_days(cookies[".shop.example"]) <= 45
    assert cookies[".shop.example"]["sameSite"] == "Lax" and cookies[".shop.example"]["path"] == "/"
    assert page.evaluate("Touchpoint.clickId()") == c.id
    assert page.evaluate("localStorage.getItem('tp_click')").startswith(c.id + "|")
    SHOTS.mkdir(exist_ok=True)
    page.wait_for_selector("#late")
    page.evaluate("""() => { const pre = document.createElement('pre');  // for a human to look at
      pre.textContent = ['Touchpoint.clickId() = ' + Touchpoint.clickId(), 'document.cookie = ' + document.cookie,
        ...[...document.querySelectorAll('a')].map((a) => a.id + ': ' + a.href)].join('\\n');
      document.body.appendChild(pre); }""")
    page.screenshot(path=str(SHOTS / "storefront-script.png"))
    # The bare domain reads the same cookie.
    page.goto(stack["apex"] + "/")
    assert f"tp_click={c.id}" in page.evaluate("document.cookie")
    assert page.evaluate("Touchpoint.clickId()") == c.id and len(clicks(app)) == 1


def test_via_works_like_ref(stack):
    click_id = visit(stack["page"], stack["shop"] + "/?via=bob")
    [c] = clicks(stack["app"])
    assert c.id == click_id and c.partner_id == stack["api"].bob["id"]
    assert jar(stack["context"])[".shop.example"]["value"] == click_id


def test_tp_click_from_a_short_link_is_adopted_without_a_new_click(stack):
    click_id = visit(stack["page"], stack["shop"] + "/p?tp_click=clk_fromredirect01")
    assert click_id == "clk_fromredirect01" == stack["page"].evaluate("Touchpoint.clickId()")
    assert clicks(stack["app"]) == [] and stack["log"].posts() == []
    c = jar(stack["context"])[".shop.example"]
    assert c["value"] == "clk_fromredirect01" and 29.99 < lifetime_days(c) <= 30
    assert stack["page"].get_attribute("#buy", "href").endswith("client_reference_id=clk_fromredirect01")


def test_adopting_keeps_the_cookie_the_redirect_set(stack):
    """A first-party tracking subdomain's redirect set the cookie from the server for 90 days:
    the script must not rewrite it (Safari would cap a script-set cookie at 7 days)."""
    expires = int(time.time()) + 90 * 86400
    stack["context"].add_cookies([{"name": "tp_click", "value": "clk_server", "domain": ".shop.example",
                                   "path": "/", "expires": expires, "sameSite": "Lax"}])
    assert visit(stack["page"], stack["shop"] + "/?tp_click=clk_server") == "clk_server"
    assert jar(stack["context"])[".shop.example"]["expires"] == expires


def test_a_second_ref_visit_chains_the_visitor(stack):
    page, app = stack["page"], stack["app"]
    first = visit(page, stack["shop"] + "/?ref=ann")
    bodies: list[dict] = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith(CLICK_API) and r.method == "POST" else None)
    second = visit(page, stack["shop"] + "/?ref=bob")
    assert bodies[0]["previous_click_id"] == first and bodies[0]["ref"] == "bob"
    assert bodies[0]["publishable_key"] == stack["api"].publishable_key
    a, b = clicks(app)
    assert (a.id, b.id) == (first, second) and first != second
    assert b.visitor_id == a.visitor_id == a.id and b.partner_id == stack["api"].bob["id"]
    assert jar(stack["context"])[".shop.example"]["value"] == second  # the cookie holds the last


def test_stripe_links_get_client_reference_id(stack):
    page = stack["page"]
    click_id = visit(page, stack["shop"] + "/?ref=ann")
    assert page.get_attribute("#buy", "href") == f"https://buy.stripe.com/test_123?client_reference_id={click_id}"
    assert page.get_attribute("#checkout", "href") == (
        f"https://checkout.stripe.com/c/pay/cs_test_1?locale=en&client_reference_id={click_id}")
    assert page.get_attribute("#other", "href") == "https://example.org/page"
    # A link inserted after load, and one whose href changes later.
    page.wait_for_function("document.getElementById('late') && document.getElementById('late').href.includes('client_reference_id')")
    assert page.get_attribute("#late", "href") == f"https://buy.stripe.com/test_late?client_reference_id={click_id}"
    page.evaluate("document.getElementById('other').href = 'https://buy.stripe.com/test_changed'")
    page.wait_for_function("document.getElementById('other').href.includes('client_reference_id')")
    # A click goes to Stripe with it.
    went: list[str] = []
    page.route("https://buy.stripe.com/**", lambda route: (went.append(route.request.url),
                                                          route.fulfill(body="stripe", content_type="text/html")))
    page.click("#buy")
    page.wait_for_url("https://buy.stripe.com/**")
    assert went == [f"https://buy.stripe.com/test_123?client_reference_id={click_id}"]


def test_hidden_inputs_are_filled(stack):
    page = stack["page"]
    click_id = visit(page, stack["shop"] + "/?ref=ann")
    assert page.input_value("#hidden") == click_id and page.input_value("#other-input") == ""
    page.wait_for_function(f"document.getElementById('late-input') && document.getElementById('late-input').value === '{click_id}'")
    page.evaluate("""() => { const f = document.createElement('form');
      f.innerHTML = '<input type="hidden" name="tp_click" id="signup-input">'; document.body.appendChild(f); }""")
    page.wait_for_function(f"document.getElementById('signup-input').value === '{click_id}'", timeout=3000)


def test_shopify_cart_attribute_is_set_once_per_click(stack):
    page, merchant = stack["page"], stack["merchant"]
    merchant.shopify = True
    click_id = visit(page, stack["shop"] + "/?ref=ann")
    page.wait_for_function("sessionStorage.getItem('tp_cart') !== null")
    assert merchant.cart_updates == [{"attributes": {"tp_click": click_id}}]
    visit(page, stack["shop"] + "/cart")
    page.wait_for_timeout(300)
    assert len(merchant.cart_updates) == 1
    second = visit(page, stack["shop"] + "/?ref=bob")
    page.wait_for_function(f"sessionStorage.getItem('tp_cart') === '{second}'")
    assert merchant.cart_updates[1:] == [{"attributes": {"tp_click": second}}]


def test_no_shopify_no_cart_call(stack):
    visit(stack["page"], stack["shop"] + "/?ref=ann")
    stack["page"].wait_for_timeout(300)
    assert stack["merchant"].cart_updates == []


def test_a_plain_visit_calls_nothing(stack):
    page = stack["page"]
    assert visit(page, stack["shop"] + "/") is None
    assert page.evaluate("Touchpoint.clickId()") is None
    page.wait_for_timeout(300)
    assert stack["log"].posts() == [] and ("GET", "/t.js", 200, None) in stack["log"].seen
    assert clicks(stack["app"]) == [] and jar(stack["context"]) == {}
    assert page.get_attribute("#buy", "href") == "https://buy.stripe.com/test_123"


def test_a_later_plain_visit_uses_the_cookie(stack):
    page = stack["page"]
    click_id = visit(page, stack["shop"] + "/?ref=ann")
    assert visit(page, stack["shop"] + "/pricing") == click_id
    assert len(stack["log"].posts()) == 1
    assert page.get_attribute("#buy", "href").endswith(f"client_reference_id={click_id}")


def test_the_click_api_refuses_other_origins(stack):
    page = stack["page"]
    assert visit(page, stack["evil"] + "/?ref=ann") is None
    assert [p[2] for p in stack["log"].posts()] == [403]
    assert clicks(stack["app"]) == [] and jar(stack["context"]) == {}
    assert page.evaluate("Touchpoint.clickId()") is None
    assert page.get_attribute("#buy", "href") == "https://buy.stripe.com/test_123"


def test_an_unknown_ref_or_key_leaves_the_page_alone(stack):
    page, merchant = stack["page"], stack["merchant"]
    assert visit(page, stack["shop"] + "/?ref=nobody") is None
    merchant.script_src = merchant.script_src.split("?pk=")[0] + "?pk=tp_pk_wrong"
    assert visit(page, stack["shop"] + "/?ref=ann") is None
    assert [p[2] for p in stack["log"].posts()] == [404, 401]
    assert clicks(stack["app"]) == [] and jar(stack["context"]) == {}


def test_run_by_a_loader_it_finds_its_tag(stack):
    """Without document.currentScript (code run by a consent manager or tag loader), the key is
    read from the page's t.js tag."""
    stack["merchant"].consent_loader = True
    click_id = visit(stack["page"], stack["shop"] + "/?ref=ann")
    [c] = clicks(stack["app"])
    assert click_id == c.id and stack["page"].evaluate("document.currentScript") is None


def test_a_click_on_a_link_the_page_hides_goes_out_with_the_id(stack):
    """A Stripe link inside a web component's shadow root: no observer sees it, the click does."""
    page = stack["page"]
    click_id = visit(page, stack["shop"] + "/?ref=ann")
    assert page.get_attribute("#shadow-buy", "href") == "https://buy.stripe.com/test_shadow"
    went: list[str] = []
    page.route("https://buy.stripe.com/**", lambda route: (went.append(route.request.url),
                                                          route.fulfill(body="stripe", content_type="text/html")))
    page.click("#shadow-buy")
    page.wait_for_url("https://buy.stripe.com/**")
    assert went == [f"https://buy.stripe.com/test_shadow?client_reference_id={click_id}"]


def test_a_short_link_on_a_tracking_subdomain_sets_the_cookie_from_the_server(stack):
    """track.shop.example points at Touchpoint: the redirect sets tp_click on shop.example for
    cookie_days in its response, and the script on the landing page adopts it as it is."""
    api, page = stack["api"], stack["page"]
    api.ok("patch", "/api/v1/program", {"cookie_days": 60})
    link = api.ok("post", "/api/v1/links", {"partner_id": api.ann["id"],
                                            "url": stack["shop"] + "/spring", "key": "spring"}, 201)
    click_id = visit(page, f"{stack['track']}/r/{link['key']}")
    [c] = clicks(stack["app"])
    assert click_id == c.id and c.link_id == link["id"] and page.url == f"{stack['shop']}/spring?tp_click={c.id}"
    cookies = jar(stack["context"])
    assert list(cookies) == [".shop.example"] and cookies[".shop.example"]["value"] == c.id
    assert 59.99 < lifetime_days(cookies[".shop.example"]) <= 60  # the server's, not the script's 30
    assert stack["log"].posts() == []
    assert page.get_attribute("#buy", "href").endswith(f"client_reference_id={c.id}")
