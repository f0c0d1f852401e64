"""Shared steps of the importer tests: run `touchpoint import` through Flask's CLI runner, read
what the public API then shows, and count rows to prove refusals and re-imports change nothing."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from core.cli import main
from core.db import get_db
from core.models import Conversion, Customer, LedgerEntry, Partner, PartnerTag, PromoCode
from tests.conftest import FIXTURES


def fixture_path(product: str, name: str) -> str:
    return str(FIXTURES / "importers" / product / name)


def run_import(runner: Any, product: str, name: str, *args: str) -> Any:
    return runner.invoke(main, ["import", product, fixture_path(product, name), *args])


def import_ok(runner: Any, product: str, name: str, *args: str) -> dict[str, Any]:
    result = run_import(runner, product, name, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def row_counts(app: Any) -> dict[str, int]:
    with app.app_context(), get_db().session() as s:
        return {m.__name__: s.exec(select(func.count()).select_from(m)).one()
                for m in (Partner, PartnerTag, PromoCode, Customer, Conversion, LedgerEntry)}


def partners_by_email(api: Any) -> dict[str, dict]:
    return {p["email"]: p for p in api.ok("get", "/api/v1/partners?limit=1000")["data"]}


def earnings(api: Any, partner: dict) -> dict:
    return api.ok("get", f"/api/v1/partners/{partner['id']}/earnings")


def conversions_by_id(api: Any) -> dict[str, dict]:
    return {c["external_id"]: c for c in api.ok("get", "/api/v1/conversions?limit=1000")["data"]}


def customer_of(app: Any, external_id: str) -> Customer | None:
    with app.app_context(), get_db().session() as s:
        return s.exec(select(Customer).where(Customer.external_id == external_id)).first()
