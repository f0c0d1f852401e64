"""`touchpoint import` as a user runs it: options, refusals, one transaction per file."""
from __future__ import annotations

import json

from core.cli import main
from core.importers import IMPORTERS
from tests.core.importers.helpers import (
    fixture_path, import_ok, partners_by_email, row_counts, run_import,
)
from tests.factories import new_program


def test_help_offers_every_importer(runner):
    result = runner.invoke(main, ["import", "--help"])
    assert result.exit_code == 0 and "--dry-run" in result.output and "--kind" in result.output
    assert all(name in result.output for name in IMPORTERS)


def test_an_error_late_in_the_file_rolls_back_the_rows_before_it(app, runner):
    """Rows 2 and 3 are fine and are applied first; row 4 names an unknown affiliate. The whole
    file is one transaction, so nothing of it stays."""
    new_program(app)
    import_ok(runner, "rewardful", "affiliates.csv")
    before = row_counts(app)
    result = run_import(runner, "rewardful", "commissions_unknown_affiliate.csv")
    assert result.exit_code == 2
    assert "row 4" in result.output and "'affiliate_email'" in result.output
    assert "nobody@partners.example" in result.output and "partners file first" in result.output
    assert row_counts(app) == before


def test_a_bad_amount_names_row_and_column(app, runner):
    new_program(app)
    import_ok(runner, "rewardful", "affiliates.csv")
    before = row_counts(app)
    result = run_import(runner, "rewardful", "commissions_bad_amount.csv")
    assert result.exit_code == 2
    assert "row 4" in result.output and "'amount'" in result.output and "'12,5'" in result.output
    assert row_counts(app) == before


def test_dry_run_counts_everything_and_writes_nothing(app, runner):
    new_program(app)
    before = row_counts(app)
    result = run_import(runner, "tolt", "partners.csv", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["dry_run"] is True and out["partners_created"] == 3 and out["rows"] == 3
    assert row_counts(app) == before


def test_a_referral_code_taken_by_another_partner_is_refused(app, runner):
    api = new_program(app)
    api.ok("post", "/api/v1/partners", {"name": "Other Ann", "email": "other@partners.example",
                                        "key": "annlee"}, 201)
    before = row_counts(app)
    result = run_import(runner, "rewardful", "affiliates.csv")
    assert result.exit_code == 2
    assert "row 2" in result.output and "'token'" in result.output
    assert "other@partners.example" in result.output
    assert row_counts(app) == before


def test_an_existing_partner_is_matched_by_email_and_keeps_its_key(app, runner):
    api = new_program(app)
    api.ok("post", "/api/v1/partners", {"name": "Ann", "email": "Ann@Partners.example",
                                        "key": "ann-old"}, 201)
    out = import_ok(runner, "rewardful", "affiliates.csv")
    assert out["partners_created"] == 4 and out["partners_unchanged"] == 1
    assert out["partner_keys_kept"] == 1
    assert partners_by_email(api)["ann@partners.example"]["key"] == "ann-old"


def test_kind_given_by_hand_is_checked(app, runner):
    new_program(app)
    result = run_import(runner, "rewardful", "referrals.csv", "--kind", "commissions")
    assert result.exit_code == 2 and "needs the column(s)" in result.output


def test_files_that_are_not_exports(app, runner):
    new_program(app)
    empty = run_import(runner, "rewardful", "empty.csv")
    assert empty.exit_code == 2 and "empty" in empty.output
    latin1 = run_import(runner, "rewardful", "affiliates_latin1.csv")
    assert latin1.exit_code == 2 and "UTF-8" in latin1.output
    # PartnerStack's rewards file given as a Tolt file: Tolt's commissions need other columns.
    other = runner.invoke(main, ["import", "tolt", fixture_path("partnerstack", "rewards.csv")])
    assert other.exit_code == 2 and "Tolt" in other.output, other.output


def test_an_excel_export_with_semicolons_and_a_bom(app, runner):
    api = new_program(app)
    out = import_ok(runner, "firstpromoter", "promoters_excel_semicolon.csv")
    assert out["partners_created"] == 2 and out["promo_codes_created"] == 1
    noe = partners_by_email(api)["noe@partners.example"]
    assert noe["name"] == "Noé Bläsi" and noe["key"] == "noe"
    assert noe["created_at"].startswith("2024-02-01T08:00:00")


def test_program_and_source_must_exist(app, runner):
    new_program(app)
    missing = run_import(runner, "tolt", "partners.csv", "--program", "prg_nope")
    assert missing.exit_code == 2 and "no program prg_nope" in missing.output
    source = run_import(runner, "tolt", "customers.csv", "--source", "src_nope")
    assert source.exit_code == 2 and "no source" in source.output
    new_program(app, name="Second shop")
    ambiguous = run_import(runner, "tolt", "partners.csv")
    assert ambiguous.exit_code == 2 and "--program" in ambiguous.output


def test_program_chosen_by_id_among_several(app, runner):
    new_program(app)
    second = new_program(app, name="Second", currency="EUR")
    out = import_ok(runner, "tolt", "partners.csv", "--program", second.program_id)
    assert out["program_id"] == second.program_id
    assert len(partners_by_email(second)) == 3


def test_the_installed_command_finds_the_configured_database(tmp_path, monkeypatch):
    """Run as `touchpoint import …` outside Flask's runner: the app comes from DATABASE_URL."""
    from click.testing import CliRunner

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tp.db'}")
    monkeypatch.setenv("TOUCHPOINT_VAR_DIR", str(tmp_path))
    cli = CliRunner()
    assert cli.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert cli.invoke(main, ["program", "create", "--name", "Shop", "--currency", "USD",
                             "--domain", "shop.example"]).exit_code == 0
    result = cli.invoke(main, ["import", "tolt", fixture_path("tolt", "partners.csv"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["partners_created"] == 3


def test_the_progress_bar_counts_every_row(app, capsys):
    from pathlib import Path

    from core.importers.runner import run

    new_program(app)
    with app.app_context():
        out = run("partnerstack", Path(fixture_path("partnerstack", "partners.csv")),
                  progress=True)
    assert out["partners_created"] == 3
    assert "3/3" in capsys.readouterr().out
