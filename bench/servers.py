"""Start and stop gunicorn servers for the load measurements, and read their workers' memory."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


@contextmanager
def serve(cmd: list[str], port: int, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    # PYTHONPATH: the servers run this checkout's code, whatever the venv's editable install names.
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait(port, proc)
        time.sleep(0.5)  # workers boot after the master binds
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def touchpoint(port: int, workers: int = 2) -> list[str]:
    return [str(BIN / "touchpoint"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]


def bare(port: int, workers: int = 2) -> list[str]:
    return [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "sync", "--keep-alive", "5", "bench.bare:app"]


def worker_rss_mb(master_pid: int) -> float:
    """The largest resident set of the master's worker processes, in MB."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master_pid}$", text, re.M):
            children.append(int(re.search(r"^VmRSS:\s+(\d+)", text, re.M).group(1)))
    return max(children) / 1024 if children else 0.0


def wrk(url: str, seconds: int, connections: int = 16, threads: int = 2) -> dict[str, float]:
    """requests/s and p99 latency (ms) from wrk --latency."""
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    value, unit = float(m.group(1)), m.group(2)
    p99 = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    answered = float(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p99_ms": p99, "errors": float(non2xx.group(1)) if non2xx else 0.0,
            "answered": answered}
