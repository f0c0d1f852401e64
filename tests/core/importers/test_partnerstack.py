"""PartnerStack exports, end to end: `touchpoint import partnerstack FILE`, then the public API."""
from __future__ import annotations

from tests.core.importers.helpers import (
    conversions_by_id, earnings, import_ok, partners_by_email, row_counts, run_import,
)
from tests.factories import new_program


def import_all(runner):
    return [import_ok(runner, "partnerstack", name)
            for name in ("partners.csv", "customers.csv", "rewards.csv")]


def test_partners_customers_and_rewards(app, runner):
    api = new_program(app)
    partners_out, customers_out, rewards_out = import_all(runner)
    assert partners_out["partners_created"] == 3
    assert customers_out["customers_created"] == 3 and rewards_out["commissions_created"] == 5

    partners = partners_by_email(api)
    ava = partners["ava@partners.example"]
    assert ava["key"] == "pk_ava" and ava["tags"] == ["Agencies"]
    assert partners["chloe@partners.example"]["name"] == "Chloé Dubois"
    money = earnings(api, ava)
    assert (money["pending"], money["approved"], money["paid"]) == (100000, 2000, 2000)
    ben = earnings(api, partners["ben@partners.example"])
    assert (ben["paid"], ben["reversed"]) == (5000, 1980)
    convs = conversions_by_id(api)
    assert convs["rwd_005"]["amount"] == 0  # a bonus with no transaction
    assert convs["rwd_003"]["amount"] == 500000 and convs["rwd_003"]["status"] == "pending"

    # A PartnerStack partner key is the referral code: the storefront's ?ref= credits Ava.
    click = api.client.post("/api/v1/track/click", json={
        "publishable_key": api.publishable_key, "ref": "pk_ava",
        "url": "https://shop.example/?ref=pk_ava"})
    assert click.status_code == 200, click.get_json()


def test_reimport_is_a_no_op(app, runner):
    new_program(app)
    import_all(runner)
    before = row_counts(app)
    import_all(runner)
    assert row_counts(app) == before


def test_a_rewards_file_without_status_is_refused(app, runner):
    new_program(app)
    import_ok(runner, "partnerstack", "partners.csv")
    before = row_counts(app)
    result = run_import(runner, "partnerstack", "rewards_missing_column.csv")
    assert result.exit_code == 2 and "reward status" in result.output
    assert row_counts(app) == before
