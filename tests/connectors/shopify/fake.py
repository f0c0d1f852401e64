"""A fake Shopify at the transport: a urllib handler installed as the global opener, so
ShopifyAPI's own code (pyactiveresource, GraphQL, the token request) runs unchanged and only
the network is replaced. Routes map (method, path) to a JSON answer; calls are recorded."""
from __future__ import annotations

import io
import json
import urllib.request
from email.message import Message
from typing import Any
from urllib.parse import urlsplit


class FakeShopify(urllib.request.BaseHandler):
    handler_order = 100

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {}
        self.calls: list[tuple[str, str, bytes | None]] = []

    def add(self, method: str, path: str, body: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> None:
        self.routes.setdefault((method, path), []).append((status, body, headers or {}))

    def https_open(self, req: urllib.request.Request):  # type: ignore[no-untyped-def]
        url = urlsplit(req.full_url)
        method = req.get_method()
        self.calls.append((method, req.full_url, req.data))
        answers = self.routes.get((method, url.path))
        if not answers:
            raise AssertionError(f"unexpected {method} {req.full_url}")
        status, body, extra = answers.pop(0) if len(answers) > 1 else answers[0]
        headers = Message()
        headers["Content-Type"] = "application/json"
        for k, v in extra.items():
            headers[k] = v
        resp = urllib.response.addinfourl(io.BytesIO(json.dumps(body).encode()), headers,
                                          req.full_url, status)
        resp.msg = "OK" if status < 400 else "Error"
        if status >= 400:
            raise urllib.error.HTTPError(req.full_url, status, "Error", headers,
                                         io.BytesIO(json.dumps(body).encode()))
        return resp

    def __enter__(self) -> "FakeShopify":
        urllib.request.install_opener(urllib.request.build_opener(self))
        return self

    def __exit__(self, *exc: Any) -> None:
        urllib.request.install_opener(None)  # type: ignore[arg-type]
