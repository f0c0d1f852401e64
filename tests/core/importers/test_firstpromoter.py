"""FirstPromoter exports, end to end: `touchpoint import firstpromoter FILE`, then the API."""
from __future__ import annotations

from tests.core.importers.helpers import (
    conversions_by_id, earnings, import_ok, partners_by_email, row_counts, run_import,
)
from tests.factories import new_program


def import_all(runner):
    return [import_ok(runner, "firstpromoter", name)
            for name in ("promoters.csv", "referrals.csv", "commissions.csv")]


def test_promoters_codes_referrals_and_commissions(app, runner):
    api = new_program(app)
    promoters, referrals, commissions = import_all(runner)
    assert promoters["partners_created"] == 4 and promoters["promo_codes_created"] == 2
    assert referrals["customers_created"] == 5 and commissions["commissions_created"] == 6

    partners = partners_by_email(api)
    assert partners["mia@partners.example"]["key"] == "mia"
    assert partners["lilei@partners.example"]["name"] == "雷 李"
    assert partners["sam@partners.example"]["name"] == "Sam O'Brien"
    codes = {c["code"]: c["partner_id"] for c in api.ok("get", "/api/v1/promo-codes")["data"]}
    assert codes == {"MIA10": partners["mia@partners.example"]["id"],
                     "SAM-20": partners["sam@partners.example"]["id"]}

    mia = earnings(api, partners["mia@partners.example"])
    assert (mia["pending"], mia["approved"], mia["paid"], mia["reversed"]) == (999, 2940, 1470, 0)
    lilei = earnings(api, partners["lilei@partners.example"])
    assert lilei["reversed"] == 1470 and lilei["pending"] == lilei["approved"] == 0
    assert lilei["other_currencies"]["JPY"]["paid"] == 2000
    sam = earnings(api, partners["sam@partners.example"])
    assert sam["approved"] == 147000  # "1,470.00"
    assert conversions_by_id(api)["5005"]["amount"] == 490000

    # An imported promo code credits the promoter's next sale.
    sale = api.ok("post", "/api/v1/track/sale", {"customer_id": "new", "order_id": "o1",
                                                 "amount": 1000, "currency": "USD",
                                                 "promo_code": "mia10"})
    assert sale["partner_id"] == partners["mia@partners.example"]["id"]


def test_a_later_export_moves_commissions_on_and_never_back(app, runner):
    api = new_program(app)
    import_all(runner)
    mia = partners_by_email(api)["mia@partners.example"]
    later = import_ok(runner, "firstpromoter", "commissions_later.csv")
    assert later["commissions_updated"] == 2 and later["commissions_unchanged"] == 1
    assert later["commissions_created"] == 1
    money = earnings(api, mia)
    # 5002 approved -> paid, 5003 pending -> paid, 5007 earned then reversed.
    assert (money["pending"], money["approved"], money["paid"], money["reversed"]) == \
        (0, 0, 1470 + 2940 + 999, 490)
    statuses = {k: v["status"] for k, v in conversions_by_id(api).items()}
    assert statuses["5003"] == "approved" and statuses["5007"] == "reversed"
    before = row_counts(app)
    assert import_ok(runner, "firstpromoter", "commissions_later.csv")["commissions_unchanged"] == 4
    assert row_counts(app) == before


def test_a_bad_email_stops_the_file_and_names_row_and_column(app, runner):
    new_program(app)
    before = row_counts(app)
    result = run_import(runner, "firstpromoter", "promoters_bad_email.csv")
    assert result.exit_code == 2
    assert "row 3" in result.output and "'email'" in result.output
    assert "not-an-email" in result.output and "nothing was imported" in result.output
    assert row_counts(app) == before
