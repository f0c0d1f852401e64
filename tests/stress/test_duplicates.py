"""Duplicates and concurrency against `touchpoint serve --workers 3`: deliveries from all four
platforms, a third of them sent again, shuffled, from eight threads. Every distinct event is
counted exactly once and the ledger's sums are exact to the cent, on SQLite and PostgreSQL.

The quick variant runs in `make test`; the `stress` one (thousands of deliveries) in `make stress`.
"""
from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.stress.platforms import PLATFORMS, deliveries, orders, with_repeats
from tests.stress.shop import (
    actual, check_ledger, expected, key_of, open_shop, send_all, settle, stored_keys,
)

SIZES = [pytest.param(40, id="quick"),
         pytest.param(400, id="stress", marks=pytest.mark.stress)]


@pytest.mark.parametrize("per_platform", SIZES)
def test_every_distinct_event_counts_once(db_url, serve, store, per_platform, figures):
    rnd = random.Random(per_platform)
    server = serve(workers=3)
    shop = open_shop(server, store)
    wanted = orders(rnd, "dup", per_platform, partners=len(shop.partners), base=10_000)
    distinct = deliveries(wanted, "dup", shop.targets, shop.clicks)
    stream = with_repeats(rnd, distinct)

    sent = send_all(server.url, stream, threads=8)

    assert sent.refused == [] and sent.errors == 0
    assert len(sent.acknowledged) == len(stream)
    got = settle(shop, wanted)
    assert actual(got) == expected(wanted)
    assert Counter(c["platform"] for c in got.values()) == {p: per_platform for p in PLATFORMS}
    check_ledger(shop.earnings(), wanted)
    # The inbox holds each distinct delivery once.
    assert Counter(stored_keys(db_url, shop.program["program_id"])) == \
        Counter(key_of(shop, d) for d in distinct)
    figures.update(deliveries_sent=len(stream), distinct_deliveries=len(distinct),
                   repeated_deliveries=len(stream) - len(distinct), orders=len(wanted),
                   refunds=sum(o.refunded for o in wanted), lost=0, counted_twice=0)
