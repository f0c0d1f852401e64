"""`touchpoint backfill`: the connector lists past notifications; each goes down the webhook
path (`inbox.receive`: stored and applied in one transaction), so a second run finds every delivery already stored."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from core import inbox
from core.db import get_db
from core.models import Source
from core.sources import context, registry


class BackfillError(Exception):
    pass


def run(source_id: str, since: datetime, progress: bool = True) -> dict[str, Any]:
    db = get_db()
    with db.session() as s:
        source = s.get(Source, source_id)
    if source is None:
        raise BackfillError(f"no source {source_id!r}")
    connector = registry().get(source.platform)
    if connector is None or connector.fetch_history is None:
        raise BackfillError(f"{source.platform} sources cannot be backfilled")
    ctx = context(source, connector)
    if not ctx.credentials:
        raise BackfillError("this source has no API credentials; add them to backfill")
    counts = {"seen": 0, "new": 0, "already_stored": 0, "failed": 0}
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{source.platform} {source.id}", total=None)
        for delivery in connector.fetch_history(ctx, since):
            status, created = inbox.receive(db, connector, source, delivery)
            counts["seen"] += 1
            counts["new" if created else "already_stored"] += 1
            if status == "failed":
                counts["failed"] += 1
            bar.advance(task)
    return counts
