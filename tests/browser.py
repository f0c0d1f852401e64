"""Helpers for tests in a real headless Chromium (Debian's /usr/bin/chromium) via Playwright:
servers on loopback in threads, and host names mapped to 127.0.0.1 so pages can live on a
merchant's domain and Touchpoint on its own."""
from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
HOSTS = ("shop.example", "www.shop.example", "touchpoint.test", "evil.example")

needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason="Chromium is not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_app(db_url: str, tmp_path: Any, connectors: tuple) -> tuple[Any, int, str]:
    """(app, port, base URL) of an app for pages served on a free port, under the test host that
    Chromium maps to loopback."""
    from core import make_app

    port = free_port()
    base = f"http://touchpoint.test:{port}"
    app = make_app({"database_url": db_url, "secret_key": "browser-key", "base_url": base,
                    "var_dir": tmp_path, "testing": True}, connectors)
    return app, port, base


@contextmanager
def serving(wsgi_app: Any, port: int) -> Iterator[None]:
    server = make_server("127.0.0.1", port, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    rules = ", ".join(f"MAP {h} 127.0.0.1" for h in HOSTS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            f"--host-resolver-rules={rules}"])
        try:
            yield browser
        finally:
            browser.close()
