"""Building test data through the public API, as a user would."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from core.db import get_db
from core.models import Click
from core.programs import create_program
from core.schemas import ProgramCreate


def stored_clicks(app: Any) -> list[Click]:
    """Every click in the database, oldest first, once the redirect's spool has moved what this
    process spooled (it does so within milliseconds; a test must not race it)."""
    assert app.extensions["touchpoint"]["clicks"].flush(), "spooled clicks did not reach the database"
    with app.app_context(), get_db().session() as s:
        return list(s.exec(select(Click).order_by(Click.created_at)))


@dataclass
class Api:
    """A test client bound to one program's secret key."""

    client: Any
    program_id: str
    key: str
    publishable_key: str

    def _h(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(headers or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self._h(kw.pop("headers", None)), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self._h(kw.pop("headers", None)), **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch(path, json=json, headers=self._h(kw.pop("headers", None)), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self._h(kw.pop("headers", None)), **kw)

    def ok(self, method: str, path: str, json: Any = None, status: int | None = None) -> Any:
        resp = getattr(self, method)(path, json=json) if json is not None else getattr(self, method)(path)
        expected = status or (201 if method == "post" and resp.status_code == 201 else 200)
        assert resp.status_code == expected, (resp.status_code, resp.get_json())
        return resp.get_json()

    def partner(self, name: str = "Ann", key: str | None = None, tags: list[str] | None = None) -> dict:
        body: dict[str, Any] = {"name": name, "email": f"{name.lower()}@partners.example",
                                "tags": tags or []}
        if key:
            body["key"] = key
        return self.ok("post", "/api/v1/partners", body, 201)

    def reward(self, **body: Any) -> dict:
        body.setdefault("type", "percent")
        return self.ok("post", "/api/v1/rewards", body, 201)


def new_program(app: Any, name: str = "Shop", currency: str = "USD",
                domain: str = "shop.example") -> Api:
    with app.app_context():
        with get_db().write() as s:
            created = create_program(s, ProgramCreate(name=name, currency=currency, domain=domain))
    return Api(app.test_client(), created.program_id, created.api_key, created.publishable_key)
