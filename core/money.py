"""Money as integer minor units plus an ISO 4217 code.

Floats never touch an amount: platforms that send decimal strings ("19.99") are parsed with
`Decimal`, and percentages are applied with `Decimal` and rounded half-up, as the contract says.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 currencies whose minor unit is not 1/100. Everything else has two decimals.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


def exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has (JPY 0, USD 2, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), 2)


def valid_currency(code: object) -> bool:
    """A three-letter upper-case code; the list of real codes changes, the shape does not."""
    return isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()


def round_half_up(value: Decimal) -> int:
    """Round a Decimal to the nearest integer, halves away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents) of `currency`."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"Money amount must be an int of minor units, got {self.amount!r}")
        if not valid_currency(self.currency):
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")

    @classmethod
    def parse(cls, value: str | int | Decimal, currency: str) -> "Money":
        """Parse a major-unit decimal ("19.99", "1000") as the platforms send it.

        Raises ValueError for anything that is not an exact decimal of at most the currency's
        number of minor digits, because silently rounding a price would lose cents.
        """
        currency = currency.upper()
        if isinstance(value, float):
            raise TypeError("refusing a float amount; pass the platform's decimal string")
        try:
            dec = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {value!r}") from exc
        if not dec.is_finite():
            raise ValueError(f"not a finite amount: {value!r}")
        minor = dec.scaleb(exponent(currency))
        if minor != minor.to_integral_value():
            raise ValueError(f"{value!r} has more decimals than {currency} allows")
        return cls(int(minor), currency)

    def format(self) -> str:
        """Human form for pages and CSV: "1,234.50 USD"."""
        exp = exponent(self.currency)
        major = Decimal(self.amount).scaleb(-exp)
        return f"{major:,.{exp}f} {self.currency}"

    def __add__(self, other: "Money") -> "Money":
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot add {self.currency} and {other.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot subtract {other.currency} from {self.currency}")
        return Money(self.amount - other.amount, self.currency)


def percent_of(amount: int, percent: Decimal) -> int:
    """`percent` % of `amount` minor units, rounded half-up to the minor unit."""
    return round_half_up(Decimal(amount) * percent / Decimal(100))
