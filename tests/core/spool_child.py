"""A Touchpoint process that answers redirects but dies before it moves their clicks.

Run by tests/core/test_click_spool.py as `python -m tests.core.spool_child DB_URL VAR_DIR KEY N`:
it follows the short link N times through the app (the clicks go to its spool file), prints the
click ids it answered with, and waits to be killed. Its mover is held, so no click reaches the
database from here: only the next process to start can move them.
"""
from __future__ import annotations

import json
import sys
import threading
from urllib.parse import parse_qs, urlsplit

from core import make_app


def main(db_url: str, var_dir: str, key: str, n: int) -> None:
    app = make_app({"database_url": db_url, "secret_key": "test-secret-key", "var_dir": var_dir,
                    "base_url": "http://touchpoint.test", "testing": True}, ())
    app.extensions["touchpoint"]["clicks"].spool.write = lambda rows: threading.Event().wait()
    client = app.test_client()
    answered = []
    for _ in range(n):
        location = client.get(f"/r/{key}", headers={"User-Agent": "Mozilla/5.0 Chrome/120"}).headers["Location"]
        answered += parse_qs(urlsplit(location).query)["tp_click"]
    print(json.dumps(answered), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
