"""The SQLite inbox's waiting room (`core.spool`): durable files, one per delivery key, read back
oldest first, never a half-written file."""
from __future__ import annotations

import json
import os
import time

from core.connectors import Delivery
from core.spool import Spool


def delivery(n: int) -> Delivery:
    body = json.dumps({"id": f"evt_{n}", "amount": n}).encode()
    return Delivery(delivery_id=f"evt_{n}", topic="charge.succeeded", payload=None, body=body,
                    headers={"Stripe-Signature": "t=1,v1=x"})


def test_put_then_read_back_oldest_first(tmp_path):
    spool = Spool(tmp_path / "db.sqlite.inbox")
    for n in (3, 1, 2):
        assert spool.put("src_a", "prg_1", f"evt_{n}", delivery(n))
        time.sleep(0.002)  # distinct write times
    waiting = spool.waiting("src_a", 10)
    assert [w.key for w in waiting] == ["evt_3", "evt_1", "evt_2"]
    first = waiting[0]
    assert (first.program_id, first.topic, first.headers) == ("prg_1", "charge.succeeded",
                                                              {"Stripe-Signature": "t=1,v1=x"})
    assert first.body == delivery(3).body  # the raw bytes, as signed
    assert [w.key for w in spool.waiting("src_a", 2)] == ["evt_3", "evt_1"]
    assert spool.waiting("src_b", 10) == [] and not spool.has_waiting("src_b")


def test_the_same_key_twice_is_one_file(tmp_path):
    spool = Spool(tmp_path / "inbox")
    assert spool.put("src_a", "prg_1", "evt_1", delivery(1))
    assert not spool.put("src_a", "prg_1", "evt_1", delivery(1))
    assert spool.put("src_b", "prg_1", "evt_1", delivery(1))  # another source's is another file
    assert len(spool.waiting("src_a", 10)) == 1
    # No temporary file is left beside it.
    assert all(not name.startswith(".tmp") for d in (tmp_path / "inbox").iterdir()
               for name in os.listdir(d))


def test_removed_files_are_gone_and_half_written_ones_are_never_read(tmp_path):
    spool = Spool(tmp_path / "inbox")
    spool.put("src_a", "prg_1", "evt_1", delivery(1))
    spool.put("src_a", "prg_1", "evt_2", delivery(2))
    first = spool.waiting("src_a", 1)
    spool.remove(first)
    spool.remove(first)  # a second removal (a crash retried) is harmless
    assert [w.key for w in spool.waiting("src_a", 10)] == ["evt_2"]
    # A writer that died before linking its file leaves only a temporary name: not a delivery.
    directory = spool.waiting("src_a", 1)[0].path.parent
    (directory / ".tmp-123-456").write_bytes(b'{"key": "half')
    assert [w.key for w in spool.waiting("src_a", 10)] == ["evt_2"]
    assert (directory / ".tmp-123-456").exists()  # perhaps still being written
    old = time.time() - 2 * 3600
    os.utime(directory / ".tmp-123-456", (old, old))
    spool.waiting("src_a", 10)
    assert not (directory / ".tmp-123-456").exists()  # an hour old: its writer is gone
    spool.remove(spool.waiting("src_a", 10))
    assert not spool.has_waiting("src_a")
