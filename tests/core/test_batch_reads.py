"""A batch of deliveries is decided from rows fetched once (core.batch_reads).

Two promises: a batch asks the database the same number of questions however many sales it
holds (the design that makes ingestion fast), and a batch decides every event exactly as
applying the events one transaction at a time would, also when events of one batch depend on
each other: a customer's second sale, a lead whose email a later sale carries, a refund that
comes before its sale, a promo code, a ref, a visitor's earlier click.
(tests/core/test_properties.py draws subscription journeys cut into batches.)
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import event
from sqlmodel import select

from core import events as ev
from core.db import get_db
from core.ingest import IngestContext, apply, prepare
from core.ledger import conversion_balances
from core.models import Conversion, Partner, Program
from core.money import Money
from tests.core.test_journeys import click, set_click_time
from tests.factories import new_program

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _shop(app: Any) -> Any:
    api = new_program(app)
    api.ann = api.partner("Ann", key="ann", tags=["vip"])
    api.bob = api.partner("Bob", key="bob")
    api.reward(event="sale", value=10)
    api.reward(event="sale", value=20, partner_tag="vip")
    api.ok("post", "/api/v1/promo-codes", {"partner_id": api.bob["id"], "code": "BOB10"}, 201)
    return api


def _apply_batch(app: Any, program_id: str, events: list[Any]) -> list[str]:
    """Apply as the inbox's drainer does; returns the SQL statements it ran."""
    statements: list[str] = []
    with app.app_context():
        db = get_db()

        def seen(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            with db.write() as s:
                ctx = IngestContext(session=s, program=s.get(Program, program_id), origin="src_b",
                                    platform="fake")
                prepare(ctx, events)
                for e in events:
                    apply(ctx, [e], flush=False)
                s.flush()
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
    return statements


def _apply_each(app: Any, program_id: str, events: list[Any]) -> None:
    for e in events:
        with app.app_context(), get_db().write() as s:
            ctx = IngestContext(session=s, program=s.get(Program, program_id), origin="src_b",
                                platform="fake")
            apply(ctx, [e])


def _outcome(app: Any, program_id: str) -> list[tuple]:
    with app.app_context(), get_db().session() as s:
        keys = dict(s.exec(select(Partner.id, Partner.key)
                         .where(Partner.program_id == program_id)).all())
        rows = []
        for c in s.exec(select(Conversion).where(Conversion.program_id == program_id)):
            ledger = sorted((keys[pid], cur, b.net, b.reversed) for (pid, cur), b in
                            conversion_balances(s, c.id).items())
            rows.append((c.external_id, keys.get(c.partner_id), (c.attribution or {}).get("touch"),
                         c.click_id is not None, c.commission, c.status, c.refunded, c.review,
                         tuple(ledger)))
    return sorted(rows)


def _sales(clicks: list[str], n: int, first: int = 0) -> list[ev.Sale]:
    return [ev.Sale(order_id=f"ord_{i}", amount=Money(5_000, "USD"), occurred_at=T0,
                    customer_id=f"cus_{i}", email=f"buyer{i}@example.com",
                    referral=ev.Referral(click_id=clicks[i % len(clicks)], evidence="test"))
            for i in range(first, first + n)]


def _selects(statements: list[str]) -> int:
    return sum(1 for st in statements if st.lstrip().upper().startswith("SELECT"))


def test_a_batch_asks_as_many_questions_for_fifty_sales_as_for_five(app):
    api = _shop(app)
    clicks = []
    for i in range(10):
        clicks.append(click(api, ref="ann" if i % 2 else "bob", ua=f"Mozilla/5.0 Chrome/{100 + i}"))
        set_click_time(app, clicks[-1], T0 - timedelta(hours=2))
    few = _apply_batch(app, api.program_id, _sales(clicks, 5))
    many = _apply_batch(app, api.program_id, _sales(clicks, 50, first=5))
    assert _selects(many) == _selects(few) <= 16, many
    # On PostgreSQL each table's new rows are written by one multi-row INSERT (SQLite, where
    # a statement costs no round trip, writes rows with database-made ids one by one).
    inserts = [st.split("(")[0] for st in many if st.lstrip().upper().startswith("INSERT")]
    with app.app_context():
        dialect = get_db().engine.dialect.name
    if dialect == "postgresql":
        assert len(inserts) == len(set(inserts)), inserts
    outcome = _outcome(app, api.program_id)
    assert len(outcome) == 55 and all(row[1] in ("ann", "bob") for row in outcome)
    vip = next(row for row in outcome if row[1] == "ann")
    assert vip[4] == 1_000  # the vip tag's 20 %, read from the fetched tags


def _dependent_events(clicks: list[str]) -> list[Any]:
    """Events of one batch that depend on each other's writes."""
    at = T0
    return [
        # a refund (by the charge id) before its sale, which names the charge as an alias
        ev.Refund(order_id="ch_1", refund_id="re_1", occurred_at=at, amount=Money(1_000, "USD")),
        ev.Sale(order_id="ord_1", aliases=("ch_1",), amount=Money(10_000, "USD"), occurred_at=at,
                customer_id="cus_a", email="a@example.com",
                referral=ev.Referral(click_id=clicks[0], evidence="test")),
        # the same customer again, no evidence: inherits the partner credited a moment ago
        ev.Sale(order_id="ord_2", amount=Money(3_000, "USD"), occurred_at=at + timedelta(hours=1),
                customer_id="cus_a"),
        # a lead under one id, then a sale under another id with the lead's email
        ev.Lead(customer_id="lead_b", email="B@Example.com", occurred_at=at,
                referral=ev.Referral(ref="ann", evidence="test")),
        ev.Sale(order_id="ord_3", amount=Money(2_000, "USD"), occurred_at=at + timedelta(hours=2),
                customer_id="cus_b", email="b@example.com"),
        # a promo code, and a second click of the first click's visitor
        ev.Sale(order_id="ord_4", amount=Money(4_000, "USD"), occurred_at=at, customer_id="cus_c",
                referral=ev.Referral(promo_codes=("bob10",), evidence="test")),
        ev.Sale(order_id="ord_5", amount=Money(6_000, "USD"), occurred_at=at, customer_id="cus_d",
                referral=ev.Referral(click_id=clicks[1], evidence="test")),
        # the first sale's order delivered again, and a refund of the second after it
        ev.Sale(order_id="ord_1", aliases=("ch_1",), amount=Money(10_000, "USD"), occurred_at=at,
                customer_id="cus_a", email="a@example.com"),
        ev.Refund(order_id="ord_2", refund_id="re_2", occurred_at=at + timedelta(hours=3)),
    ]


def test_a_batch_decides_as_one_delivery_at_a_time_would(app):
    one_by_one, batched = _shop(app), _shop(app)
    outcomes = []
    for api, run in ((one_by_one, _apply_each), (batched, _apply_batch)):
        first = click(api, ref="ann")
        second = click(api, ref="bob", prev=first)  # the same visitor, later, through Bob
        for c, hours in ((first, 5), (second, 4)):
            set_click_time(app, c, T0 - timedelta(hours=hours))
        run(app, api.program_id, _dependent_events([first, second]))
        outcomes.append(_outcome(app, api.program_id))
    assert outcomes[1] == outcomes[0]
    by_order = {row[0]: row for row in outcomes[1]}
    # the click's visitor clicked again later through Bob: the last touch is Bob's
    assert by_order["ord_1"][1:3] == ("bob", "click") and by_order["ord_1"][6] == 1_000  # refund waited
    assert by_order["ord_2"][1:3] == ("bob", "customer") and by_order["ord_2"][5] == "reversed"
    assert by_order["ord_3"][1:3] == ("ann", "customer")  # the lead's email
    assert by_order["ord_4"][1:3] == ("bob", "promo_code")
    assert by_order["ord_5"][1:4] == ("bob", "click", True)
