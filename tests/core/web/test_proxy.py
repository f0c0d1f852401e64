"""Behind reverse proxies (TOUCHPOINT_TRUSTED_PROXIES) the visitor's address comes from
X-Forwarded-For: two visitors behind one proxy are two visitors, not one repeating itself."""
from __future__ import annotations

import pytest

from core import make_app
from tests.factories import new_program, stored_clicks

UA = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"}


def clicks_from_two_visitors(app) -> list[bool]:
    api = new_program(app)
    partner = api.partner("Ann", key="ann")
    link = api.ok("post", "/api/v1/links", {"partner_id": partner["id"],
                                            "url": "https://shop.example/x"}, 201)
    client = app.test_client()
    for address in ("203.0.113.7", "198.51.100.9"):
        resp = client.get(f"/r/{link['key']}", headers={**UA, "X-Forwarded-For": address},
                          environ_base={"REMOTE_ADDR": "10.0.0.2"})  # the proxy
        assert resp.status_code == 302
    return [c.is_unique for c in stored_clicks(app)]


@pytest.mark.parametrize("proxies,unique", [(0, [True, False]), (1, [True, True])])
def test_the_visitor_address_behind_a_proxy(db_url, tmp_path, proxies, unique):
    app = make_app({"database_url": db_url, "secret_key": "test-secret-key", "testing": True,
                    "base_url": "http://touchpoint.test", "var_dir": tmp_path,
                    "trusted_proxies": proxies}, ())
    try:
        assert clicks_from_two_visitors(app) == unique
    finally:
        app.extensions["touchpoint_db"].dispose()
