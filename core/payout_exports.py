"""Mass-payout files: the CSV layouts PayPal Payouts and Wise batch transfers take on upload.

Both layouts are the providers' own, column for column:

- **PayPal Payouts (Payouts Web, .csv upload)**: no header row; per payout the columns
  recipient identifier (the partner's PayPal email), payment amount (decimal), currency (one
  currency per file), customer ID (optional, at most 30 characters without spaces: the payout's
  id), note to recipient (at most 400 characters), recipient wallet (`PAYPAL`). Source:
  https://developer.paypal.com/docs/payouts/standard/payouts-web/ and
  https://docs.paypal.ai/growth/payouts/send-money/use-web-ui ("Sample payout line items").
- **Wise batch payments, "Send by email" template** (the recipient enters their own bank
  details from Wise's email, so we need no bank data): header
  `name,recipientEmail,paymentReference,receiverType,amountCurrency,amount,sourceCurrency,targetCurrency`;
  `receiverType` PRIVATE, `amountCurrency` `target` (the partner receives exactly the amount,
  fees fall on the merchant). Source: https://wise.com/help/articles/2663302/how-do-i-fill-in-my-batch-template
  and https://wise.com/help/articles/2663296/whats-a-batch-payment-template.

Amounts are written from integer minor units with the currency's own number of decimals and a
point (100.50, 1000 for JPY), never through a float. Text cells that a spreadsheet would run as
a formula (=, +, -, @) get a leading apostrophe, as OWASP advises for CSV exports.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal

from core.errors import ApiError
from core.models import Partner, Payout
from core.money import exponent

FORMATS = ("paypal", "wise")
WISE_HEADER = ("name", "recipientEmail", "paymentReference", "receiverType", "amountCurrency",
               "amount", "sourceCurrency", "targetCurrency")


def decimal_amount(amount: int, currency: str) -> str:
    """1050 USD -> "10.50"; 1000 JPY -> "1000"."""
    exp = exponent(currency)
    return f"{Decimal(amount).scaleb(-exp):.{exp}f}"


def _cell(text: str) -> str:
    text = " ".join(text.split())
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def short_reference(payout: Payout) -> str:
    """A reference short enough for every Wise route (UK Faster Payments keep 18 characters)."""
    return "TP " + payout.id.split("_", 1)[-1][:12].upper()


def _one_currency(rows: list[tuple[Payout, Partner]]) -> str:
    currencies = sorted({p.currency for p, _ in rows})
    if len(currencies) > 1:
        raise ApiError("invalid_request", "currency: these payouts are in "
                       f"{' and '.join(currencies)}; a payout file holds one currency, "
                       "so choose one with ?currency=")
    return currencies[0] if currencies else ""


def paypal_csv(rows: Iterable[tuple[Payout, Partner]], program_name: str) -> str:
    rows = list(rows)
    _one_currency(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for payout, partner in rows:
        writer.writerow([partner.email, decimal_amount(payout.amount, payout.currency),
                         payout.currency, payout.id[:30],
                         _cell(f"{program_name} affiliate commission, payout {payout.id}")[:400],
                         "PAYPAL"])
    return out.getvalue()


def wise_csv(rows: Iterable[tuple[Payout, Partner]], source_currency: str | None = None) -> str:
    rows = list(rows)
    currency = _one_currency(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(WISE_HEADER)
    for payout, partner in rows:
        writer.writerow([_cell(partner.name), partner.email, short_reference(payout), "PRIVATE",
                         "target", decimal_amount(payout.amount, payout.currency),
                         source_currency or currency, payout.currency])
    return out.getvalue()


def export(fmt: str, rows: list[tuple[Payout, Partner]], program_name: str) -> tuple[str, str]:
    """(file name, CSV text) of the payouts in `fmt`."""
    if fmt == "paypal":
        text = paypal_csv(rows, program_name)
    elif fmt == "wise":
        text = wise_csv(rows)
    else:
        raise ApiError("invalid_request", f"format: must be one of {', '.join(FORMATS)}")
    currency = rows[0][0].currency if rows else "none"
    return f"touchpoint-payouts-{fmt}-{currency}.csv", text
