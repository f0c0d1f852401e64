"""The `touchpoint` command line as a user runs it, on a fresh SQLite file."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from core.cli import main


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tp.db'}")
    monkeypatch.setenv("TOUCHPOINT_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("TOUCHPOINT_SECRET_KEY", raising=False)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_every_command_has_help():
    for args in ([], ["serve"], ["db", "upgrade"], ["program", "create"], ["demo"], ["jobs", "run"],
                 ["backfill"], ["reattribute"], ["user", "create"], ["import"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_serve_refuses_pending_migrations(env):
    result = run("serve", "--port", "0")
    assert result.exit_code != 0 and "migration" in result.output and "db upgrade" in result.output


def test_db_upgrade_then_program_create_json(env):
    assert run("db", "upgrade").exit_code == 0
    assert (env / "secret.key").exists()  # generated once
    result = run("program", "create", "--name", "Shop", "--currency", "USD", "--domain",
                 "shop.example", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["program_id"].startswith("prg_") and out["api_key"].startswith("tp_sk_")
    assert out["publishable_key"].startswith("tp_pk_")
    bad = run("program", "create", "--name", "Shop", "--currency", "usd", "--domain", "x.example")
    assert bad.exit_code == 2 and "currency" in bad.output
    jobs = run("jobs", "run", "--json")
    assert jobs.exit_code == 0 and json.loads(jobs.output)["approved"] == 0
    whatif = run("reattribute", "--model", "first_touch", "--json")
    assert whatif.exit_code == 0 and json.loads(whatif.output)["conversions"] == 0
    made = CliRunner().invoke(main, ["user", "create", "--program", out["program_id"], "--email",
                                     "owner@shop.example"], input="correct horse battery\ncorrect horse battery\n")
    assert made.exit_code == 0 and "/admin" in made.output, made.output
    short = CliRunner().invoke(main, ["user", "create", "--program", out["program_id"], "--email",
                                      "x@shop.example"], input="short\nshort\n")
    assert short.exit_code == 2
    missing = run("backfill", "src_nope", "--since", "2026-01-01")
    assert missing.exit_code == 1 and "no source" in missing.output


def test_demo_fills_a_living_program(env):
    assert run("db", "upgrade").exit_code == 0
    result = run("demo", "--days", "10", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["clicks"] > 50 and out["sales"] > 0 and out["email"].endswith("@touchpoint.local")
    whatif = json.loads(run("reattribute", "--model", "first_touch", "--json").output)
    assert whatif["conversions"] >= out["sales"]
