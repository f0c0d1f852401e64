"""Rewardful exports, end to end: `touchpoint import rewardful FILE`, then the public API."""
from __future__ import annotations

from tests.core.importers.helpers import (
    conversions_by_id, customer_of, earnings, import_ok, partners_by_email, row_counts,
)
from tests.factories import new_program

C = "39e68c88-d84a-4510-b3b4-43c75016a00"  # commission ids in commissions.csv end in 1..9


def import_all(runner):
    return [import_ok(runner, "rewardful", name)
            for name in ("affiliates.csv", "referrals.csv", "commissions.csv")]


def test_affiliates_referrals_and_commissions_show_in_the_api(app, runner):
    api = new_program(app)
    affiliates, referrals, commissions = import_all(runner)
    assert affiliates["kind"] == "partners" and affiliates["partners_created"] == 5
    assert referrals["kind"] == "customers" and referrals["customers_created"] == 5
    assert commissions["kind"] == "commissions" and commissions["commissions_created"] == 9

    partners = partners_by_email(api)
    assert set(partners) == {"ann@partners.example", "jose@partners.example",
                             "hanako@partners.example", "bob@partners.example",
                             "zoe@partners.example"}
    # Tokens become keys, so partners' existing ?via= links keep working; unicode names survive.
    assert partners["ann@partners.example"]["key"] == "annlee"
    assert partners["jose@partners.example"]["name"] == "José Müller"
    assert partners["hanako@partners.example"]["name"] == "田中 花子"
    assert partners["hanako@partners.example"]["created_at"].startswith("2024-01-05T02:03:04")
    assert len(partners["zoe@partners.example"]["key"]) == 8  # no token: one is generated

    ann = earnings(api, partners["ann@partners.example"])
    # paid 9.80 + 9.80; due 246.90 (on a sale of "1,234.50"); EUR kept apart, never added in.
    assert (ann["pending"], ann["approved"], ann["paid"], ann["reversed"]) == (0, 24690, 1960, 0)
    assert ann["other_currencies"] == {"EUR": {"pending": 0, "approved": 0, "reversed": 0,
                                               "paid": 1000}}
    jose = earnings(api, partners["jose@partners.example"])
    assert (jose["pending"], jose["approved"], jose["paid"], jose["reversed"]) == (1470, 0, 0, 1470)
    hanako = earnings(api, partners["hanako@partners.example"])
    assert hanako["pending"] == hanako["approved"] == 0
    assert hanako["other_currencies"]["JPY"] == {"pending": 1500, "approved": 1500,
                                                 "reversed": 0, "paid": 0}
    bob = earnings(api, partners["bob@partners.example"])
    assert bob["approved"] == 500

    convs = conversions_by_id(api)
    assert convs[C + "3"]["amount"] == 123450 and convs[C + "3"]["status"] == "approved"
    assert convs[C + "3"]["commission"] == 24690 and convs[C + "3"]["platform"] == "rewardful"
    assert convs[C + "3"]["attribution"]["touch"] == "import"
    assert convs[C + "5"]["status"] == "reversed" and convs[C + "5"]["commission"] == 0
    assert convs[C + "6"]["currency"] == "JPY" and convs[C + "6"]["amount"] == 7500
    assert convs[C + "6"]["commission"] == 1500 and convs[C + "6"]["commission_currency"] == "JPY"
    assert convs[C + "7"]["amount"] == 7500  # "7,500" yen
    assert convs[C + "8"]["status"] == "partially_refunded" and convs[C + "8"]["refunded"] == 2500
    assert convs[C + "4"]["partner_id"] == partners["jose@partners.example"]["id"]

    alice = customer_of(app, "import:rewardful:cus_A001")
    assert alice is not None and alice.partner_id == partners["ann@partners.example"]["id"]
    carol = customer_of(app, "import:rewardful:email:carol@customers.example")
    assert carol is not None and carol.partner_id == partners["bob@partners.example"]["id"]


def test_importing_the_same_files_again_changes_nothing(app, runner):
    api = new_program(app)
    import_all(runner)
    before = row_counts(app)
    ann = partners_by_email(api)["ann@partners.example"]
    money = earnings(api, ann)
    again = import_all(runner)
    assert row_counts(app) == before
    assert earnings(api, ann) == money
    assert again[0]["partners_unchanged"] == 5 and "partners_created" not in again[0]
    assert again[1]["customers_unchanged"] == 5
    assert again[2]["commissions_unchanged"] == 9 and "commissions_updated" not in again[2]


def test_what_if_replays_imported_history_to_the_same_partners(app, runner):
    """Each imported referral is kept as a `ref` touch, so replaying under another model finds
    the partners the old product credited (nothing changes hands)."""
    api = new_program(app)
    import_all(runner)
    whatif = api.ok("get", "/api/v1/reattribute?model=first_touch")
    assert whatif["conversions"] == 9 and whatif["conversions_changing_partner"] == 0


def test_commissions_first_then_referrals_credit_from_the_referral_date(app, runner):
    api = new_program(app)
    import_ok(runner, "rewardful", "affiliates.csv")
    import_ok(runner, "rewardful", "commissions.csv")
    out = import_ok(runner, "rewardful", "referrals.csv")
    # Every referral's customer was already met in the commissions file.
    assert out["customers_updated"] == 5 and "customers_created" not in out
    alice = customer_of(app, "import:rewardful:cus_A001")
    assert alice.attributed_at.isoformat().startswith("2024-01-10T10:00")
    whatif = api.ok("get", "/api/v1/reattribute?model=first_touch")
    assert whatif["conversions_changing_partner"] == 0


def test_a_renewal_of_an_imported_customer_inherits_the_partner(app, runner):
    """With --source api the file's Stripe customer ids are the ids the track API receives, so the
    customer's next payment is credited to the imported partner."""
    api = new_program(app)
    api.reward(event="sale", type="percent", value=20)
    import_ok(runner, "rewardful", "affiliates.csv")
    import_ok(runner, "rewardful", "referrals.csv", "--source", "api")
    sale = api.ok("post", "/api/v1/track/sale", {"customer_id": "cus_J001", "order_id": "in_77",
                                                 "amount": 4900, "currency": "USD"})
    jose = partners_by_email(api)["jose@partners.example"]
    assert sale["partner_id"] == jose["id"] and sale["attribution"]["touch"] == "customer"
    assert sale["commission"] == 980
    # Without the id, the email finds the customer too (a lead of Bob's, imported by email).
    other = api.ok("post", "/api/v1/track/sale", {"customer_id": "c_new", "order_id": "in_78",
                                                  "amount": 1000, "currency": "USD",
                                                  "email": "Carol@customers.example"})
    assert other["partner_id"] == partners_by_email(api)["bob@partners.example"]["id"]
