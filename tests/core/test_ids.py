"""Identifiers: random ids, and the click ids that sort by the time they were made."""
from __future__ import annotations

import re
import time

from core.ids import new_id, new_sortable_id

TOKEN = re.compile(r"[\w-]{1,64}", re.ASCII)  # what /r/, t.js and the connectors accept


def test_sortable_ids_sort_by_time_and_stay_unguessable():
    made = []
    for _ in range(3):
        made += [new_sortable_id("clk") for _ in range(200)]
        time.sleep(0.002)
    stamps = [int(i[4:16], 16) for i in made]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time() * 1000) < 5000
    assert len(set(made)) == len(made)
    assert all(TOKEN.fullmatch(i) and i.startswith("clk_") and len(i) == 32 for i in made)
    # 16 random base32 characters after the time: 80 bits, as many as `new_id`'s.
    assert len({i[16:] for i in made}) == len(made)
    assert all(re.fullmatch(r"[a-z2-7]{16}", i[16:]) for i in made)


def test_random_ids_have_their_prefix_and_length():
    ids = {new_id("cnv") for _ in range(500)}
    assert len(ids) == 500 and all(re.fullmatch(r"cnv_[a-z2-7]{16}", i) for i in ids)
