"""/portal: partners sign in with an invitation link and see only their own data. Every test
here tries to reach another partner's or another program's rows by guessing ids."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from itsdangerous import URLSafeTimedSerializer

from core.web.admin import INVITE_SALT
from tests.core.test_journeys import click, sale, set_click_time
from tests.core.web.test_admin import login, make_user, post_form
from tests.factories import new_program

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def invitation(app, client, api, partner_id: str) -> str:
    """The link an admin creates on the partner's page (through the page, as they would)."""
    login(client, api.email)
    page = f"/admin/partners/{partner_id}"
    resp = post_form(client, page, f"{page}/invite", {})
    assert resp.status_code == 302
    html = client.get(page).get_data(as_text=True)
    url = re.search(r'value="(http://touchpoint\.test/portal/login/[^"]+)"', html).group(1)
    return url.replace("http://touchpoint.test", "")


@pytest.fixture
def world(app):
    api = new_program(app)
    api.email = make_user(app, api.program_id)
    api.ann = api.partner("Ann", key="ann")
    api.bob = api.partner("Bob", key="bob")
    api.reward(event="sale", value=10)
    api.ann_link = api.ok("post", "/api/v1/links", {"partner_id": api.ann["id"],
                                                    "url": "https://shop.example/a", "campaign": "ann-camp"}, 201)
    api.bob_link = api.ok("post", "/api/v1/links", {"partner_id": api.bob["id"],
                                                    "url": "https://shop.example/b", "campaign": "bob-camp"}, 201)
    api.ok("post", "/api/v1/promo-codes", {"partner_id": api.ann["id"], "code": "ANN10"}, 201)
    api.ok("post", "/api/v1/promo-codes", {"partner_id": api.bob["id"], "code": "BOBSECRET"}, 201)
    c = click(api, link=api.ann_link["key"])
    set_click_time(app, c, NOW - timedelta(hours=3))
    api.ann_sale = sale(api, "order-ann", 10000, NOW - timedelta(hours=2), click_id=c)
    api.bob_sale = sale(api, "order-bob", 7000, NOW - timedelta(hours=1), customer="c2",
                        promo_code="BOBSECRET")
    other = new_program(app, name="Other", domain="other.example")
    other.zed = other.partner("Zed", key="zed")
    other.reward(event="sale", value=10)
    other.zed_link = other.ok("post", "/api/v1/links", {"partner_id": other.zed["id"],
                                                        "url": "https://other.example/z"}, 201)
    other.zed_sale = sale(other, "order-zed", 3000, NOW - timedelta(hours=1), ref="zed")
    api.other = other
    return api


def test_invitation_signs_the_partner_in(app, world):
    admin = app.test_client()
    link = invitation(app, admin, world, world.ann["id"])
    partner = app.test_client()
    assert partner.get("/portal/").status_code == 302
    resp = partner.get(link)
    assert resp.status_code == 302 and resp.location.endswith("/portal/")
    page = partner.get("/portal/").get_data(as_text=True)
    assert "Hello, Ann" in page
    assert world.ann_link["short_url"] in page and "ANN10" in page and "?ref=ann" in page
    assert "10.00 USD" in page  # pending commission of the 100.00 sale
    assert "data-copy" in page  # copy buttons
    # Nothing of Bob, nor of the other program.
    for secret in ("Bob", "BOBSECRET", world.bob_link["short_url"], "70.00", "7.00 USD",
                   "Zed", world.other.zed_link["short_url"]):
        assert secret not in page, secret


def test_guessed_ids_are_404(app, world):
    partner = app.test_client()
    partner.get(invitation(app, app.test_client(), world, world.ann["id"]))
    assert partner.get(f"/portal/conversions/{world.ann_sale['id']}").status_code == 200
    assert partner.get(f"/portal/links/{world.ann_link['id']}").status_code == 200
    for path in (f"/portal/conversions/{world.bob_sale['id']}",
                 f"/portal/conversions/{world.other.zed_sale['id']}",
                 f"/portal/links/{world.bob_link['id']}",
                 f"/portal/links/{world.other.zed_link['id']}",
                 "/portal/conversions/cnv_doesnotexist"):
        assert partner.get(path).status_code == 404, path
    # Query parameters do not widen the scope either.
    page = partner.get(f"/portal/?partner_id={world.bob['id']}&period=365d").get_data(as_text=True)
    assert "Bob" not in page and "order-bob" not in page


def test_portal_session_does_not_open_admin(app, world):
    partner = app.test_client()
    partner.get(invitation(app, app.test_client(), world, world.ann["id"]))
    assert partner.get("/admin/").status_code == 302
    assert partner.get(f"/admin/partners/{world.bob['id']}").status_code == 302


def test_bad_and_expired_tokens(app, world, monkeypatch):
    client = app.test_client()
    link = invitation(app, app.test_client(), world, world.ann["id"])
    assert client.get(link[:-3] + "abc").status_code == 400
    assert client.get("/portal/login/not-a-token").status_code == 400
    # Signed with another key: refused.
    forged = URLSafeTimedSerializer("another-key", salt=INVITE_SALT).dumps(
        {"partner_id": world.bob["id"], "program_id": world.program_id})
    assert client.get(f"/portal/login/{forged}").status_code == 400
    # A partner of another program named with this program's id: refused.
    with app.app_context():
        mixed = URLSafeTimedSerializer(app.secret_key, salt=INVITE_SALT).dumps(
            {"partner_id": world.other.zed["id"], "program_id": world.program_id})
    assert client.get(f"/portal/login/{mixed}").status_code == 400
    # Eight days later the link has expired.
    import itsdangerous.timed

    real = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() + 8 * 86400)
    resp = client.get(link)
    assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
    assert client.get("/portal/").status_code == 302


def test_logout(app, world):
    partner = app.test_client()
    partner.get(invitation(app, app.test_client(), world, world.ann["id"]))
    page = partner.get("/portal/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert partner.post("/portal/logout").status_code == 400  # CSRF
    assert partner.post("/portal/logout", data={"csrf_token": token}).status_code == 302
    assert partner.get("/portal/").status_code == 302
