"""`touchpoint backfill` killed half way (SIGKILL while it waits for a page of the store's orders)
and run again: the second run stores what the first did not reach, every order counts exactly
once, and a third run finds everything stored. Against a fake WooCommerce store on loopback,
whose REST API the real client pages through; on SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from datetime import datetime, timezone

import pytest

from connectors.woocommerce.client import PER_PAGE
from tests.stress.platforms import Order, woocommerce_payload
from tests.stress.server import ROOT, TOUCHPOINT, command
from tests.stress.shop import actual, expected, check_ledger, open_shop, settle

def result(stdout: str) -> dict[str, int]:
    """The JSON document `--json` prints. (Today rich's progress bar is drawn on stdout before it
    even with `--json`: core/cli.py passes `progress=... or True`; the document is the tail.)"""
    return json.loads(stdout[stdout.index("{"):])


SIZES = [pytest.param((250, 2), id="quick"),
         pytest.param((1500, 8), id="stress", marks=pytest.mark.stress)]


@pytest.mark.parametrize("size", SIZES)
def test_backfill_killed_half_way_completes_once(db_url, env, serve, store, size, figures):
    count, hold_page = size
    rnd = random.Random(count)
    server = serve(workers=2)
    shop = open_shop(server, store, platforms=("woocommerce",))
    source = shop.sources["woocommerce"]["id"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    wanted = [Order("woocommerce", str(30_000 + n), rnd.randrange(500, 50_000),
                    rnd.randrange(len(shop.partners)), rnd.random() < 0.25) for n in range(count)]
    store.orders = [woocommerce_payload("backfill", n, shop.clicks[o.partner], o, now,
                                        refunded=o.refunded) for n, o in enumerate(wanted)]
    store.hold_page = hold_page
    backfill = [TOUCHPOINT, "backfill", source, "--since", "2020-01-01", "--json"]
    proc = subprocess.Popen(backfill, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert store.held.wait(120), "the backfill never asked for the held page"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        store.hold_page = None
        store.release()
    assert proc.returncode == -signal.SIGKILL

    # What the killed run reached (the pages before the held one) is stored and applied, exactly.
    reached = wanted[:(hold_page - 1) * PER_PAGE]
    assert actual(settle(shop, reached)) == expected(reached)

    second = result(command(env, *backfill[1:]))
    assert second == {"seen": count, "new": count - len(reached),
                      "already_stored": len(reached), "failed": 0}
    assert actual(settle(shop, wanted)) == expected(wanted)
    check_ledger(shop.earnings(), wanted)
    third = result(command(env, *backfill[1:]))
    assert third == {"seen": count, "new": 0, "already_stored": count, "failed": 0}
    assert actual(shop.conversions()) == expected(wanted)
    figures.update(backfill_orders=count, backfills_killed=1, backfill_runs=3,
                   orders_stored_before_kill=len(reached), lost=0, counted_twice=0)
