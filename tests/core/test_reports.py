"""Reports over the public API, checked against the ledger and the conversions."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func
from sqlmodel import select

from core.db import get_db
from core.models import Click, LedgerEntry
from core.rollups import click_counts, closed_days
from tests.core.test_journeys import click, sale, set_click_time
from tests.factories import new_program

NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0 = NOW - timedelta(days=3)


def setup(app):
    api = new_program(app)
    ann, bob = api.partner("Ann", key="ann", tags=["gold"]), api.partner("Bob", key="bob")
    api.reward(name="Base", event="sale", value=10)
    ids = [click(api, ref="ann") for _ in range(4)] + [click(api, ref="bob")]
    ids.append(click(api, ref="ann", ua="Googlebot/2.1 (+http://www.google.com/bot.html)"))
    for i, cid in enumerate(ids):
        set_click_time(app, cid, T0 - timedelta(hours=i))
    api.ok("post", "/api/v1/track/lead", {"customer_id": "c1", "click_id": ids[0],
                                          "occurred_at": T0.isoformat()})
    sale(api, "o1", 10000, T0 + timedelta(hours=1), click_id=ids[0])
    sale(api, "o2", 5000, T0 + timedelta(hours=2), customer="c2", click_id=ids[4])
    api.ok("post", "/api/v1/track/refund", {"order_id": "o2", "amount": 1000, "refund_id": "r"})
    return api, ann, bob


def test_report_by_partner_matches_the_ledger(app):
    api, ann, bob = setup(app)
    out = api.ok("get", "/api/v1/reports?group_by=partner&from=" + (NOW - timedelta(days=7)).isoformat().replace("+", "%2B"))
    rows = {r["key"]: r for r in out["data"]}
    a, b = rows[ann["id"]], rows[bob["id"]]
    assert (a["clicks"], a["leads"], a["conversions"], a["revenue"], a["commission"]) == (4, 1, 1, 10000, 1000)
    assert (b["clicks"], b["conversions"], b["revenue"], b["commission"]) == (1, 1, 4000, 400)
    assert a["conversion_rate"] == 0.25 and a["earnings_per_click"] == 250 and a["label"] == "Ann"
    with app.app_context(), get_db().session() as s:
        net = sum(e.amount if e.to_bucket == "pending" else -e.amount
                  for e in s.exec(select(LedgerEntry)) if "pending" in (e.to_bucket, e.from_bucket))
    assert out["totals"]["commission"] == net == 1400
    assert out["totals"]["clicks"] == 5  # the bot is not counted
    assert out["previous"]["clicks"] == 0


def test_time_groups_tags_and_csv(app):
    api, ann, _ = setup(app)
    frm = (NOW - timedelta(days=7)).isoformat().replace("+", "%2B")
    days = api.ok("get", f"/api/v1/reports?group_by=day&from={frm}")["data"]
    assert sum(r["clicks"] for r in days) == 5 and sum(r["conversions"] for r in days) == 2
    tags = {r["key"]: r for r in api.ok("get", f"/api/v1/reports?group_by=tag&from={frm}")["data"]}
    assert tags["gold"]["clicks"] == 4
    offers = api.ok("get", f"/api/v1/reports?group_by=offer&from={frm}")["data"]
    assert offers[0]["label"] == "Base" and offers[0]["commission"] == 1400
    resp = api.get(f"/api/v1/reports?group_by=partner&format=csv&from={frm}")
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[-1]["label"] == "Total" and rows[-1]["revenue_minor_units"] == "14000"
    assert rows[-1]["revenue"] == "140.00" and rows[-1]["currency"] == "USD"
    mine = api.ok("get", f"/api/v1/reports?group_by=day&from={frm}&partner_id={ann['id']}")
    assert mine["totals"]["clicks"] == 4


def test_bad_report_queries_are_400(app):
    api, _, _ = setup(app)
    for q in ("group_by=colour", "from=yesterday", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
              "from=2026-01-01T00:00:00", "format=xml"):
        resp = api.get(f"/api/v1/reports?{q}")
        assert resp.status_code == 400, q
    assert api.get("/api/v1/reports?partner_id=ptr_nope").status_code == 404


def test_rollups_stay_exact_as_clicks_arrive(app):
    api, ann, _ = setup(app)
    start = NOW - timedelta(days=7)
    with app.app_context(), get_db().session() as s:
        before = click_counts(s, api.program_id, "partner", start, NOW)
    # A click recorded for a day that is already rolled up reopens that day.
    cid = click(api, ref="ann")
    with app.app_context():
        from core.db import get_db as _db
        with _db().write() as s:
            s.get(Click, cid).created_at = T0
        app.extensions["touchpoint"]["clicks"]._reopen_day(api.program_id, T0.date().isoformat())
        with _db().session() as s:
            after = click_counts(s, api.program_id, "partner", start, NOW)
            raw = s.exec(select(func.count()).select_from(Click).where(
                Click.partner_id == ann["id"], Click.is_bot == False)).one()  # noqa: E712
    assert after[ann["id"]][0] == before[ann["id"]][0] + 1 == raw


def test_closed_days_split():
    start = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    end = datetime(2026, 1, 5, 6, tzinfo=timezone.utc)
    days, windows = closed_days(start, end, today=date(2026, 1, 4))
    assert days == [date(2026, 1, 2), date(2026, 1, 3)]
    assert windows == [(start, datetime(2026, 1, 2, tzinfo=timezone.utc)),
                       (datetime(2026, 1, 4, tzinfo=timezone.utc), end)]
