"""`touchpoint serve` in a subprocess, on loopback, as production runs it: started, waited for,
killed with SIGKILL (master and workers at once: the whole process group), started again.

Also the other commands a test runs as a user would (`touchpoint program create`, `jobs run`,
`backfill`), with the same environment.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
TOUCHPOINT = str(Path(sys.executable).parent / "touchpoint")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(database_url: str, var_dir: Path, base_url: str = "http://127.0.0.1") -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "TOUCHPOINT_SECRET_KEY": "stress-secret",
            "TOUCHPOINT_BASE_URL": base_url, "TOUCHPOINT_VAR_DIR": str(var_dir),
            "PYTHONUNBUFFERED": "1"}


def command(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `touchpoint ARGS`; its stdout. A failure shows what it printed."""
    done = subprocess.run([TOUCHPOINT, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@dataclass
class Server:
    """One `touchpoint serve --workers N` on its own port; `kill()` then `start()` is a crash
    and a restart."""

    env: dict[str, str]
    workers: int = 2
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Server":
        self.log = Path(self.env["TOUCHPOINT_VAR_DIR"]) / f"serve-{self.port}-{self.starts}.log"
        self.starts += 1
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [TOUCHPOINT, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group, killed as one
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited:\n{self.output()}"
            try:
                if requests.get(f"{self.url}/api/v1/openapi.json", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()[-4000:] if self.log and self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once: nothing gets to clean up."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()
        self.proc = None


def create_program(env: dict[str, str]) -> dict[str, Any]:
    """`touchpoint program create --json`, as the README says."""
    return json.loads(command(env, "program", "create", "--name", "Stress shop", "--currency",
                              "USD", "--domain", "shop.example", "--json"))
