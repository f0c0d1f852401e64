"""Print the figures table of docs/reliability.md from a run's report file:

    TOUCHPOINT_RELIABILITY_REPORT=.reports/reliability.json make test stress
    .venv/bin/python -m tests.stress.report .reports/reliability.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = (  # (section, figure, label)
    ("duplicates", "deliveries_sent", "deliveries sent, 4 platforms, 8 threads, shuffled"),
    ("duplicates", "distinct_deliveries", "distinct deliveries (sales and refunds)"),
    ("duplicates", "repeated_deliveries", "of them sent twice"),
    ("duplicates", "orders", "orders whose commission was checked to the cent"),
    ("crash", "deliveries_sent", "deliveries sent around the kills, retry pass included"),
    ("crash", "crashes_survived", "SIGKILLs of `touchpoint serve` (master and workers)"),
    ("crash", "acknowledged_before_crash_recovery", "distinct deliveries answered 2xx around the kills: all in the inbox and applied after restart"),
    ("crash", "unanswered_at_crash", "deliveries a kill left unanswered, completed by the retry pass"),
    ("crash", "click_crashes", "SIGKILLs while short-link redirects streamed in (4 threads)"),
    ("crash", "clicks_answered", "redirects answered around those kills: every click stored after restart"),
    ("backfill_crash", "backfill_orders", "orders backfilled"),
    ("backfill_crash", "backfills_killed", "backfills killed half way (SIGKILL)"),
    ("backfill_crash", "orders_stored_before_kill", "orders the killed runs had stored"),
    ("scale_out", "limited_requests_sent", "rate-limited requests across two servers"),
    ("scale_out", "redirect_cache_stale_ms", "time for a removed domain to stop the other server's redirects (ms)"),
    ("scale_out", "live_feed_ms", "time for a conversion to reach the other server's live feed (ms)"),
)
LOST = ("duplicates", "crash", "backfill_crash")


def table(data: dict) -> str:  # type: ignore[type-arg]
    lines = ["| figure | SQLite | PostgreSQL |", "| --- | --- | --- |"]
    for section, key, label in ROWS:
        cells = []
        for db in ("sqlite", "postgresql"):
            value = data.get(section, {}).get(db, {}).get(key)
            cells.append("—" if value is None else f"{value:,}")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lost = [sum(data.get(s, {}).get(db, {}).get(k, 0) for s in LOST
                for k in ("lost", "counted_twice")) for db in ("sqlite", "postgresql")]
    lines.append(f"| **lost or counted twice** | **{lost[0]}** | **{lost[1]}** |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    print(table(json.loads(Path(argv[0]).read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
