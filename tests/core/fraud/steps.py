"""Steps of the fraud tests, through the public API as a merchant's server would call it:
clicks (moved to a chosen time), leads, sales, reviews, earnings, the approval job."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.jobs import approve_due
from tests.core.test_journeys import click, iso, set_click_time

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def clicked(app, api, ref: str, ago: timedelta = timedelta(hours=1), at: datetime = T0,
            **kw) -> str:
    """A click for `ref`, moved to `ago` before `at` (a person's pace unless a test says)."""
    c = click(api, ref=ref, **kw)
    set_click_time(app, c, at - ago)
    return c


def buy(api, order: str, amount: int = 10000, at: datetime = T0, **kw) -> dict:
    body = {"customer_id": kw.pop("customer", f"cust-{order}"), "order_id": order,
            "amount": amount, "currency": "USD", "occurred_at": iso(at), **kw}
    return api.ok("post", "/api/v1/track/sale", body)


def sign_up(api, customer: str, email: str, at: datetime = T0, **kw) -> dict:
    body = {"customer_id": customer, "email": email, "occurred_at": iso(at), **kw}
    return api.ok("post", "/api/v1/track/lead", body)


def earnings(api, partner: dict) -> dict:
    return api.ok("get", f"/api/v1/partners/{partner['id']}/earnings")


def reviews(api, state: str = "held") -> list[dict]:
    return api.ok("get", f"/api/v1/reviews?state={state}")["data"]


def rules_fired(conversion_id: str, api) -> list[str]:
    """The rules that held a conversion, as the review API shows them."""
    for state in ("held", "released", "rejected"):
        for r in reviews(api, state):
            if r["conversion_id"] == conversion_id:
                return [reason["rule"] for reason in r["reasons"]]
    return []


def run_jobs(app, now: datetime) -> int:
    with app.app_context():
        return approve_due(now)
