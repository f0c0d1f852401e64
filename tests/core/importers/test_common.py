"""Reading export cells exactly: amounts into minor units without floats, dates into UTC, headers
in any spelling. Pure functions, no database."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from core.importers import IMPORTERS
from core.importers.common import ImportFailed, normalize, parse_decimal, parse_time
from core.money import Money


@pytest.mark.parametrize("text, expected", [
    ("19.99", "19.99"), ("1,234.50", "1234.50"), ("-14.70", "-14.70"), ("$49", "49"),
    ("1,000,000", "1000000"), (" 7 500 ", "7500"), ("€0.10", "0.10"),
])
def test_decimals_as_exports_write_them(text, expected):
    assert parse_decimal(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["12,5", "1,23.4", "abc", "1.2.3", "NaN", "Infinity", ""])
def test_ambiguous_or_broken_amounts_are_refused(text):
    with pytest.raises(ValueError):
        parse_decimal(text)


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_any_cent_amount_survives_thousands_separators_exactly(cents):
    major = Decimal(cents).scaleb(-2)
    text = f"{major:,.2f}"
    assert Money.parse(parse_decimal(text), "USD").amount == cents


def test_minor_units_follow_the_currency():
    assert Money.parse(parse_decimal("1,500"), "JPY").amount == 1500
    assert Money.parse(parse_decimal("12.345"), "KWD").amount == 12345
    with pytest.raises(ValueError):
        Money.parse(parse_decimal("15.5"), "JPY")  # yen have no decimals


@pytest.mark.parametrize("text, expected", [
    ("2024-03-05", datetime(2024, 3, 5, tzinfo=timezone.utc)),
    ("2024-03-05 14:22:01", datetime(2024, 3, 5, 14, 22, 1, tzinfo=timezone.utc)),
    ("2020-08-19T16:28:31.164Z", datetime(2020, 8, 19, 16, 28, 31, 164000, tzinfo=timezone.utc)),
    ("2024-03-05T14:00:00+02:00", datetime(2024, 3, 5, 12, tzinfo=timezone.utc)),
])
def test_times(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["05/03/2024", "March 5, 2024", "2024-13-01"])
def test_dates_that_could_be_misread_are_refused(text):
    with pytest.raises(ValueError):
        parse_time(text)


def test_headers_match_in_any_spelling():
    assert normalize("\ufeffAffiliate E-mail ") == normalize("affiliate_email") == "affiliateemail"


@pytest.mark.parametrize("product, headers, kind", [
    ("rewardful", ["id", "first_name", "last_name", "email", "token"], "partners"),
    ("rewardful", ["id", "affiliate_email", "stripe_customer_id", "created_at"], "customers"),
    ("rewardful", ["id", "amount", "currency", "state", "affiliate_email", "created_at"],
     "commissions"),
    ("firstpromoter", ["ID", "Email", "Ref ID", "Promo Code"], "partners"),
    ("firstpromoter", ["id", "email", "uid", "promoter_email"], "customers"),
    ("tolt", ["id", "amount", "status", "partner_email", "created_at", "Extra"], "commissions"),
    ("partnerstack", ["customer_key", "customer_email", "partner_key"], "customers"),
    ("partnerstack", ["reward_key", "amount", "status", "partner_key", "created"], "commissions"),
    ("tolt", ["foo", "bar"], None),
])
def test_kinds_are_told_apart_by_their_headers(product, headers, kind):
    assert IMPORTERS[product].detect(headers) == kind


def test_every_kind_has_a_layout_and_a_converter():
    for importer in IMPORTERS.values():
        assert set(importer.layouts) == set(importer.converters) == {"partners", "customers",
                                                                     "commissions"}
        assert importer.references


def test_an_extra_column_is_ignored_and_a_short_row_is_read_as_empty():
    rows = list(IMPORTERS["tolt"].rows([["email", "first_name", "Unknown"],
                                        ["a@b.example", "Al", "x"], ["c@d.example"]]))
    assert [r.name for r in rows] == ["Al", "c@d.example"]


def test_a_missing_required_value_names_its_row_and_column():
    with pytest.raises(ImportFailed) as exc:
        list(IMPORTERS["partnerstack"].rows([["partner_key", "Partner_Email", "partner_first"],
                                             ["pk_1", "", "Al"]]))
    assert exc.value.row == 2 and exc.value.column == "Partner_Email"
