"""A fake Shopify at the transport.

ShopifyAPI does not use `requests` (so the `responses` library would see nothing): the OAuth
token request (`Session.request_token`), pyactiveresource's REST calls (`Connection._urlopen`)
and `shopify.GraphQL` all go through `urllib.request.urlopen`. `urlopen` sends through the
process's installed opener, so installing an opener whose first handler answers `https://`
requests replaces exactly the network: the SDK builds its URLs, headers, bodies and parses the
answers (status codes into pyactiveresource's exceptions, `Link` headers into pagination) with
its own code. Routes map (method, path) to queued answers; every request is recorded.
"""
from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import urllib.response
from email.message import Message
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit


class Call(NamedTuple):
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeShopify(urllib.request.BaseHandler):
    handler_order = 100  # before urllib's own HTTPSHandler

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {}
        self.calls: list[Call] = []

    def add(self, method: str, path: str, body: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> None:
        """Queue an answer; the last one queued for a route is repeated."""
        self.routes.setdefault((method, path), []).append((status, body, headers or {}))

    def https_open(self, req: urllib.request.Request):  # type: ignore[no-untyped-def]
        method = req.get_method()
        self.calls.append(Call(method, req.full_url, req.data,
                               {k.lower(): v for k, v in req.header_items()}))
        answers = self.routes.get((method, urlsplit(req.full_url).path))
        if not answers:
            raise AssertionError(f"unexpected {method} {req.full_url}")
        status, body, extra = answers.pop(0) if len(answers) > 1 else answers[0]
        headers = Message()
        headers["Content-Type"] = "application/json"
        for k, v in extra.items():
            headers[k] = v
        raw = json.dumps(body).encode()
        if status >= 400:
            raise urllib.error.HTTPError(req.full_url, status, "Error", headers, io.BytesIO(raw))
        resp = urllib.response.addinfourl(io.BytesIO(raw), headers, req.full_url, status)
        resp.msg = "OK"
        return resp

    def to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    def __enter__(self) -> "FakeShopify":
        urllib.request.install_opener(urllib.request.build_opener(self))
        return self

    def __exit__(self, *exc: Any) -> None:
        urllib.request.install_opener(None)  # type: ignore[arg-type]
