"""Clicks answered once written to a file, moved to the database in batches.

A click committed on its own costs a transaction: on SQLite the one writer's lock, a WAL commit
and the other worker's page cache emptied; on PostgreSQL a round trip and a commit on the same
two cores as the app. `GET /r/<key>` instead appends its click to this worker's spool file and
answers; a thread of the worker moves whatever has gathered into the database in one
transaction: at once when it is quiet, and under load at most every `gather_seconds` (5 ms), so
a transaction carries the clicks of those milliseconds instead of one each.

What a crash can lose: nothing that was answered. `append` returns once the line is written into
the file (`write(2)`; the kernel holds it whatever happens to the process), and a file is removed
only after the transaction holding its clicks has committed. A file whose process is gone is
found by any other spool of the same database (every few seconds, and when an app starts) and
moved again; the insert skips ids already stored, so moving a file twice counts nothing twice.
A power cut or OS crash can lose what the kernel had not yet written to disk, as it can for the
clicks' own connection (see `core.tracking`): the last second at most.

Each file is held with an `flock` by the process writing it, which is how others tell a live
spool file from an orphan; a file is locked before it gets its `.clicks` name, so no one sees it
unlocked.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".clicks"
ORPHAN_SCAN_SECONDS = 5.0
IDLE_SECONDS = 10.0  # a mover with nothing to do this long stops (and closes its connection)
RETRY_SECONDS = 0.5
STALE_TEMP_SECONDS = 3600.0

Row = Sequence[Any]
Writer = Callable[[list[Row]], None]


class _File:
    """One open, locked spool file."""

    def __init__(self, directory: Path) -> None:
        # Named in time order, so orphans are moved in the order their clicks were made.
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(6)}"
        temp = directory / f".{name}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        try:
            self.fd = os.open(temp, flags, 0o600)
        except FileNotFoundError:  # the directory was cleaned away under a running server
            directory.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(temp, flags, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.path = directory / f"{name}{SUFFIX}"
        os.rename(temp, self.path)

    def discard(self) -> None:
        """Remove the file, then let go of its lock (in that order, so no one adopts it)."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)


class ClickSpool:
    """The spool of one database: a directory of per-process files and a mover thread.

    `write(rows)` stores rows in one transaction, skipping ids already stored; it is called from
    the mover thread only (and from `recover`), never from a request. `release()` is called by a
    mover thread that stops for want of work, to close what it opened (its connection).
    """

    def __init__(self, directory: str | Path, write: Writer,
                 release: Callable[[], None] = lambda: None, gather_seconds: float = 0.005) -> None:
        self.directory = Path(directory)
        self.write = write
        self.release = release
        self.gather_seconds = gather_seconds
        self._pid: int | None = None

    # -- this process's state: made after a fork, never inherited ----------------------------
    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._moved = threading.Condition()
        self._pending: list[Row] = []
        self._file: _File | None = None
        self._unmoved: list[_File] = []  # written, but their transaction failed: tried again
        self._appended = 0  # clicks appended so far, and moved so far: what flush waits on
        self._moved_upto = 0
        self._last_scan = 0.0
        self._moving = False  # a mover thread runs
        self._pid = os.getpid()
        atexit.register(self._at_exit)

    def append(self, row: Row) -> None:
        """Write one click's row to this process's spool file; it is moved within milliseconds."""
        if self._pid != os.getpid():
            self._start()
        line = json.dumps(row, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            if self._file is None:
                self._file = _File(self.directory)
            os.write(self._file.fd, line)
            self._pending.append(row)
            self._appended += 1
            if not self._moving:
                self._moving = True
                threading.Thread(target=self._run, name="click-spool", daemon=True).start()
        self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every click this process appended so far is in the database."""
        if self._pid != os.getpid():
            return True
        target = self._appended
        with self._moved:
            return self._moved.wait_for(lambda: self._moved_upto >= target, timeout)

    # -- the mover ----------------------------------------------------------------------------
    def _run(self) -> None:
        idle_since = started = time.monotonic()
        while True:
            if self._wake.wait(ORPHAN_SCAN_SECONDS):
                idle_since = time.monotonic()
                # A quiet moment's click moves at once; under load, moves start at most every
                # `gather_seconds`, so each carries the clicks of that time (a transaction per
                # click would cost what the spool saves: the database is faster than arrivals).
                time.sleep(max(0.0, started + self.gather_seconds - idle_since))
            elif time.monotonic() - idle_since >= IDLE_SECONDS and self._stop_when_idle():
                return
            started = time.monotonic()
            self._wake.clear()
            try:
                self._move_once()
                if time.monotonic() - self._last_scan >= ORPHAN_SCAN_SECONDS:
                    self._last_scan = time.monotonic()
                    self.recover()
            except Exception:  # noqa: BLE001 - the thread must outlive a database outage
                log.exception("moving spooled clicks failed; trying again")
                time.sleep(RETRY_SECONDS)
                self._wake.set()

    def _stop_when_idle(self) -> bool:
        with self._lock:
            if self._pending or self._unmoved:
                return False
            self._moving = False  # the next append starts a mover again
        try:
            self.release()
        except Exception:  # noqa: BLE001 - closing a connection that is gone already
            log.debug("releasing the mover's connection failed", exc_info=True)
        return True

    def _move_once(self) -> None:
        """Move what was appended since the last move, in one transaction (after the files of an
        earlier move that failed, read back from disk, so clicks reach the database in order)."""
        with self._lock:
            rows, done, self._pending, self._file = self._pending, self._file, [], None
            upto = self._appended
        if done is not None:
            self._unmoved.append(done)  # before anything can fail: its clicks are only there
        for spooled in list(self._unmoved):
            self.write(rows if spooled is done else read_rows(spooled.path))
            self._unmoved.remove(spooled)
            spooled.discard()
        with self._moved:
            self._moved_upto = upto
            self._moved.notify_all()

    def _at_exit(self) -> None:
        """A worker stopping in good order moves what it holds; a killed one leaves an orphan."""
        if self._pid == os.getpid():
            self._wake.set()
            self.flush(timeout=5.0)

    # -- orphans --------------------------------------------------------------------------------
    def recover(self) -> int:
        """Move the files of processes that are gone; the number of clicks they held."""
        if not self.directory.is_dir():
            return 0
        moved = 0
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            moved += self._adopt(path)
        for temp in self.directory.glob(".*.tmp"):  # died between creating and naming: empty
            try:
                if time.time() - temp.stat().st_mtime > STALE_TEMP_SECONDS:
                    temp.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
        return moved

    def _adopt(self, path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return 0  # its process moved it meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a live process's file
            try:
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    return 0
            except FileNotFoundError:
                return 0  # moved and removed by its process just before we locked it
            rows = read_rows(path)
            if rows:
                self.write(rows)
            path.unlink(missing_ok=True)
            if rows:
                log.info("moved %d spooled clicks from %s", len(rows), path.name)
            return len(rows)
        finally:
            os.close(fd)


def read_rows(path: Path) -> list[Row]:
    """The rows of a spool file; a last line cut short (the process died inside `write`, so its
    click was never answered) is left out."""
    rows: list[Row] = []
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                rows.append(json.loads(line))
            except ValueError:
                log.warning("unreadable line in %s left out", path.name)
    return rows
