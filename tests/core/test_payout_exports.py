"""The mass-payout files, cell by cell: amounts from minor units in each currency's decimals,
one currency per file, and no cell a spreadsheet would run as a formula."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from core.errors import ApiError
from core.models import Partner, Payout
from core.payout_exports import decimal_amount, export, paypal_csv, short_reference, wise_csv
from tests.conftest import FIXTURES

AT = datetime(2026, 3, 1, tzinfo=timezone.utc)


def payout(amount: int, currency: str = "USD", pid: str = "pay_abcdefghijklmnop") -> Payout:
    return Payout(id=pid, program_id="prg", partner_id="ptr", currency=currency, amount=amount,
                  created_by="api", created_at=AT)


def partner(name: str = "Ann", email: str = "ann@example.com") -> Partner:
    return Partner(id="ptr", program_id="prg", name=name, email=email, key="ann")


@pytest.mark.parametrize("amount,currency,text", [
    (1050, "USD", "10.50"), (5, "EUR", "0.05"), (1000, "JPY", "1000"), (12345, "KWD", "12.345"),
    (100000000, "USD", "1000000.00")])
def test_amounts_in_the_currency_decimals(amount, currency, text):
    assert decimal_amount(amount, currency) == text


def test_paypal_rows_match_the_published_sample():
    sample = next(csv.reader(io.StringIO(
        (FIXTURES / "payouts" / "paypal_payouts_web_sample.csv").read_text())))
    [row] = list(csv.reader(io.StringIO(paypal_csv([(payout(1050), partner())], "Acme"))))
    assert len(row) == len(sample) and row[5] == sample[5]
    assert row[:4] == ["ann@example.com", "10.50", "USD", "pay_abcdefghijklmnop"]


def test_wise_header_is_the_template():
    header = (FIXTURES / "payouts" / "wise_send_by_email_header.csv").read_text().strip()
    text = wise_csv([(payout(1050, "EUR"), partner())])
    assert text.splitlines()[0] == header
    assert text.splitlines()[1] == "Ann,ann@example.com,TP ABCDEFGHIJKL,PRIVATE,target,10.50,EUR,EUR"
    assert len(short_reference(payout(1))) <= 18


def test_formulas_are_neutralised():
    [row] = list(csv.DictReader(io.StringIO(wise_csv([(payout(100), partner("=HYPERLINK(1)"))]))))
    assert row["name"] == "'=HYPERLINK(1)"


def test_one_currency_per_file():
    rows = [(payout(100, "USD"), partner()), (payout(100, "EUR", "pay_2"), partner())]
    for fmt in ("paypal", "wise"):
        with pytest.raises(ApiError) as err:
            export(fmt, rows, "Acme")
        assert "currency" in err.value.message
    with pytest.raises(ApiError):
        export("excel", rows[:1], "Acme")
    assert export("paypal", [], "Acme") == ("touchpoint-payouts-paypal-none.csv", "")
