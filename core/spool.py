"""The inbox's waiting room on SQLite: verified deliveries as files beside the database.

SQLite has one writer, and a source's drainer holds it while it applies a batch. Were a request
to insert its delivery into the inbox table, it would wait for that batch, the next batch would
find only what was stored meanwhile, and every delivery would pay a transaction of its own (the
benchmark measured 1.0 deliveries per transaction). A file needs no database lock: the request
writes one, fsyncs it, links it into place and answers; the drainer moves every waiting file into
the inbox table in one transaction and applies them in batches as large as what arrived.

Durability is the table's: a file is fsynced and linked under its final name, and its directory
fsynced, before the request answers. Linking under a name made from the delivery key is atomic
and fails when the name exists, so the same delivery twice while waiting is one file. A file is
removed only after the transaction that inserted its row has committed; a crash in between leaves
a file whose row exists, which the next move finds stored and removes.

PostgreSQL has no single writer (its inserts take row locks only), so it keeps the table alone.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.connectors import Delivery

SUFFIX = ".delivery"
STALE_SECONDS = 3600  # a temporary file this old belongs to no living request


@dataclass(frozen=True)
class Waiting:
    """One spooled delivery, read back: what the inbox row is made from."""

    path: Path
    program_id: str
    key: str
    topic: str
    headers: dict[str, str]
    body: bytes
    received_ns: int


class Spool:
    """One directory per source under `root` (the database's path plus `.inbox`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, source_id: str) -> Path:
        # Source ids are the app's own (`src_...`); the hash keeps any other name a plain file name.
        return self.root / hashlib.sha256(source_id.encode()).hexdigest()[:32]

    def put(self, source_id: str, program_id: str, key: str, delivery: Delivery) -> bool:
        """Write the delivery durably; False when the same key is already waiting."""
        directory = self._dir(source_id)
        directory.mkdir(parents=True, exist_ok=True)
        head = json.dumps({"program_id": program_id, "key": key, "topic": delivery.topic,
                           "headers": dict(delivery.headers), "received_ns": time.time_ns()},
                          separators=(",", ":")).encode()
        final = directory / (hashlib.sha256(key.encode()).hexdigest() + SUFFIX)
        tmp = directory / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, head + b"\n" + delivery.body)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        _sync_dir(directory)
        return True

    def waiting(self, source_id: str, limit: int) -> list[Waiting]:
        """Up to `limit` waiting deliveries of the source, oldest first (by the time their file
        was written: a stat each, so a long backlog is not read whole for every batch)."""
        entries = []
        try:
            for e in os.scandir(self._dir(source_id)):
                if e.name.endswith(SUFFIX):
                    entries.append((e.stat().st_mtime_ns, e.name, Path(e.path)))
                elif e.name.startswith(".tmp-") and e.stat().st_mtime < time.time() - STALE_SECONDS:
                    os.unlink(e.path)  # a writer died before linking it: never answered
        except FileNotFoundError:
            return []
        found = []
        for _, _, path in sorted(entries)[:limit]:
            head, _, body = path.read_bytes().partition(b"\n")
            meta = json.loads(head)
            found.append(Waiting(path, meta["program_id"], meta["key"], meta["topic"],
                                 meta["headers"], body, meta["received_ns"]))
        return found

    def has_waiting(self, source_id: str) -> bool:
        try:
            return any(n.endswith(SUFFIX) for n in os.listdir(self._dir(source_id)))
        except FileNotFoundError:
            return False

    def remove(self, items: list[Waiting]) -> None:
        """Called once the rows made from `items` are committed."""
        for item in items:
            try:
                os.unlink(item.path)
            except FileNotFoundError:
                pass
        if items:
            _sync_dir(items[0].path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
