"""The setup half of API v1 over HTTP, on SQLite and PostgreSQL."""
from __future__ import annotations

from sqlmodel import func, select

from core.db import get_db
from core.models import Link, Partner, PartnerTag, PromoCode, Reward
from tests.factories import new_program


def count(app, model) -> int:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_program_settings_defaults_and_patch(app):
    api = new_program(app)
    prog = api.ok("get", "/api/v1/program")
    assert prog["attribution_model"] == "last_touch"
    assert (prog["attribution_window_days"], prog["cookie_days"], prog["hold_days"]) == (30, 30, 30)
    assert prog["promo_code_priority"] is True
    assert prog["allowed_domains"] == ["shop.example"]
    out = api.ok("patch", "/api/v1/program", {"attribution_model": "first_touch",
                                              "attribution_window_days": 60,
                                              "allowed_domains": ["shop.example", "Blog.Example"]})
    assert out["attribution_model"] == "first_touch"
    assert out["attribution_window_days"] == 60
    assert out["allowed_domains"] == ["blog.example", "shop.example"]
    assert api.ok("get", "/api/v1/program")["attribution_model"] == "first_touch"


def test_bad_patch_is_4xx_and_changes_nothing(app):
    api = new_program(app)
    for body, word in [({"attribution_model": "linear"}, "attribution_model"),
                       ({"cookie_days": -1}, "cookie_days"),
                       ({"colour": "red"}, "colour"),
                       ({"hold_days": None}, "hold_days"),
                       ({"allowed_domains": ["not a domain"]}, "domain")]:
        resp = api.patch("/api/v1/program", json=body)
        assert resp.status_code == 400, body
        err = resp.get_json()["error"]
        assert word in err["message"] and err["code"]
    assert api.ok("get", "/api/v1/program")["attribution_model"] == "last_touch"
    resp = api.client.patch("/api/v1/program", data="{nope", headers={
        "Authorization": f"Bearer {api.key}", "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_json"


def test_auth_required(app):
    api = new_program(app)
    assert api.client.get("/api/v1/program").status_code == 401
    resp = api.client.get("/api/v1/program", headers={"Authorization": "Bearer tp_sk_wrong"})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


def test_partners_links_codes_rewards(app):
    api = new_program(app)
    ann = api.partner("Ann", key="ann", tags=["gold", "blog"])
    assert ann["key"] == "ann" and ann["tags"] == ["blog", "gold"]
    bob = api.partner("Bob")
    assert len(bob["key"]) >= 6
    assert api.ok("get", f"/api/v1/partners/{ann['id']}")["email"] == "ann@partners.example"
    listed = api.ok("get", "/api/v1/partners?limit=1")
    assert len(listed["data"]) == 1 and listed["next_cursor"]
    rest = api.ok("get", f"/api/v1/partners?limit=1&cursor={listed['next_cursor']}")
    assert {listed["data"][0]["id"], rest["data"][0]["id"]} == {ann["id"], bob["id"]}
    assert rest["next_cursor"] is None

    link = api.ok("post", "/api/v1/links", {"partner_id": ann["id"], "campaign": "spring",
                                            "url": "https://www.shop.example/p/1?color=red"}, 201)
    assert link["short_url"] == f"http://touchpoint.test/r/{link['key']}"
    code = api.ok("post", "/api/v1/promo-codes", {"partner_id": ann["id"], "code": "ANN10"}, 201)
    assert code["code"] == "ANN10"
    reward = api.reward(name="Launch", event="sale", value=12.5, duration_months=12,
                        partner_tag="gold")
    assert reward["value"] == 12.5 and reward["duration_months"] == 12
    flat = api.reward(type="flat", event="lead", value=500)
    assert flat["value"] == 500
    assert len(api.ok("get", "/api/v1/rewards")["data"]) == 2
    assert len(api.ok("get", "/api/v1/links")["data"]) == 1
    assert len(api.ok("get", "/api/v1/promo-codes")["data"]) == 1


def test_refused_setup_writes_nothing(app):
    api = new_program(app)
    ann = api.partner("Ann", key="ann")
    before = [count(app, m) for m in (Partner, PartnerTag, Link, PromoCode, Reward)]
    cases = [
        ("/api/v1/partners", {"name": "X", "email": "x@x.example", "key": "ann"}, 409, "key_taken"),
        ("/api/v1/partners", {"name": "X", "email": "not-an-email"}, 400, "invalid_request"),
        ("/api/v1/partners", {"name": "", "email": "x@x.example"}, 400, "invalid_request"),
        ("/api/v1/links", {"partner_id": ann["id"], "url": "https://evil.example/"}, 400,
         "domain_not_allowed"),
        ("/api/v1/links", {"partner_id": ann["id"], "url": "javascript:alert(1)"}, 400, "invalid_url"),
        ("/api/v1/links", {"partner_id": "ptr_nope", "url": "https://shop.example/"}, 404, "not_found"),
        ("/api/v1/promo-codes", {"partner_id": "ptr_nope", "code": "X"}, 404, "not_found"),
        ("/api/v1/rewards", {"type": "percent", "value": 150}, 400, "invalid_request"),
        ("/api/v1/rewards", {"type": "flat", "value": 1.5}, 400, "invalid_request"),
        ("/api/v1/rewards", {"type": "bonus", "value": 1}, 400, "invalid_request"),
        ("/api/v1/rewards", {"type": "percent", "value": "ten"}, 400, "invalid_request"),
    ]
    for path, body, status, code in cases:
        resp = api.post(path, json=body)
        assert resp.status_code == status, (path, body, resp.get_json())
        assert resp.get_json()["error"]["code"] == code
    api.ok("post", "/api/v1/promo-codes", {"partner_id": ann["id"], "code": "SAVE"}, 201)
    resp = api.post("/api/v1/promo-codes", json={"partner_id": ann["id"], "code": "save"})
    assert resp.status_code == 409
    after = [count(app, m) for m in (Partner, PartnerTag, Link, PromoCode, Reward)]
    assert after == [before[0], before[1], before[2], before[3] + 1, before[4]]


def test_programs_cannot_see_each_other(app):
    a = new_program(app, domain="a.example")
    b = new_program(app, domain="b.example")
    ann = a.partner("Ann")
    assert b.get(f"/api/v1/partners/{ann['id']}").status_code == 404
    assert b.get(f"/api/v1/partners/{ann['id']}/earnings").status_code == 404
    assert b.ok("get", "/api/v1/partners")["data"] == []
    resp = b.post("/api/v1/links", json={"partner_id": ann["id"], "url": "https://b.example/"})
    assert resp.status_code == 404


def test_openapi_is_generated_from_routes(app):
    api = new_program(app)
    spec = api.client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [("/api/v1/program", "patch"), ("/api/v1/partners", "post"),
                         ("/api/v1/links", "post"), ("/api/v1/promo-codes", "post"),
                         ("/api/v1/rewards", "post"), ("/api/v1/sources", "post"),
                         ("/api/v1/track/click", "post"), ("/api/v1/track/sale", "post"),
                         ("/api/v1/conversions", "get"),
                         ("/api/v1/partners/{partner_id}/earnings", "get")]:
        assert method in paths[path], path
    # Every /api/v1 rule of the app is described (nothing hand-written, nothing missing).
    rules = {(str(r.rule).replace("<", "{").replace(">", "}"), m.lower())
             for r in app.url_map.iter_rules() if str(r.rule).startswith("/api/v1")
             for m in r.methods - {"HEAD", "OPTIONS"} if not str(r.rule).endswith("openapi.json")}
    described = {(p, m) for p, ops in paths.items() for m in ops}
    assert rules <= described
    assert "RewardIn" in spec["components"]["schemas"]


def test_track_times_outside_any_real_order_are_refused(app):
    """Year 2 minus a long attribution window is before year 1: refused with a 400 naming
    `occurred_at`, not a 500 (schemathesis found it), and nothing is recorded."""
    api = new_program(app)
    api.ok("patch", "/api/v1/program", {"attribution_window_days": 1970})
    for path, body in [("/api/v1/track/lead", {"customer_id": "c1"}),
                       ("/api/v1/track/sale", {"customer_id": "c1", "order_id": "o1",
                                               "amount": 100, "currency": "USD"}),
                       ("/api/v1/track/refund", {"order_id": "o1"})]:
        for when in ("0002-01-14T18:01:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z"):
            resp = api.client.post(path, json={**body, "occurred_at": when},
                                   headers={"Authorization": f"Bearer {api.key}"})
            assert resp.status_code == 400, (path, when, resp.get_data(as_text=True))
            assert "occurred_at" in resp.get_json()["error"]["message"]
    assert api.ok("get", "/api/v1/conversions")["data"] == []


def test_every_time_a_request_gives_is_bounded(app):
    """A list's or a report's `from`/`to` and a payout's `paid_at` outside 1970-2200 are a 400
    naming the field (year 1 at +01:00 overflowed PostgreSQL's driver into a 500; schemathesis
    found it through GET /api/v1/conversions)."""
    api = new_program(app)
    auth = {"Authorization": f"Bearer {api.key}"}
    for when in ("0001-01-01T00:00:01+01:00", "1969-12-31T23:59:59Z", "2200-01-01T00:00:01Z",
                 "0001-01-01T00:00:00"):
        for path, more in (("/api/v1/conversions", {}), ("/api/v1/reports", {}),
                           ("/api/v1/reattribute", {"model": "first_touch"})):
            for name in ("from", "to"):
                resp = api.client.get(path, query_string={**more, name: when}, headers=auth)
                assert resp.status_code == 400, (path, name, when, resp.get_data(as_text=True))
                assert f"{name}: must be between 1970 and 2200" in resp.get_json()["error"]["message"]
        resp = api.client.post("/api/v1/payouts/po_missing/pay", headers=auth,
                               json={"reference": "batch-1", "paid_at": when})
        assert resp.status_code == 400, resp.get_data(as_text=True)
        assert "paid_at: must be between" in resp.get_json()["error"]["message"]
    # The bounds themselves are accepted.
    assert api.ok("get", "/api/v1/conversions?from=1970-01-01T00:00:00Z")["data"] == []


def test_booleans_and_strings_are_not_numbers(app):
    """`false` for a number is a 400 naming the field, never 0 (pydantic's lax mode would store
    a reward with `duration_months: false` as 0 months; schemathesis found it), and so is a
    string for an integer in a JSON body; nothing is created. A query string's numbers are
    strings, and read."""
    api = new_program(app)
    auth = {"Authorization": f"Bearer {api.key}"}
    for path, body, field in [
            ("/api/v1/rewards", {"type": "percent", "value": 10, "duration_months": False},
             "duration_months"),
            ("/api/v1/rewards", {"type": "percent", "value": True}, "value"),
            ("/api/v1/track/sale", {"customer_id": "c1", "order_id": "o1", "amount": True,
                                    "currency": "USD"}, "amount"),
            ("/api/v1/track/sale", {"customer_id": "c1", "order_id": "o1", "amount": "500",
                                    "currency": "USD"}, "amount")]:
        resp = api.client.post(path, json=body, headers=auth)
        assert resp.status_code == 400, (path, resp.get_data(as_text=True))
        assert f"{field}: must be a number" in resp.get_json()["error"]["message"]
    assert api.ok("get", "/api/v1/rewards")["data"] == []
    assert api.ok("get", "/api/v1/conversions?limit=5")["data"] == []
