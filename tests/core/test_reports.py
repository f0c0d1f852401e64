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


# --- filters, currencies, exports ---------------------------------------------------------------

def test_filters_by_tag_campaign_and_platform(app):
    from core.models import Program
    from core.reports import Filters, report

    api, ann, bob = setup(app)
    start, end = NOW - timedelta(days=7), NOW + timedelta(days=1)
    with app.app_context(), get_db().session() as s:
        program = s.get(Program, api.program_id)
        gold = report(s, program, "partner", start, end, filters=Filters(tag="gold"))
        assert [(r.key, r.clicks, r.revenue) for r in gold] == [(ann["id"], 4, 10000)]
        by_platform = report(s, program, "day", start, end, filters=Filters(platform="api"))
        assert sum(r.conversions for r in by_platform) == 2 and sum(r.clicks for r in by_platform) == 0
        none = report(s, program, "partner", start, end, filters=Filters(platform="stripe"))
        assert none == []
        nothing = report(s, program, "day", start, end, filters=Filters(campaign="nope"))
        assert sum(r.clicks + r.conversions for r in nothing) == 0


def test_campaign_filter_counts_link_clicks(app):
    from core.models import Program
    from core.reports import Filters, report

    api = new_program(app)
    ann = api.partner("Ann", key="ann")
    link = api.ok("post", "/api/v1/links", {"partner_id": ann["id"], "url": "https://shop.example/",
                                            "campaign": "spring"}, 201)
    for cid in [click(api, link=link["key"]) for _ in range(3)] + [click(api, ref="ann")]:
        set_click_time(app, cid, T0)
    with app.app_context(), get_db().session() as s:
        program = s.get(Program, api.program_id)
        rows = report(s, program, "campaign", NOW - timedelta(days=7), NOW + timedelta(days=1))
        spring = report(s, program, "week", NOW - timedelta(days=7), NOW + timedelta(days=1),
                        filters=Filters(campaign="spring"))
    assert {r.key: r.clicks for r in rows} == {"spring": 3, None: 1}
    assert sum(r.clicks for r in spring) == 3


def test_other_currencies_are_never_added_in(app):
    api = new_program(app)
    api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    sale(api, "usd", 10000, T0, ref="ann")
    sale(api, "eur", 5000, T0, customer="c2", currency="EUR", ref="ann")
    frm = (NOW - timedelta(days=7)).isoformat().replace("+", "%2B")
    out = api.ok("get", f"/api/v1/reports?group_by=partner&from={frm}")
    row = out["data"][0]
    assert row["revenue"] == 10000 and row["conversions"] == 2
    assert row["other_currencies"]["EUR"]["revenue"] == 5000
    assert out["totals"]["other_currencies"]["EUR"]["revenue"] == 5000


def test_previous_period_and_week_buckets(app):
    api, ann, _ = setup(app)
    start = (NOW - timedelta(days=2)).isoformat().replace("+", "%2B")
    out = api.ok("get", f"/api/v1/reports?group_by=week&from={start}")
    # The clicks and sales of T0 (3 days ago) fall in the previous 2-day period.
    assert out["previous"]["clicks"] == 5 and out["previous"]["conversions"] == 2
    weeks = api.ok("get", "/api/v1/reports?group_by=week&from=" +
                   (NOW - timedelta(days=14)).isoformat().replace("+", "%2B"))["data"]
    assert all(date.fromisoformat(w["key"]).weekday() == 0 for w in weeks)
    months = api.ok("get", "/api/v1/reports?group_by=month&from=" +
                    (NOW - timedelta(days=40)).isoformat().replace("+", "%2B"))["data"]
    assert sum(m["conversions"] for m in months) == 2 and all(len(m["key"]) == 7 for m in months)


def test_conversions_csv_export(app):
    api, ann, bob = setup(app)
    resp = api.get("/api/v1/conversions.csv")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    sales = {r["external_id"]: r for r in rows if r["kind"] == "sale"}
    assert sales["o2"]["amount_minor_units"] == "5000" and sales["o2"]["refunded_minor_units"] == "1000"
    assert sales["o2"]["commission"] == "4.00" and sales["o2"]["partner"] == "Bob"
    api_rows = {c["external_id"]: c for c in api.ok("get", "/api/v1/conversions")["data"]}
    assert sales["o1"]["attribution_touch"] == api_rows["o1"]["attribution"]["touch"] == "customer"
    assert sales["o1"]["attribution_reason"] == api_rows["o1"]["attribution"]["reason"]
    assert sales["o1"]["currency"] == "USD"
    only_ann = api.get(f"/api/v1/conversions.csv?partner_id={ann['id']}").get_data(as_text=True)
    ids = {r["external_id"] for r in csv.DictReader(io.StringIO(only_ann))}
    assert "o1" in ids and "o2" not in ids
    assert api.get("/api/v1/conversions.csv?status=bogus").status_code == 400
    assert api.get("/api/v1/conversions.csv?partner_id=ptr_nope").status_code == 404
    assert api.client.get("/api/v1/conversions.csv").status_code == 401
    other = new_program(app, name="Other", domain="other.example")
    assert "o1" not in other.get("/api/v1/conversions.csv").get_data(as_text=True)
    spec = api.ok("get", "/api/v1/openapi.json")
    assert "/api/v1/conversions.csv" in spec["paths"]


def test_a_day_is_summed_once_even_within_one_session(app):
    """The session's snapshot must not hide rollups committed since (it made every report
    re-sum every day)."""
    from core.rollups import ensure_rolled

    api, _, _ = setup(app)
    days, _ = closed_days(NOW - timedelta(days=7), NOW, NOW.date())
    with app.app_context(), get_db().session() as s:
        s.exec(select(func.count()).select_from(Click)).one()  # the session's snapshot starts here
        assert ensure_rolled(s, api.program_id, days) == len(days)
        assert ensure_rolled(s, api.program_id, days) == 0
