"""What every importer shares: the three kinds of record a switching merchant brings along, the
column layouts that describe an export file, and strict parsing of its cells.

An importer is mostly declarations (allauth's provider habit): for each kind of file it names the
columns it reads, with the spellings the product uses, and a small hook that turns one row into an
`ImportedPartner`, `ImportedCustomer` or `ImportedCommission`. This module runs the rest: it matches
headers case-insensitively (spaces, dashes and underscores alike), ignores extra columns, tells the
kinds apart by which layout knows most of the header row, and raises `ImportFailed` naming the row and the column for
any cell it cannot read exactly. Money is read from decimal strings into integer minor units with
`core.money.Money.parse`; a float never touches an amount.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from core.money import Money, valid_currency

# What a commission is worth to the partner now, in Touchpoint's ledger buckets.
STATUSES = ("pending", "approved", "paid", "reversed")


class ImportFailed(Exception):
    """A file that cannot be imported as it is. `row` is the line in the file (the header is 1)."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None) -> None:
        self.row, self.column, self.reason = row, column, message
        where = ", ".join(p for p in (f"row {row}" if row else "",
                                      f"column {column!r}" if column else "") if p)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class ImportedPartner:
    """A partner as the old product knew it. `key` is their referral code (the token in their
    links); `promo_codes` are discount codes that credit them."""

    row: int
    source_id: str | None
    email: str
    name: str
    key: str | None = None
    promo_codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    # The headers as spelt in the file, so the writer's errors can name them.
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartnerRef:
    """How a customer or commission row names its partner: by email, by referral code, or both."""

    email: str | None = None
    key: str | None = None
    email_column: str | None = None
    key_column: str | None = None


@dataclass(frozen=True)
class ImportedCustomer:
    """A referred customer. `customer_id` is the billing platform's id when the export has it, so
    the platform's next payment finds this customer (see the writer's `--source`)."""

    row: int
    source_id: str | None
    partner: PartnerRef
    customer_id: str | None
    email: str | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ImportedCommission:
    """One commission of the old product, with the sale it was earned on when the export says.
    A negative `commission` is a clawback of money already paid (Tolt's refund commissions)."""

    row: int
    source_id: str
    partner: PartnerRef
    customer_id: str | None
    customer_email: str | None
    commission: Money
    status: str
    occurred_at: datetime
    sale: Money | None = None
    refunded: Money | None = None
    order_id: str | None = None


Imported = ImportedPartner | ImportedCustomer | ImportedCommission
RECORD_TYPES: dict[str, type] = {"partners": ImportedPartner, "customers": ImportedCustomer,
                                 "commissions": ImportedCommission}


# --- layouts ------------------------------------------------------------------------------------

def normalize(header: str) -> str:
    """`Affiliate E-mail`, `affiliate_email` and ` AFFILIATE EMAIL ` are one column."""
    return re.sub(r"[\s_\-]+", "", header.strip().lstrip("\ufeff")).lower()


@dataclass(frozen=True)
class Column:
    """One field of a layout and the headers it may have in the product's files."""

    field: str
    headers: tuple[str, ...]
    required: bool = False


def col(field_name: str, *headers: str, required: bool = False) -> Column:
    return Column(field_name, headers or (field_name,), required)


@dataclass(frozen=True)
class Layout:
    """The columns of one kind of export file."""

    kind: str
    columns: tuple[Column, ...]

    def resolve(self, headers: list[str]) -> dict[str, int]:
        """{field: column index} for the columns present; the first matching header wins."""
        index: dict[str, int] = {}
        for i, h in enumerate(headers):
            index.setdefault(normalize(h), i)
        found: dict[str, int] = {}
        for c in self.columns:
            for spelling in c.headers:
                if normalize(spelling) in index:
                    found[c.field] = index[normalize(spelling)]
                    break
        return found

    def missing(self, headers: list[str]) -> list[str]:
        found = self.resolve(headers)
        return [c.headers[0] for c in self.columns if c.required and c.field not in found]


# --- rows ---------------------------------------------------------------------------------------

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_SYMBOLS = "$€£¥"


def parse_decimal(text: str) -> Decimal:
    """A decimal as exports write it: "1234.50", "1,234.50", "-14.70", "$49". A comma is only
    accepted as a thousands separator ("1,234"); "12,50" is refused rather than guessed."""
    raw = text.strip().replace("\u00a0", "").replace(" ", "")
    sign = ""
    if raw and raw[0] in "+-":
        sign, raw = raw[0], raw[1:]
    raw = raw.lstrip(_SYMBOLS)
    if "," in raw:
        if not _THOUSANDS.match(raw):
            raise ValueError(f"{text!r} is not a decimal amount (use a point for decimals)")
        raw = raw.replace(",", "")
    try:
        value = Decimal(sign + raw)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite amount")
    return value


def parse_time(text: str) -> datetime:
    """ISO 8601 dates and times ("2024-03-05", "2024-03-05 14:22", "2024-03-05T14:22:01.5Z");
    a time without a zone is taken as UTC. Day-first or month-first dates are refused."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        value = datetime.fromisoformat(raw.replace(" UTC", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time "
                         "(YYYY-MM-DD[THH:MM:SS][Z])") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Row:
    """One data row, read by field name. Every accessor raises `ImportFailed` naming the row and
    the header as it is spelt in the file."""

    number: int
    cells: list[str]
    fields: dict[str, int]
    headers: list[str]
    default_currency: str

    def header(self, name: str) -> str:
        return self.headers[self.fields[name]].strip() if name in self.fields else name

    def fail(self, name: str, message: str) -> ImportFailed:
        return ImportFailed(message, self.number, self.header(name))

    def text(self, name: str) -> str | None:
        i = self.fields.get(name)
        if i is None or i >= len(self.cells):
            return None
        value = self.cells[i].strip()
        return value or None

    def need(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise self.fail(name, "is empty; a value is required")
        return value

    def first(self, *names: str) -> str | None:
        for name in names:
            value = self.text(name)
            if value is not None:
                return value
        return None

    def partner(self, email: str, key: str | None = None, email_required: bool = True) -> PartnerRef:
        """The partner the row names by its email column (and referral code column)."""
        return PartnerRef(self.email(email, required=email_required),
                          self.text(key) if key else None, self.header(email),
                          self.header(key) if key else None)

    def customer(self, id_column: str, email_column: str, missing: str, partner_email: str,
                 partner_key: str) -> ImportedCustomer:
        """A referred customer known by an id or an email (`missing` says so when the row has
        neither), and the partner named by its email and referral code columns."""
        customer_id, email = self.text(id_column), self.email(email_column)
        if customer_id is None and email is None:
            raise self.fail(id_column, missing)
        return ImportedCustomer(row=self.number, source_id=self.text("id"),
                                partner=self.partner(partner_email, partner_key),
                                customer_id=customer_id, email=email,
                                created_at=self.time("created_at"))

    def email(self, name: str, required: bool = False) -> str | None:
        value = self.need(name) if required else self.text(name)
        if value is None:
            return None
        if not _EMAIL.match(value):
            raise self.fail(name, f"{value!r} is not an email address")
        return value.lower()

    def time(self, name: str, required: bool = False) -> datetime | None:
        value = self.need(name) if required else self.text(name)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def currency(self, name: str = "currency") -> str:
        value = self.text(name)
        code = (value or self.default_currency).upper()
        if not valid_currency(code):
            raise self.fail(name, f"{value!r} is not an ISO 4217 currency code")
        return code

    def money(self, name: str, currency: str, required: bool = False,
              minor_units: bool = False) -> Money | None:
        """Exact money from a decimal in major units ("19.99"), or from an integer count of minor
        units when `minor_units` (the products' API-style `*_cents` columns)."""
        value = self.need(name) if required else self.text(name)
        if value is None:
            return None
        try:
            dec = parse_decimal(value)
            if minor_units:
                if dec != dec.to_integral_value():
                    raise ValueError(f"{value!r} is not a whole number of minor units")
                return Money(int(dec), currency)
            return Money.parse(dec, currency)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def choice(self, name: str, mapping: dict[str, str], default: str | None = None) -> str:
        value = self.text(name)
        if value is None:
            if default is not None:
                return default
            raise self.fail(name, "is empty; a status is required")
        found = mapping.get(value.strip().lower())
        if found is None:
            raise self.fail(name, f"unknown value {value!r} (expected one of "
                                  f"{', '.join(sorted(mapping))})")
        return found

    def boolean(self, name: str) -> bool:
        value = (self.text(name) or "").lower()
        if value in ("", "false", "no", "0", "n", "f"):
            return False
        if value in ("true", "yes", "1", "y", "t"):
            return True
        raise self.fail(name, f"{value!r} is not true or false")


def full_name(*parts: str | None) -> str | None:
    name = " ".join(p.strip() for p in parts if p and p.strip())
    return name or None


# --- importers ----------------------------------------------------------------------------------

Converter = Callable[[Row], Imported]


@dataclass(frozen=True)
class Importer:
    """One product: its name, where its columns are documented, and per kind a layout plus the
    hook turning a row into an imported record. Hooks read cells only through `Row`, never touch
    the database, and raise `ImportFailed` (via `row.fail`) for anything they cannot map."""

    name: str
    title: str
    references: tuple[str, ...]
    layouts: dict[str, Layout]
    converters: dict[str, Converter] = field(default_factory=dict)

    def detect(self, headers: list[str]) -> str | None:
        """The kind whose layout knows the most of these headers (two at least), or None. On a
        tie, a layout whose required columns are all present wins, then the richer kind. A best
        fit lacking a required column is still chosen, so that a commissions file missing its
        status is refused as such rather than read as a customers file."""
        best, best_rank = None, (2, False)
        for kind in ("commissions", "customers", "partners"):
            layout = self.layouts.get(kind)
            if layout is None:
                continue
            rank = (len(layout.resolve(headers)), not layout.missing(headers))
            if rank > best_rank or (best is None and rank >= best_rank):
                best, best_rank = kind, rank
        return best

    def rows(self, records: Iterable[list[str]], kind: str | None = None,
             currency: str = "USD") -> Iterator[Imported]:
        """Imported records from CSV records (the first is the header). `kind` None: detected.
        `currency` is used where a file has no currency column (the program's)."""
        it = iter(records)
        try:
            headers = next(it)
        except StopIteration:
            raise ImportFailed("the file is empty (no header row)") from None
        if not any(h.strip() for h in headers):
            raise ImportFailed("the first row is empty; expected the export's header row", 1)
        kind = kind or self.detect(headers)
        if kind is None:
            raise ImportFailed(f"the header row does not look like a {self.title} export of "
                               f"partners, customers or commissions ({self.expected()})", 1)
        layout = self.layouts.get(kind)
        if layout is None:
            raise ImportFailed(f"{self.title} has no {kind} export")
        missing = layout.missing(headers)
        if missing:
            raise ImportFailed(f"a {self.title} {kind} file needs the column(s) "
                               f"{', '.join(missing)}", 1)
        fields = layout.resolve(headers)
        convert, expected = self.converters[kind], RECORD_TYPES[kind]
        for number, cells in enumerate(it, start=2):
            if not any(c.strip() for c in cells):
                continue
            record = convert(Row(number, cells, fields, headers, currency))
            # The base checks what the hooks return, so a slip in one importer cannot write
            # a partner where a commission was meant, or a status the ledger has no bucket for.
            if not isinstance(record, expected):
                raise TypeError(f"{self.name} {kind} hook returned {type(record).__name__}")
            if isinstance(record, ImportedCommission) and record.status not in STATUSES:
                raise TypeError(f"{self.name} returned the status {record.status!r}")
            yield record

    def expected(self) -> str:
        return "; ".join(f"{kind}: {', '.join(c.headers[0] for c in layout.columns if c.required)}"
                         for kind, layout in self.layouts.items())
