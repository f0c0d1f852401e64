"""Scale-out: two `touchpoint serve` processes on different ports over one database behave as one
service. Nothing that matters lives in only one process: rate limits are counted in the database
(core/ratelimit.py), sessions are signed with the shared secret key, settings and sources are read
from the database, and the per-process caches of the click path expire after
`core.tracking.CACHE_SECONDS`, the bound within which a change made through one server reaches
the other's redirects.

On PostgreSQL, the production set-up, and on SQLite (two servers on one machine sharing a file).
"""
from __future__ import annotations

import re
import time
from itertools import cycle

import requests

from core.ratelimit import CLICK_LIMIT, FORGED_WEBHOOK_LIMIT, LOGIN_LIMIT
from core.tracking import CACHE_SECONDS
from tests.stress.platforms import SECRETS, Order, Target, deliveries
from tests.stress.server import command
from tests.stress.shop import open_shop, send_all

PASSWORD = "stress-test-password"


def limit_of(limit: str) -> int:
    return int(limit.split()[0])


def until_refused(attempt, servers) -> tuple[int, list[int]]:  # type: ignore[no-untyped-def]
    """Call `attempt(server_url)` alternating between the servers until one answers 429; how many
    were accepted, then what every server answers next."""
    accepted = 0
    for url in cycle(servers):
        code = attempt(url)
        if code == 429:
            return accepted, [attempt(other) for other in servers]
        accepted += 1
        assert accepted <= 10 * limit_of(CLICK_LIMIT), "never limited"
    raise AssertionError  # pragma: no cover


def login(session: requests.Session, base: str, email: str, password: str) -> int:
    page = session.get(f"{base}/admin/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return session.post(f"{base}/admin/login", allow_redirects=False, timeout=30, data={
        "email": email, "password": password, "csrf_token": token}).status_code


def test_two_servers_behave_as_one(db_url, env, serve, figures):
    a, b = serve(workers=2), serve(workers=2)
    servers = [a.url, b.url]
    shop = open_shop(a, None, platforms=("stripe",))
    email = "owner@shop.example"
    command(env, "user", "create", "--program", shop.program["program_id"], "--email", email,
            "--password", PASSWORD)

    # --- a source's secret replaced through A is used by B at once ------------------------------
    stripe = shop.sources["stripe"]["id"]
    shop.call("PATCH", f"/api/v1/sources/{stripe}", a.url, json={"webhook_secret": "whsec_rotated"})
    order = Order("stripe", "pi_scale_0", 12_345, 0, False)
    [old_sale] = deliveries([order], "scale", {"stripe": _target(shop, SECRETS["stripe"])},
                            shop.clicks)
    [new_sale] = deliveries([order], "scale", {"stripe": _target(shop, "whsec_rotated")},
                            shop.clicks)
    assert [code for _i, code, _t in send_all(b.url, [old_sale], threads=1).refused] == [401]

    # --- live updates: a conversion received by A shows in the admin feed served by B ----------
    owner = requests.Session()
    assert login(owner, a.url, email, PASSWORD) == 302  # the session cookie works on B too
    before = owner.get(f"{b.url}/admin/live.json", timeout=30).json()
    assert all(c["external_id"] != order.external_id for c in before["conversions"])
    assert send_all(a.url, [new_sale], threads=1).acknowledged == {0}
    started = time.monotonic()
    while True:
        feed = owner.get(f"{b.url}/admin/live.json", timeout=30).json()
        if any(c["external_id"] == order.external_id for c in feed["conversions"]):
            break
        assert time.monotonic() - started < 10, "B's live feed never showed A's conversion"
        time.sleep(0.1)
    live_seconds = time.monotonic() - started

    # --- program settings changed through A reach B's redirects within CACHE_SECONDS -----------
    link = shop.call("POST", "/api/v1/links", a.url, json={
        "partner_id": shop.partners[0]["id"], "url": "https://shop.example/landing"})
    follow = f"{b.url}/r/{link['key']}"
    assert requests.get(follow, allow_redirects=False, timeout=30).status_code == 302  # cached
    shop.call("PATCH", "/api/v1/program", a.url, json={"allowed_domains": ["other.example"]})
    changed = time.monotonic()
    while requests.get(follow, allow_redirects=False, timeout=30).status_code == 302:
        assert time.monotonic() - changed < CACHE_SECONDS + 5, "B kept redirecting off-domain"
        time.sleep(0.2)
    stale_seconds = time.monotonic() - changed
    assert stale_seconds <= CACHE_SECONDS + 1

    # --- rate limits: hits through one server count on the other -------------------------------
    def click(url: str) -> int:
        return requests.post(f"{url}/api/v1/track/click", timeout=30, json={
            "publishable_key": shop.program["publishable_key"], "ref": "p0"}).status_code

    clicks, after = until_refused(click, servers)
    # Per-process counters would take 2 servers x 2 workers x the limit.
    assert clicks <= limit_of(CLICK_LIMIT) and after == [429, 429]

    def forged(url: str) -> int:
        return requests.post(f"{url}/webhooks/stripe/{stripe}", timeout=30, data=b"{}",
                             headers={"Stripe-Signature": "t=1,v1=00"}).status_code

    forgeries, after = until_refused(forged, servers)
    # The delivery signed with the old secret, refused by B above, was the first of the window.
    assert forgeries == limit_of(FORGED_WEBHOOK_LIMIT) - 1 and after == [429, 429]

    def wrong_password(url: str) -> int:
        return login(requests.Session(), url, email, "not-the-password")

    logins, after = until_refused(wrong_password, servers)
    assert logins <= limit_of(LOGIN_LIMIT) - 1 and after == [429, 429]  # the owner's counted
    assert [login(requests.Session(), url, email, PASSWORD) for url in servers] == [429, 429]
    figures.update(servers=2, limited_requests_sent=clicks + forgeries + logins + 6,
                   live_feed_ms=int(live_seconds * 1000),
                   redirect_cache_stale_ms=int(stale_seconds * 1000))


def _target(shop, secret: str) -> Target:  # type: ignore[no-untyped-def]
    return Target(shop.targets["stripe"].path, secret)
