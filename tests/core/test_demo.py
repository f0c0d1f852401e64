"""`touchpoint demo`: a living program, built through the real engine."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func
from sqlmodel import select

from core import demo, reports
from core.db import get_db
from core.ledger import signed_into
from core.models import Conversion, LedgerEntry, Partner, Program, Source
from tests.core.web.test_admin import login


def test_demo_fills_a_program_whose_reports_match_the_ledger(app):
    with app.app_context():
        out = demo.run(app, days=60, seed=7)
    assert out["partners"] == 8 and out["clicks"] > 500 and out["sales"] > 10
    assert out["api_key"].startswith("tp_sk_") and out["admin_url"].endswith("/admin")
    with app.app_context(), get_db().session() as s:
        program = s.get(Program, out["program_id"])
        assert {src.platform for src in s.exec(select(Source))} == {"stripe", "paddle", "woocommerce", "shopify"}
        assert all(src.secrets_encrypted for src in s.exec(select(Source)))
        assert s.exec(select(func.count()).select_from(Partner)).one() == 8
        platforms = set(s.exec(select(Conversion.platform).distinct()).all())
        assert platforms <= {"stripe", "paddle", "woocommerce", "shopify"} and len(platforms) >= 3
        assert s.exec(select(func.count()).select_from(Conversion).where(Conversion.renewal)).one() > 0
        now = datetime.now(timezone.utc)
        got = reports.report_with_previous(s, program, "partner", now - timedelta(days=400),
                                           now + timedelta(days=1))
        net = sum(int(v) for v in s.exec(select(
            signed_into("pending") + signed_into("approved") + signed_into("paid"))
            .select_from(LedgerEntry)).all())
        approved = s.exec(select(func.sum(signed_into("approved"))).select_from(LedgerEntry)).one()
    assert got["totals"]["commission"] == net > 0
    assert approved and approved > 0  # old commissions were approved by the job
    client = app.test_client()
    assert login(client, out["email"], out["password"]).status_code == 302
    assert "Demo Outfitters" in client.get("/admin/").get_data(as_text=True)
