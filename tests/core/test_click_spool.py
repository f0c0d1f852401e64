"""The redirect's click spool (core/click_spool.py): clicks answered from a file, moved to the
database in batches that end exactly as one insert per click would, nothing lost when the
process dies, nothing counted twice when a file is moved again, on both databases."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from core import make_app
from core.click_spool import ClickSpool, read_rows
from tests.factories import new_program, stored_clicks

ROOT = Path(__file__).resolve().parents[2]
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


def _recorder(app):  # type: ignore[no-untyped-def]
    return app.extensions["touchpoint"]["clicks"]


def _link(api, url: str = "https://shop.example/p") -> dict:  # type: ignore[no-untyped-def]
    ann = api.partner("Ann", key="ann")
    return api.ok("post", "/api/v1/links", {"partner_id": ann["id"], "url": url}, 201)


def _follow(client, key: str, ip: str = "203.0.113.1", ua: str = CHROME, cookie: str | None = None) -> str:  # type: ignore[no-untyped-def]
    if cookie:
        client.set_cookie("tp_click", cookie)
    else:
        client.delete_cookie("tp_click")
    resp = client.get(f"/r/{key}", headers={"User-Agent": ua}, environ_base={"REMOTE_ADDR": ip})
    assert resp.status_code == 302
    return parse_qs(urlsplit(resp.headers["Location"]).query)["tp_click"][0]


class HeldMover:
    """Holds the spool's first move until released, so the clicks made meanwhile are moved
    together: the batch path, deterministically. Records each move's size."""

    def __init__(self, spool: ClickSpool) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.sizes: list[int] = []
        self.real = spool.write
        spool.write = self

    def __call__(self, rows: list) -> None:  # type: ignore[type-arg]
        self.entered.set()
        self.gate.wait(10)
        self.sizes.append(len(rows))
        self.real(rows)


def spooled_files(app) -> list[Path]:  # type: ignore[no-untyped-def]
    directory = _recorder(app).spool.directory
    return sorted(directory.iterdir()) if directory.exists() else []


def test_a_batch_ends_as_one_insert_per_click_would(app):
    """Visitors chained to a click of the same batch, a browser's repeat within the batch, a bot,
    and a click chained to an earlier batch: all as if each had been inserted on its own."""
    api = new_program(app)
    link = _link(api)
    client = api.client
    held = HeldMover(_recorder(app).spool)
    before = _follow(client, link["key"], ip="198.51.100.1")  # moved alone, held
    assert held.entered.wait(5)
    first = _follow(client, link["key"], ip="203.0.113.1")
    again = _follow(client, link["key"], ip="203.0.113.1", cookie=first)  # same browser, same batch
    earlier = _follow(client, link["key"], ip="203.0.113.2", cookie=before)  # chained to the held one
    bot = _follow(client, link["key"], ip="203.0.113.3", ua="Googlebot/2.1 (+http://www.google.com/bot.html)")
    held.gate.set()
    got = {c.id: c for c in stored_clicks(app)}
    assert held.sizes == [1, 4]
    assert [got[i].visitor_id for i in (before, first, again, earlier, bot)] == [before, first, first, before, bot]
    assert [got[i].is_unique for i in (before, first, again, earlier)] == [True, True, False, True]
    assert (got[bot].is_bot, got[first].is_bot) == (True, False)
    assert spooled_files(app) == []  # a file goes once its clicks are committed


def test_a_click_the_database_refuses_is_left_out_and_the_rest_stored(app):
    """A partner gone between the click and its move (here: one that never was) fails the
    batch's transaction; the batch is stored click by click without it, never retried forever."""
    api = new_program(app)
    link = _link(api)
    recorder = _recorder(app)
    held = HeldMover(recorder.spool)
    gone = {"program_id": api.program_id, "partner_id": "prt_missing", "link_id": None,
            "campaign": None, "url": "https://shop.example/", "referrer": None,
            "user_agent": CHROME, "ip": "192.0.2.1"}
    kept = [_follow(api.client, link["key"])]
    assert held.entered.wait(5)
    recorder.record(**gone, wait=False)
    kept.append(_follow(api.client, link["key"]))
    held.gate.set()
    assert [c.id for c in stored_clicks(app)] == kept
    assert spooled_files(app) == []
    # A caller waiting for its click (the click API) hears the refusal instead.
    with pytest.raises((sqlite3.IntegrityError, psycopg.DatabaseError)):
        recorder.record(**gone)
    assert [c.id for c in stored_clicks(app)] == kept


def test_an_outage_keeps_the_file_and_the_move_is_tried_again(app):
    api = new_program(app)
    link = _link(api)
    spool = _recorder(app).spool
    real, calls, on_disk = spool.write, [], []

    def failing_once(rows: list) -> None:  # type: ignore[type-arg]
        calls.append(len(rows))
        if len(calls) == 1:
            on_disk.append(len(spooled_files(app)))
            raise OperationalError("INSERT", {}, Exception("database is down"))
        real(rows)

    spool.write = failing_once
    ids = [_follow(api.client, link["key"], ip=f"203.0.113.{i}") for i in range(1, 4)]
    assert sorted(c.id for c in stored_clicks(app)) == sorted(ids)
    assert on_disk[0] >= 1  # the clicks were on disk while the move failed
    assert len(calls) >= 2 and spooled_files(app) == []


def test_clicks_of_a_killed_process_are_moved_by_the_next_once(app, db_url, tmp_path):
    """SIGKILL after the redirects answered and before their clicks were moved: the next app to
    start (sharing the database and var dir) moves them; moving the same file again adds none."""
    api = new_program(app)
    link = _link(api)
    child = subprocess.Popen([sys.executable, "-m", "tests.core.spool_child", db_url, str(tmp_path),
                              link["key"], "25"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        answered = json.loads(child.stdout.readline())  # type: ignore[union-attr]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]
    assert len(answered) == 25 and stored_clicks(app) == []
    orphans = spooled_files(app)
    assert orphans  # held by nobody now
    shutil.copy(orphans[-1], orphans[-1].with_name("zz-copy.tmp"))
    os.rename(orphans[-1].with_name("zz-copy.tmp"), orphans[-1].with_name("zz-copy.clicks"))

    restarted = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                          "var_dir": tmp_path, "base_url": "http://touchpoint.test",
                          "testing": True}, ())
    try:
        got = stored_clicks(restarted)
        assert sorted(c.id for c in got) == sorted(answered)  # all there, none twice
        assert {c.visitor_id == c.id for c in got} == {True} and sum(c.is_unique for c in got) == 1
        assert spooled_files(restarted) == []
    finally:
        restarted.extensions["touchpoint_db"].dispose()


def test_a_live_process_file_is_not_taken(app):
    """Another spool of the same database scanning for orphans leaves a living process's file."""
    api = new_program(app)
    link = _link(api)
    spool = _recorder(app).spool
    held = HeldMover(spool)
    _follow(api.client, link["key"])
    _follow(api.client, link["key"])  # waits in a file while the first move is held
    stranger = ClickSpool(spool.directory, lambda rows: (_ for _ in ()).throw(AssertionError("taken")))
    assert stranger.recover() == 0 and len(spooled_files(app)) >= 1
    held.gate.set()
    assert len(stored_clicks(app)) == 2


def test_a_line_cut_short_is_left_out(tmp_path):
    """A process killed inside its write never answered that click: the half line is not one."""
    path = tmp_path / "1-a.clicks"
    path.write_bytes(b'["clk_1",1]\n["clk_2",2]\n["clk_3"')
    assert read_rows(path) == [["clk_1", 1], ["clk_2", 2]]
