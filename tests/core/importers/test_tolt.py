"""Tolt exports, end to end: `touchpoint import tolt FILE`, then the public API."""
from __future__ import annotations

from tests.core.importers.helpers import (
    conversions_by_id, customer_of, earnings, import_ok, partners_by_email, row_counts, run_import,
)
from tests.factories import new_program


def import_all(runner):
    return [import_ok(runner, "tolt", name)
            for name in ("partners.csv", "customers.csv", "commissions.csv")]


def test_partners_customers_and_commissions_with_a_clawback(app, runner):
    api = new_program(app)
    partners_out, customers_out, commissions_out = import_all(runner)
    assert partners_out["partners_created"] == 3 and partners_out["promo_codes_created"] == 2
    assert customers_out["customers_created"] == 4 and commissions_out["commissions_created"] == 8

    partners = partners_by_email(api)
    michael = partners["michael.scott@dundermifflin.example"]
    assert michael["key"] == "michael" and michael["tags"] == ["Resellers"]
    assert partners["acme@partners.example"]["name"] == "Acme Ltd"
    assert partners["bjorn@partners.example"]["name"] == "Ødegaard Bjørn"

    money = earnings(api, michael)
    # Two paid sales (14.70 each), one approved; Jim's refund after payout claws 14.70 back from
    # approved, to be netted at the next payout.
    assert (money["pending"], money["approved"], money["paid"], money["reversed"]) == \
        (0, 1470 - 1470, 2940, 1470)
    bjorn = earnings(api, partners["bjorn@partners.example"])
    assert (bjorn["pending"], bjorn["reversed"]) == (2940, 0)  # the refunded one earned nothing
    acme = earnings(api, partners["acme@partners.example"])
    assert acme["reversed"] == 980
    assert acme["other_currencies"]["KWD"]["approved"] == 12345  # three decimals

    convs = conversions_by_id(api)
    assert convs["comm_03"]["status"] == "reversed" and convs["comm_03"]["commission"] == -1470
    assert convs["comm_03"]["event"] == "refund" and convs["comm_03"]["amount"] == 0
    assert convs["comm_06"]["status"] == "reversed" and convs["comm_06"]["commission"] == 0
    assert convs["comm_08"]["amount"] == 61725 and convs["comm_08"]["currency"] == "KWD"

    # The clawback is an adjustment, not a sale: reports count three sales for Michael.
    rows = api.ok("get", "/api/v1/reports?group_by=partner&from=2025-01-01T00:00:00Z"
                         "&to=2025-03-01T00:00:00Z")["data"]
    row = next(r for r in rows if r["key"] == michael["id"])
    assert row["conversions"] == 3 and row["commission"] == 1470 * 3 - 1470

    pam = customer_of(app, "import:tolt:cus_T001")
    assert pam is not None and pam.email == "pam@customers.example"
    assert pam.partner_id == michael["id"]


def test_reimport_is_a_no_op(app, runner):
    new_program(app)
    import_all(runner)
    before = row_counts(app)
    again = import_all(runner)
    assert row_counts(app) == before
    assert again[2]["commissions_unchanged"] == 8


def test_a_day_first_date_leaves_nothing_behind(app, runner):
    new_program(app)
    import_ok(runner, "tolt", "partners.csv")
    before = row_counts(app)
    result = run_import(runner, "tolt", "commissions_bad_date.csv")
    assert result.exit_code == 2
    assert "row 3" in result.output and "'created_at'" in result.output
    assert row_counts(app) == before
