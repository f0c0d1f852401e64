"""Crashes: `touchpoint serve` killed with SIGKILL (master and workers at once) while deliveries
stream in from eight threads, then started again. Every delivery that was answered 2xx before a
crash is in the inbox and applied; the platforms' retries (every delivery sent again) complete the
rest; the totals are exact. The same for clicks through short links: every redirect answered
before a crash has its click in the database after the restart, once. On SQLite and PostgreSQL;
one crash in `make test`, three in `make stress`.
"""
from __future__ import annotations

import random
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.stress.platforms import deliveries, orders, with_repeats
from tests.stress.server import command
from tests.stress.shop import (
    Sent, actual, check_ledger, expected, inbox_statuses, key_of, open_shop, send_all, settle,
    stored_click_ids, stored_keys,
)

SIZES = [pytest.param((25, 1), id="quick"),
         pytest.param((250, 3), id="stress", marks=pytest.mark.stress)]


@pytest.mark.parametrize("size", SIZES)
def test_sigkill_while_deliveries_stream_in(db_url, env, serve, store, size, figures):
    per_platform, crashes = size
    rnd = random.Random(per_platform * 7)
    server = serve(workers=3)
    shop = open_shop(server, store)
    wanted = orders(rnd, "crash", per_platform, partners=len(shop.partners), base=20_000)
    distinct = deliveries(wanted, "crash", shop.targets, shop.clicks)
    stream = with_repeats(rnd, distinct)
    done = [0]
    lock = threading.Lock()

    def progressed(_i: int) -> None:
        with lock:
            done[0] += 1

    def crash_and_restart() -> None:
        """Kill the server when 1/(crashes+1), 2/(crashes+1)... of the stream has been tried."""
        for k in range(1, crashes + 1):
            while done[0] < len(stream) * k // (crashes + 1):
                time.sleep(0.01)
            server.kill()
            time.sleep(0.5)
            server.start()

    sent = Sent()
    crasher = threading.Thread(target=crash_and_restart)
    crasher.start()
    # Senders retry a refused connection for a while, as platforms do; an answer that never came
    # (the connection died with the server) is not a 2xx and is sent again at the end.
    send_all(server.url, stream, threads=8, sent=sent, on_each=progressed, retries=3)
    crasher.join()
    assert sent.refused == []

    # After the restart: `touchpoint jobs run` finishes anything stored but not yet applied.
    command(env, "jobs", "run", "--json")
    stored = set(stored_keys(db_url, shop.program["program_id"]))
    assert inbox_statuses(db_url, shop.program["program_id"]) == {"processed": len(stored)}
    keys = {d.event: key_of(shop, d) for d in distinct}
    acknowledged = {keys[stream[i].event] for i in sent.acknowledged}
    lost = sorted({stream[i].event for i in sent.acknowledged if keys[stream[i].event] not in stored})
    assert not lost, f"{len(lost)} deliveries answered 2xx are not in the inbox: {lost}"
    # Every acknowledged sale is applied already, and so is every acknowledged refund of one.
    by_event = {}
    for platform in {o.platform for o in wanted}:
        for n, order in enumerate(o for o in wanted if o.platform == platform):
            by_event[f"{platform}:sale:{n}"] = by_event[f"{platform}:refund:{n}"] = order
    acked_events = {stream[i].event for i in sent.acknowledged}
    got = shop.conversions()
    for event in acked_events:
        order = by_event[event]
        key = (order.platform, order.external_id)
        if ":sale:" in event:
            assert key in got, f"{event} was answered 2xx but is not applied"
            if event.replace(":sale:", ":refund:") in acked_events:
                assert got[key]["status"] == "reversed", event

    # The platforms retry: every distinct delivery again (and a third twice), in another order.
    retry = with_repeats(rnd, distinct)
    again = send_all(server.url, retry, threads=8, retries=3)
    assert again.refused == [] and len(again.acknowledged) == len(retry)
    got = settle(shop, wanted)
    assert actual(got) == expected(wanted)
    check_ledger(shop.earnings(), wanted)
    assert sorted(stored_keys(db_url, shop.program["program_id"])) == sorted(keys.values())
    figures.update(deliveries_sent=len(stream) + len(retry), distinct_deliveries=len(distinct),
                   crashes_survived=crashes, acknowledged_before_crash_recovery=len(acknowledged),
                   unanswered_at_crash=len(stream) - len(sent.acknowledged), lost=0)


CLICK_SIZES = [pytest.param((600, 1), id="quick"),
               pytest.param((6000, 3), id="stress", marks=pytest.mark.stress)]


@pytest.mark.parametrize("size", CLICK_SIZES)
def test_sigkill_while_clicks_stream_in(db_url, env, serve, size, figures):
    """Short-link redirects from four threads while the server is killed: the click of every
    redirect that was answered is in the database once the server is back (a killed worker's
    spool file is moved by the next), and nothing is stored that no request made. Clicks gather
    for 200 ms before a move here (5 by default), so that every kill finds some unmoved."""
    total, crashes = size
    env["TOUCHPOINT_CLICK_GATHER_MS"] = "200"
    server = serve(workers=2)
    shop = open_shop(server, None, partners=1, platforms=())
    link = shop.call("POST", "/api/v1/links", json={"partner_id": shop.partners[0]["id"],
                                                    "url": "https://shop.example/landing"})
    follow = f"{server.url}/r/{link['key']}"
    answered: list[str] = []
    unexpected: list[int] = []
    tried, kills = [0], [0]
    lock = threading.Lock()

    def clicker() -> None:
        with requests.Session() as http:
            while True:
                with lock:
                    if tried[0] >= total:
                        return
                    tried[0] += 1
                try:
                    resp = http.get(follow, allow_redirects=False, timeout=10)
                except requests.RequestException:
                    time.sleep(0.05)  # the server is down: this click may or may not be stored
                    continue
                with lock:
                    if resp.status_code != 302:
                        unexpected.append(resp.status_code)
                        continue
                    answered.extend(parse_qs(urlsplit(resp.headers["Location"]).query)["tp_click"])

    def crash_and_restart() -> None:
        for k in range(1, crashes + 1):
            while len(answered) < total * k // (crashes + 2) and any(t.is_alive() for t in threads):
                time.sleep(0.005)
            kills[0] += 1
            server.kill()
            time.sleep(0.3)
            server.start()

    threads = [threading.Thread(target=clicker) for _ in range(4)]
    crasher = threading.Thread(target=crash_and_restart)
    for t in threads:
        t.start()
    crasher.start()
    for t in threads:
        t.join()
    crasher.join()
    assert unexpected == [] and kills[0] == crashes and tried[0] == total

    program_id = shop.program["program_id"]
    deadline = time.monotonic() + 30
    while True:  # moved within milliseconds while the server runs
        stored = stored_click_ids(db_url, program_id)
        lost = set(answered) - set(stored)
        if not lost or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not lost, f"{len(lost)} of {len(answered)} answered clicks are not stored"
    assert len(stored) == len(set(stored)) <= total  # none twice, none made up
    assert len(answered) > total // 2
    figures.update(clicks_tried=total, clicks_answered=len(answered), click_crashes=crashes, lost=0)
