"""The same order from many requests at once is one sale with one ledger entry, on both
databases (SQLite serialises writers; PostgreSQL takes a per-origin advisory lock)."""
from __future__ import annotations

import threading

from sqlmodel import func, select

from core.db import get_db
from core.models import Conversion, LedgerEntry
from tests.factories import new_program


def test_concurrent_duplicate_sales_count_once(app):
    api = new_program(app)
    api.partner("Ann", key="ann")
    api.reward(event="sale", value=10)
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def post(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        for body in ({"customer_id": "c", "order_id": "o1", "amount": 1000, "currency": "USD",
                      "ref": "ann"},
                     {"order_id": "o1", "amount": 100, "refund_id": "r1"}):
            path = "/api/v1/track/sale" if "customer_id" in body else "/api/v1/track/refund"
            resp = client.post(path, json=body, headers={"Authorization": f"Bearer {api.key}"})
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) == {200}, statuses
    with app.app_context(), get_db().session() as s:
        [conv] = s.exec(select(Conversion)).all()
        assert (conv.refunded, conv.commission) == (100, 90)
        entries = s.exec(select(LedgerEntry)).all()
        assert [(e.kind, e.amount) for e in entries] == [("earned", 100), ("partially_reversed", 10)]
        assert s.exec(select(func.count()).select_from(Conversion)).one() == 1
