"""`GET /r/<key>` and the click API: clicks recorded, bots and repeats marked, no raw IP."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.factories import new_program, stored_clicks

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


clicks = stored_clicks


def make_link(api, url="https://shop.example/p/1?color=red#top", campaign="spring"):
    ann = api.partner("Ann", key="ann")
    return api.ok("post", "/api/v1/links", {"partner_id": ann["id"], "url": url,
                                            "campaign": campaign}, 201), ann


def test_redirect_records_click_and_keeps_query(app):
    api = new_program(app)
    link, ann = make_link(api)
    resp = api.client.get(f"/r/{link['key']}?utm_source=x", headers={"User-Agent": IPHONE},
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert resp.status_code == 302
    target = urlsplit(resp.headers["Location"])
    assert (target.scheme, target.hostname, target.path, target.fragment) == ("https", "shop.example", "/p/1", "top")
    query = parse_qs(target.query)
    assert query["color"] == ["red"]
    [c] = clicks(app)
    assert query["tp_click"] == [c.id]
    assert (c.partner_id, c.link_id, c.campaign, c.device, c.is_bot) == (ann["id"], link["id"], "spring", "mobile", False)
    assert "203.0.113.9" not in (c.ip_hash or "") and len(c.ip_hash) == 32
    assert "Set-Cookie" not in resp.headers  # touchpoint.test is not the shop's domain


def test_first_party_tracking_subdomain_sets_cookie(app):
    api = new_program(app)
    link, _ = make_link(api)
    resp = api.client.get(f"/r/{link['key']}", base_url="https://track.shop.example",
                          headers={"User-Agent": CHROME})
    cookie = resp.headers["Set-Cookie"]
    assert "tp_click=clk_" in cookie and "Domain=shop.example" in cookie
    assert "Max-Age=2592000" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie


def test_repeats_and_bots_are_marked(app):
    api = new_program(app)
    link, _ = make_link(api)
    for ua, ip in [(CHROME, "1.1.1.1"), (CHROME, "1.1.1.1"), (CHROME, "2.2.2.2"), (GOOGLEBOT, "3.3.3.3")]:
        api.client.get(f"/r/{link['key']}", headers={"User-Agent": ua}, environ_base={"REMOTE_ADDR": ip})
    got = [(c.is_unique, c.is_bot) for c in clicks(app)]
    assert sorted(got) == sorted([(True, False), (False, False), (True, False), (True, True)])


def test_unknown_or_off_domain_link_is_404(app):
    api = new_program(app)
    link, _ = make_link(api)
    assert api.client.get("/r/nope").status_code == 404
    api.ok("patch", "/api/v1/program", {"allowed_domains": ["other.example"]})
    from core.tracking import CACHE_SECONDS  # noqa: F401  (the link cache is per app)
    app.extensions["touchpoint"]["clicks"]._links._data.clear()
    resp = api.client.get(f"/r/{link['key']}")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "domain_not_allowed"
    assert clicks(app) == []


def test_click_api_cors_and_errors(app):
    api = new_program(app)
    api.partner("Ann", key="ann")
    ok = api.client.post("/api/v1/track/click", json={"publishable_key": api.publishable_key,
                                                      "ref": "ann", "url": "https://shop.example/?ref=ann&utm_campaign=fall"},
                         headers={"Origin": "https://www.shop.example", "User-Agent": CHROME})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.shop.example"
    assert ok.get_json()["cookie_days"] == 30
    [c] = clicks(app)
    assert c.utm_campaign == "fall"
    bad = api.client.post("/api/v1/track/click", json={"publishable_key": api.publishable_key, "ref": "ann"},
                          headers={"Origin": "https://evil.example"})
    assert bad.status_code == 403
    assert api.client.post("/api/v1/track/click", json={"publishable_key": "tp_pk_x", "ref": "ann"}).status_code == 401
    assert api.client.post("/api/v1/track/click", json={"publishable_key": api.publishable_key, "ref": "zed"}).status_code == 404
    assert api.client.post("/api/v1/track/click", json={"publishable_key": api.publishable_key}).status_code == 400
    pre = api.client.options("/api/v1/track/click", headers={"Origin": "https://shop.example",
                                                             "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Methods"] == "POST"
    assert len(clicks(app)) == 1


def test_a_returning_browser_keeps_its_visitor_and_ids_sort_by_time(app):
    """The visitor is read inside the click's INSERT: the earlier click's visitor when the
    browser sends its `tp_click` cookie, the new click itself otherwise, never another
    program's visitor."""
    api = new_program(app)
    link, _ = make_link(api)
    other = new_program(app)
    other_link, _ = make_link(other)
    other.client.get(f"/r/{other_link['key']}", headers={"User-Agent": CHROME})
    [foreign] = [c for c in clicks(app) if c.program_id == other.program_id]

    api.client.get(f"/r/{link['key']}", headers={"User-Agent": CHROME})
    [first] = [c for c in clicks(app) if c.program_id == api.program_id]
    api.client.set_cookie("tp_click", first.id)
    api.client.get(f"/r/{link['key']}", headers={"User-Agent": CHROME})
    api.client.set_cookie("tp_click", foreign.id)
    api.client.get(f"/r/{link['key']}", headers={"User-Agent": CHROME})
    mine = [c for c in clicks(app) if c.program_id == api.program_id]
    assert [c.visitor_id for c in mine] == [first.id, first.id, mine[2].id]
    made_at = [c.id[4:16] for c in mine]  # the millisecond: clicks made later sort later
    assert made_at == sorted(made_at)
