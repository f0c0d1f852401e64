from decimal import Decimal

import pytest

from core.money import Money, exponent, percent_of, round_half_up


def test_parse_decimal_strings_per_currency():
    assert Money.parse("19.99", "USD") == Money(1999, "USD")
    assert Money.parse("1000", "JPY") == Money(1000, "JPY")
    assert Money.parse("1.234", "KWD") == Money(1234, "KWD")
    assert Money.parse("0.10", "eur") == Money(10, "EUR")
    for bad in ("1.999", "abc", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            Money.parse(bad, "USD")
    with pytest.raises(TypeError):
        Money.parse(19.99, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(19.99, "USD")  # type: ignore[arg-type]


def test_half_up_and_percent():
    assert round_half_up(Decimal("0.5")) == 1 and round_half_up(Decimal("2.5")) == 3
    assert round_half_up(Decimal("-2.5")) == -3
    assert percent_of(10005, Decimal(10)) == 1001
    assert percent_of(333, Decimal("12.5")) == 42  # 41.625
    assert exponent("JPY") == 0 and exponent("USD") == 2


def test_no_mixing_currencies_and_format():
    with pytest.raises(ValueError):
        Money(1, "USD") + Money(1, "EUR")
    assert (Money(150, "USD") + Money(50, "USD")).amount == 200
    assert Money(123450, "USD").format() == "1,234.50 USD"
    assert Money(5, "JPY").format() == "5 JPY"
