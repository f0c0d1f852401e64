"""/admin: sign-in, sessions, CSRF, the login rate limit, the pages' figures, management forms,
the live feed, exports, and that nothing of another program is reachable."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from core.db import get_db
from core.models import Link, Partner, Program, PromoCode, Reward
from core.users import authenticate, create_user
from tests.core.test_journeys import click, sale, set_click_time
from tests.factories import new_program

NOW = datetime.now(timezone.utc).replace(microsecond=0)
PASSWORD = "correct horse battery"


def make_user(app, program_id: str, email: str = "owner@shop.example") -> str:
    with app.app_context(), get_db().write() as s:
        create_user(s, program_id, email, PASSWORD)
    return email


def csrf_token(client, path: str) -> str:
    resp = client.get(path)
    assert resp.status_code == 200, (path, resp.status_code)
    return re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True)).group(1)


def login(client, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/admin/login")
    return client.post("/admin/login", data={"email": email, "password": password,
                                             "csrf_token": token})


def post_form(client, page: str, action: str, data: dict):  # type: ignore[no-untyped-def]
    return client.post(action, data={**data, "csrf_token": csrf_token(client, page)})


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann", tags=["gold", "vip"])
    api.bob = api.partner("Bob", key="bob")
    api.reward(name="Base 10%", event="sale", value=10)
    c1 = click(api, ref="ann")
    set_click_time(app, c1, NOW - timedelta(hours=3))
    sale(api, "o-ann-1", 10000, NOW - timedelta(hours=2), click_id=c1)
    click(api, ref="bob")
    sale(api, "o-bob-1", 5000, NOW - timedelta(hours=1), customer="c2", ref="bob")
    api.email = make_user(app, api.program_id)
    return api


def test_users_hash_passwords(app):
    api = new_program(app)
    make_user(app, api.program_id, "Mixed@Case.example")
    with app.app_context(), get_db().session() as s:
        assert authenticate(s, "mixed@case.example", PASSWORD) is not None
        assert authenticate(s, "mixed@case.example", "wrong password!") is None
        assert authenticate(s, "nobody@case.example", PASSWORD) is None
        from core.models import User

        stored = s.exec(select(User)).one().password_hash
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_login_required_and_session_cookie(app, client, shop):
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/live.json").status_code == 401
    bad = login(client, shop.email, "not the password")
    assert bad.status_code == 401 and "do not match" in bad.get_data(as_text=True)
    resp = login(client, shop.email)
    assert resp.status_code == 302 and resp.location.endswith("/admin/")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/admin/").get_data(as_text=True)
    # 100 + 50 revenue, in the headline card (the chart's days split them from 00:00 to 02:00 UTC)
    assert "Overview" in page and "Ann" in page and 'data-card="revenue">150.00<' in page
    assert "<svg" in page
    out = post_form(client, "/admin/", "/admin/logout", {})
    assert out.status_code == 302 and client.get("/admin/").status_code == 302


def test_secure_cookie_on_https(db_url, tmp_path, connectors):
    from core import make_app

    app = make_app({"database_url": db_url, "secret_key": "k", "base_url": "https://tp.example",
                    "var_dir": tmp_path, "testing": True}, connectors)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["touchpoint_db"].dispose()


def test_csrf_on_forms_but_not_on_the_api(app, client, shop):
    assert login(client, shop.email).status_code == 302
    # A form without the token is refused and changes nothing.
    resp = client.post("/admin/partners", data={"name": "Eve", "email": "eve@x.example"})
    assert resp.status_code == 400
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(Partner).where(Partner.name == "Eve")).first() is None
    # Login itself needs the token too.
    fresh = app.test_client()
    assert fresh.post("/admin/login", data={"email": shop.email, "password": PASSWORD}).status_code == 400
    # The JSON API (bearer key) and the tracking API take no CSRF token.
    assert shop.post("/api/v1/partners", json={"name": "Cy", "email": "cy@x.example"}).status_code == 201
    assert click(shop, ref="ann")


def test_login_is_rate_limited(app, client, shop):
    codes = [login(client, shop.email, "wrong password!").status_code for _ in range(10)]
    assert codes == [401] * 10
    assert login(client, shop.email).status_code == 429  # even the right password waits
    assert client.get("/admin/login").status_code == 200  # only POSTs count


def test_rate_limit_can_be_disabled(db_url, tmp_path, connectors):
    from core import make_app

    app = make_app({"database_url": db_url, "secret_key": "k", "var_dir": tmp_path,
                    "testing": True, "ratelimit_enabled": False}, connectors)
    api = new_program(app)
    email = make_user(app, api.program_id)
    client = app.test_client()
    assert all(login(client, email, "wrong password!").status_code == 401 for _ in range(12))
    app.extensions["touchpoint_db"].dispose()


def test_pages_show_figures_and_reasons(app, client, shop):
    login(client, shop.email)
    report = client.get("/admin/reports?group_by=partner").get_data(as_text=True)
    assert "Ann" in report and "100.00 USD" in report and "10.00 USD" in report
    tag = client.get("/admin/reports?group_by=tag&tag=vip").get_data(as_text=True)
    assert "vip" in tag and "Bob" not in tag
    platform = client.get("/admin/reports?group_by=day&platform=api").get_data(as_text=True)
    assert "not tied to a platform" in platform
    for path in ("/admin/reports?group_by=week", "/admin/reports?group_by=month&period=365d",
                 "/admin/reports?group_by=offer", "/admin/reports?period=custom&from=2026-01-01&to=2026-01-31",
                 "/admin/reports?group_by=nonsense&period=bogus", "/admin/partners?tag=gold",
                 "/admin/conversions?status=pending&platform=api", "/admin/rewards",
                 "/admin/settings", "/admin/sources"):
        assert client.get(path).status_code == 200, path
    page = client.get(f"/admin/partners/{shop.ann['id']}").get_data(as_text=True)
    assert "o-ann-1" in page and "o-bob-1" not in page
    import html

    reasons = {c["external_id"]: c["attribution"]["reason"]
               for c in shop.ok("get", "/api/v1/conversions")["data"]}
    assert html.escape(reasons["o-ann-1"]) in page  # why it was credited
    bob = client.get(f"/admin/partners/{shop.bob['id']}").get_data(as_text=True)
    assert "o-bob-1" in bob


def test_management_forms_use_the_same_rules_as_the_api(app, client, shop):
    login(client, shop.email)
    resp = post_form(client, "/admin/partners", "/admin/partners",
                     {"name": "Cleo", "email": "cleo@p.example", "key": "cleo", "tags": "new, vip"})
    assert resp.status_code == 302
    with app.app_context(), get_db().session() as s:
        cleo = s.exec(select(Partner).where(Partner.key == "cleo")).one()
    page = f"/admin/partners/{cleo.id}"
    post_form(client, page, f"{page}/links", {"url": "https://shop.example/spring", "campaign": "spring"})
    post_form(client, page, f"{page}/codes", {"code": "CLEO10"})
    # Off the allowed domains: refused with the API's message, nothing stored.
    post_form(client, page, f"{page}/links", {"url": "https://evil.example/"})
    assert "not one of the program" in client.get(page).get_data(as_text=True)
    # A taken code: refused.
    post_form(client, page, f"{page}/codes", {"code": "cleo10"})
    assert "already belongs" in client.get(page).get_data(as_text=True)
    post_form(client, "/admin/rewards", "/admin/rewards",
              {"name": "VIP", "event": "sale", "type": "percent", "value": "25",
               "duration_months": "12", "partner_tag": "vip"})
    post_form(client, "/admin/rewards", "/admin/rewards", {"type": "percent", "value": "250"})
    post_form(client, "/admin/settings", "/admin/settings",
              {"name": "Shop", "attribution_model": "first_touch", "attribution_window_days": "45",
               "cookie_days": "60", "hold_days": "7", "allowed_domains": "shop.example, shop.test"})
    with app.app_context(), get_db().session() as s:
        links = s.exec(select(Link).where(Link.partner_id == cleo.id)).all()
        codes = s.exec(select(PromoCode).where(PromoCode.partner_id == cleo.id)).all()
        rewards = s.exec(select(Reward).where(Reward.program_id == shop.program_id)).all()
        program = s.get(Program, shop.program_id)
    assert [(link.url, link.campaign) for link in links] == [("https://shop.example/spring", "spring")]
    assert [c.code for c in codes] == ["CLEO10"]
    assert sorted(r.name or "" for r in rewards) == ["Base 10%", "VIP"]
    assert (program.attribution_model, program.attribution_window_days, program.cookie_days,
            program.hold_days, program.promo_code_priority) == ("first_touch", 45, 60, 7, False)
    assert program.allowed_domains == ["shop.example", "shop.test"]


def test_live_feed_shows_new_conversions(app, client, shop):
    login(client, shop.email)
    before = client.get("/admin/live.json").get_json()
    assert before["cards"]["revenue"] == "150.00 USD"
    sale(shop, "o-live", 2500, NOW, customer="c9", ref="ann")
    after = client.get("/admin/live.json").get_json()
    assert after["conversions"][0]["external_id"].endswith("o-live")
    assert after["cards"]["revenue"] == "175.00 USD" and after["cards"]["conversions"] == "3"


def test_exports(app, client, shop):
    login(client, shop.email)
    resp = client.get("/admin/reports.csv?group_by=partner")
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[-1]["label"] == "Total" and rows[-1]["revenue_minor_units"] == "15000"
    assert rows[-1]["revenue"] == "150.00" and rows[-1]["commission"] == "15.00"
    conv = list(csv.DictReader(io.StringIO(client.get("/admin/conversions.csv").get_data(as_text=True))))
    assert sorted(r["partner"] for r in conv) == ["Ann", "Bob"]
    assert {r["amount"] for r in conv} == {"100.00", "50.00"} and conv[0]["currency"] == "USD"


def test_another_programs_data_is_404(app, client, shop):
    other = new_program(app, name="Other", domain="other.example")
    stranger = other.partner("Zed", key="zed")
    login(client, shop.email)
    assert client.get(f"/admin/partners/{stranger['id']}").status_code == 404
    for action in ("links", "codes", "invite"):
        resp = post_form(client, "/admin/partners", f"/admin/partners/{stranger['id']}/{action}",
                         {"url": "https://other.example/", "code": "ZED"})
        assert resp.status_code == 404, action
    assert client.get(f"/admin/conversions?partner_id={stranger['id']}").status_code == 200
    assert "Zed" not in client.get("/admin/partners").get_data(as_text=True)
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(Link).where(Link.partner_id == stranger["id"])).first() is None


def test_periods():
    from datetime import date

    from core.web.pages import period_from_args

    today = date(2026, 3, 31)
    p = period_from_args({}, today=today)
    assert (p.key, p.first_day, p.last_day, p.days) == ("30d", date(2026, 3, 2), today, 30)
    p = period_from_args({"period": "custom", "from": "2026-01-01", "to": "2026-01-31"}, today=today)
    assert (p.key, p.days, p.label) == ("custom", 31, "01 Jan 2026 – 31 Jan 2026")
    # A named period wins over dates left in the query; nonsense falls back to the default.
    assert period_from_args({"period": "7d", "from": "2026-01-01"}, today=today).days == 7
    assert period_from_args({"period": "custom", "from": "junk"}, today=today).key == "30d"
    assert period_from_args({"from": "2026-02-01", "to": "2026-01-01"}, today=today).key == "30d"


def test_custom_periods_outside_1970_2200_fall_back(app, client, shop):
    """A custom period in year 1 or 9999 is the default period on every page, never a 500:
    the previous period before year 1 and the API's 1970-2200 bounds would both break."""
    login(client, shop.email)
    pages = ["/admin/", "/admin/live.json", "/admin/reports", "/admin/reports.csv",
             "/admin/conversions", "/admin/conversions.csv", "/admin/partners",
             f"/admin/partners/{shop.ann['id']}"]
    for first, last in (("0001-01-01", "0001-01-05"), ("9999-12-01", "9999-12-31"),
                        ("1969-12-31", "1970-01-02")):
        for page in pages:
            resp = client.get(page, query_string={"period": "custom", "from": first, "to": last})
            assert resp.status_code == 200, (page, first, resp.status_code)
    from core.web.pages import period_from_args

    assert period_from_args({"from": "0001-01-01", "to": "0001-01-05"}).key == "30d"
    assert period_from_args({"from": "1970-01-01", "to": "1970-01-05"}).key == "custom"
