"""A throw-away PostgreSQL server for the test session.

`TOUCHPOINT_TEST_POSTGRES_URL` wins when set (CI may start its own). Otherwise, when Debian's
PostgreSQL binaries are installed, one server is initialised in a temporary directory, started on a
free port, and stopped at the end. PostgreSQL refuses to run as root, so as root the server runs as
the `postgres` user through runuser. Returns None (tests skip, saying why) when there is none.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class PgServer:
    url: str
    stop: callable  # type: ignore[valid-type]
    reason: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def start(durable: bool = False) -> tuple[PgServer | None, str]:
    """`durable=False` (tests) turns fsync off; the benchmarks keep PostgreSQL's defaults."""
    env_url = os.environ.get("TOUCHPOINT_TEST_POSTGRES_URL")
    if env_url:
        return PgServer(env_url, lambda: None), ""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None, "PostgreSQL is not installed (apt-get install postgresql, or set TOUCHPOINT_TEST_POSTGRES_URL)"
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    tmp = tempfile.mkdtemp(prefix="tp-pg-")
    data = os.path.join(tmp, "data")
    if as_root:
        shutil.chown(tmp, "postgres", "postgres")
    port = _free_port()
    log = os.path.join(tmp, "log")
    try:
        subprocess.run(prefix + [initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                 "--no-sync"], check=True, capture_output=True)
        opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(prefix + [pg_ctl, "-D", data, "-l", log, "-o", opts, "-w", "start"],
                       check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        return None, f"could not start PostgreSQL: {exc} {detail.decode(errors='replace')[-300:]}"

    def stop() -> None:
        subprocess.run(prefix + [pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    return PgServer(url, stop), ""
