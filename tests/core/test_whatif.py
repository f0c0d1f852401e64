"""The what-if replay agrees with the live engine under the same model, and moves credit
between partners under the other one, changing nothing."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import func, select

from core.db import get_db
from core.models import LedgerEntry
from tests.core.test_journeys import T0, click, sale, set_click_time
from tests.factories import new_program


def test_whatif_first_touch_moves_credit(app):
    api = new_program(app)
    ann, bob = api.partner("Ann", key="ann"), api.partner("Bob", key="bob")
    api.reward(event="sale", value=10)
    a = click(api, ref="ann")
    b = click(api, ref="bob", prev=a)
    set_click_time(app, a, T0 - timedelta(days=3))
    set_click_time(app, b, T0 - timedelta(days=1, hours=1))
    sale(api, "o1", 10000, T0, click_id=b)
    sale(api, "o2", 5000, T0 + timedelta(days=2))  # same customer: locked to the first partner
    with app.app_context(), get_db().session() as s:
        entries = s.exec(select(func.count()).select_from(LedgerEntry)).one()
    same = api.ok("get", "/api/v1/reattribute?model=last_touch")
    assert all(r["difference"] == 0 for r in same["partners"])
    out = api.ok("get", "/api/v1/reattribute?model=first_touch")
    by = {r["partner_id"]: r for r in out["partners"]}
    assert by[bob["id"]]["current"] == 1500 and by[bob["id"]]["alternative"] == 0
    assert by[ann["id"]]["current"] == 0 and by[ann["id"]]["alternative"] == 1500
    assert out["conversions_changing_partner"] == 2
    short = api.ok("get", "/api/v1/reattribute?model=last_touch&window_days=1")
    assert {r["alternative"] for r in short["partners"]} == {0}
    with app.app_context(), get_db().session() as s:
        assert s.exec(select(func.count()).select_from(LedgerEntry)).one() == entries
    assert api.get("/api/v1/reattribute?model=linear").status_code == 400
