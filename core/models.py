"""The tables. Every row belongs to one program (`program_id`), and every query goes through
`core.scoping` helpers that filter by it, so no request can read across programs.

Amounts are integer minor units beside a currency code. `LedgerEntry` rows are only ever inserted:
adjustments are new rows, never edits (see `core.ledger`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint, text
from sqlalchemy.orm import relationship
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, Relationship, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite has no time zones, PostgreSQL's `timestamp`
    without zone keeps both databases identical."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite reads
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)


def ts(**kw: Any) -> Any:
    """A UTC timestamp column."""
    nullable = kw.pop("nullable", False)
    index = kw.pop("index", False)
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kw)


def json_col(default: Any) -> Any:
    return Field(default_factory=lambda: type(default)(default), sa_column=Column(JSON, nullable=False))


def written_after(target: str) -> Any:
    """A many-to-one that is never read (lazy="raise"). Declared so the unit of work writes the
    row referred to before the row referring to it: ingestion then writes a new customer, its
    conversion, touches and ledger entries in one flush, with their final values, instead of
    flushing each as it is made and updating it later (`core.ingest`)."""
    return Relationship(sa_relationship=relationship(target, lazy="raise"))


class Program(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    currency: str
    domain: str
    allowed_domains: list = json_col([])
    attribution_model: str = "last_touch"
    attribution_window_days: int = 30
    cookie_days: int = 30
    promo_code_priority: bool = True
    hold_days: int = 30
    payout_minimum: int = 0  # minor units of a payout's currency; smaller balances wait
    payout_schedule: str = "manual"  # manual | weekly | monthly (see core.payouts)
    # Fraud and quality rules switched off or tuned for this program; absent keys take the
    # defaults of `core.fraud.settings` (so {} means every rule on with its default threshold).
    fraud_rules: dict = json_col({})
    secret_key_hash: str = Field(index=True, unique=True)
    publishable_key: str = Field(index=True, unique=True)
    created_at: datetime = ts(default_factory=utcnow)


class User(SQLModel, table=True):
    """An owner of a program who signs in to /admin."""

    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    email: str = Field(index=True, unique=True)
    password_hash: str
    created_at: datetime = ts(default_factory=utcnow)


class Partner(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("program_id", "key"),)
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    name: str
    email: str
    key: str
    created_at: datetime = ts(default_factory=utcnow)


class PartnerTag(SQLModel, table=True):
    program_id: str = Field(foreign_key="program.id", index=True)
    partner_id: str = Field(foreign_key="partner.id", primary_key=True)
    tag: str = Field(primary_key=True)


class Link(SQLModel, table=True):
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    partner_id: str = Field(foreign_key="partner.id", index=True)
    key: str = Field(index=True, unique=True)
    url: str
    campaign: Optional[str] = None
    created_at: datetime = ts(default_factory=utcnow)


class PromoCode(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("program_id", "code_lower"),)
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    partner_id: str = Field(foreign_key="partner.id", index=True)
    code: str
    code_lower: str
    created_at: datetime = ts(default_factory=utcnow)


class Reward(SQLModel, table=True):
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    name: Optional[str] = None
    event: str = "sale"
    type: str = "percent"
    # Decimal text: "12.5" percent, or an integer count of minor units for flat rewards.
    value: str = "0"
    duration_months: Optional[int] = None
    partner_tag: Optional[str] = None
    created_at: datetime = ts(default_factory=utcnow)


class Source(SQLModel, table=True):
    """A connected platform account. Credentials and the webhook secret are encrypted at rest."""

    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    platform: str
    account: Optional[str] = Field(default=None, index=True)
    secrets_encrypted: str = ""
    settings: dict = json_col({})
    status: str = "active"
    created_at: datetime = ts(default_factory=utcnow)


class Click(SQLModel, table=True):
    """One visit through a partner's link or ref. `visitor_id` chains clicks of one browser
    (the first click's id). `ip_hash` is a hash of the IP address and user agent with a salt that
    changes every day: it tells repeated clicks apart for a day, and the raw address is never kept."""

    __table_args__ = (
        # Covering the columns reports count by, so live counts never read the wide rows.
        Index("ix_click_program_created", "program_id", "created_at", "partner_id", "is_bot",
              "is_unique", "campaign", "utm_campaign"),
        Index("ix_click_partner_created", "partner_id", "created_at", "is_bot", "is_unique"),
        Index("ix_click_visitor", "visitor_id"),
        Index("ix_click_fingerprint", "partner_id", "ip_hash", "created_at"),
    )
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    partner_id: str = Field(foreign_key="partner.id")
    link_id: Optional[str] = None
    visitor_id: str
    campaign: Optional[str] = None
    url: Optional[str] = None
    referrer: Optional[str] = None
    utm_source: Optional[str] = None
    utm_medium: Optional[str] = None
    utm_campaign: Optional[str] = None
    utm_term: Optional[str] = None
    utm_content: Optional[str] = None
    device: str = "desktop"
    ip_hash: Optional[str] = None
    is_bot: bool = False
    is_unique: bool = True
    created_at: datetime = ts(default_factory=utcnow)


class ClickDaily(SQLModel, table=True):
    """Clicks of one closed UTC day per partner and campaign (see `core.rollups`). Only days in
    `ClickDay` are summed here; a click recorded later for such a day drops both."""

    __table_args__ = (Index("ix_clickdaily_partner", "program_id", "partner_id", "day",
                            "clicks", "unique_clicks"),)

    program_id: str = Field(foreign_key="program.id", primary_key=True)
    day: str = Field(primary_key=True)  # YYYY-MM-DD, UTC
    partner_id: str = Field(primary_key=True)
    campaign: str = Field(default="", primary_key=True)
    clicks: int = 0
    unique_clicks: int = 0


class ClickDay(SQLModel, table=True):
    """A (program, day) whose clicks are summed in ClickDaily."""

    program_id: str = Field(foreign_key="program.id", primary_key=True)
    day: str = Field(primary_key=True)


class Customer(SQLModel, table=True):
    """A merchant's customer, once seen. `partner_id` is set once and kept: a customer once
    attributed stays with that partner for later purchases and renewals."""

    __table_args__ = (
        UniqueConstraint("program_id", "external_id"),
        Index("ix_customer_program_email", "program_id", "email"),
    )
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    external_id: str
    email: Optional[str] = None
    partner_id: Optional[str] = Field(default=None, foreign_key="partner.id")
    attribution: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    attributed_at: Optional[datetime] = ts(default=None, nullable=True)
    created_at: datetime = ts(default_factory=utcnow)


class Touch(SQLModel, table=True):
    """Referral evidence seen for a customer: a click, a ref or a promo code, with its time.
    Attribution and the what-if replay read these."""

    __table_args__ = (Index("ix_touch_customer", "customer_id", "at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    customer_id: str = Field(foreign_key="customer.id")
    customer: Optional[Customer] = written_after("Customer")
    partner_id: str = Field(foreign_key="partner.id")
    kind: str
    click_id: Optional[str] = None
    code: Optional[str] = None
    evidence: Optional[str] = None
    at: datetime = ts()


class Conversion(SQLModel, table=True):
    """A lead, sale or custom event. `origin` is the source id (or "api" for the track API) and
    with `external_id` identifies the platform's order: the same order twice is one row."""

    __table_args__ = (
        UniqueConstraint("program_id", "origin", "external_id"),
        # Covering the columns reports sum, so a report reads the index and not the rows.
        Index("ix_conversion_program_occurred", "program_id", "occurred_at", "partner_id", "kind",
              "currency", "amount", "paid_total", "refunded", "status", "amount_program",
              "commission", "commission_currency"),
        Index("ix_conversion_partner_occurred", "partner_id", "occurred_at", "program_id", "kind",
              "currency", "amount", "paid_total", "refunded", "status", "amount_program",
              "commission", "commission_currency"),
        Index("ix_conversion_subscription", "program_id", "origin", "subscription_id"),
        Index("ix_conversion_customer", "customer_id"),
        Index("ix_conversion_review", "program_id", "review"),
        Index("ix_conversion_payment", "program_id", "payment_fingerprint"),
    )
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    origin: str
    source_id: Optional[str] = Field(default=None, foreign_key="source.id")
    platform: str
    kind: str  # "sale" (money) or "lead"
    event: str
    external_id: str
    customer_id: Optional[str] = Field(default=None, foreign_key="customer.id")
    customer: Optional[Customer] = written_after("Customer")
    subscription_id: Optional[str] = None
    renewal: bool = False
    amount: int = 0
    currency: str
    paid_total: int = 0
    amount_program: Optional[int] = None
    refunded: int = 0
    status: str = "pending"
    partner_id: Optional[str] = Field(default=None, foreign_key="partner.id")
    click_id: Optional[str] = None
    campaign: Optional[str] = None
    reward_id: Optional[str] = None
    # What the reward rule gave on the full amount when the conversion was credited (fixed then,
    # so later rule edits never rewrite history), and the current value after adjustments.
    commission_base: int = 0
    commission: int = 0
    commission_currency: str = ""
    attribution: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    hints: dict = json_col({})
    # Fraud review (core.fraud): None when no rule fired; "held" waits for an admin, who
    # "released" or "rejected" it. The reasons are [{"rule", "message"}] as shown to the admin.
    review: Optional[str] = None
    review_reasons: Optional[list] = Field(default=None, sa_column=Column(JSON))
    reviewed_at: Optional[datetime] = ts(default=None, nullable=True)
    reviewed_by: Optional[str] = None
    # The platform's fingerprint of the means of payment (a card), when it reports one.
    payment_fingerprint: Optional[str] = None
    occurred_at: datetime = ts()
    created_at: datetime = ts(default_factory=utcnow)


class ConversionAlias(SQLModel, table=True):
    """Other platform ids of the same payment (charge, payment intent, checkout session), mapped
    to the order's external id. It may be learnt before the order itself arrives."""

    program_id: str = Field(foreign_key="program.id", primary_key=True)
    origin: str = Field(primary_key=True)
    alias: str = Field(primary_key=True)
    order_ref: str = Field(index=True)


class Adjustment(SQLModel, table=True):
    """A refund, dispute or cancellation reported by a platform, kept as reported. It may arrive
    before its sale: `order_ref` names the payment and `conversion_id` is filled once it exists.
    The conversion's target commission is recomputed from all its adjustments."""

    __table_args__ = (
        UniqueConstraint("program_id", "origin", "kind", "key"),
        Index("ix_adjustment_order_ref", "program_id", "origin", "order_ref"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    origin: str
    order_ref: str
    conversion_id: Optional[str] = Field(default=None, foreign_key="conversion.id", index=True)
    conversion: Optional[Conversion] = written_after("Conversion")
    kind: str  # refund | refund_total | chargeback | cancel
    key: str
    amount: Optional[int] = None  # minor units; None: the whole payment
    currency: Optional[str] = None
    status: Optional[str] = None  # chargebacks: open | lost | won
    occurred_at: datetime = ts()
    created_at: datetime = ts(default_factory=utcnow)


class SubscriptionCancel(SQLModel, table=True):
    program_id: str = Field(foreign_key="program.id", primary_key=True)
    origin: str = Field(primary_key=True)
    subscription_id: str = Field(primary_key=True)
    canceled_at: datetime = ts()


class LedgerEntry(SQLModel, table=True):
    """One movement of commission between buckets (None -> pending: earned; pending -> approved;
    approved -> paid; pending/approved -> reversed; reversed -> pending: restored).
    A bucket's balance is what flowed in minus what flowed out. Rows are never updated."""

    __table_args__ = (
        Index("ix_ledger_partner", "partner_id", "created_at"),
        Index("ix_ledger_conversion", "conversion_id"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    partner_id: str = Field(foreign_key="partner.id")
    conversion_id: str = Field(foreign_key="conversion.id")
    conversion: Optional[Conversion] = written_after("Conversion")
    kind: str  # earned | reversed | partially_reversed | restored | approved | paid
    from_bucket: Optional[str] = None
    to_bucket: Optional[str] = None
    amount: int
    currency: str
    note: Optional[str] = None
    payout_id: Optional[str] = None  # approved -> paid movements: the payout that paid them
    created_at: datetime = ts(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """The raw inbox: every verified delivery as received, stored before we answer 2xx.
    UNIQUE(source_id, delivery_key) makes the same delivery twice one row (dj-stripe's guard)."""

    __table_args__ = (
        UniqueConstraint("source_id", "delivery_key"),
        # The drainer's "next deliveries of this source": only the waiting rows are indexed, so
        # finding them costs the same after a million processed deliveries as after ten.
        Index("ix_webhookdelivery_waiting", "source_id", "id",
              sqlite_where=text("status = 'received'"), postgresql_where=text("status = 'received'")),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    source_id: str = Field(foreign_key="source.id")
    delivery_key: str
    topic: str
    headers: dict = json_col({})
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = "received"  # received | processed | failed
    error: Optional[str] = None
    attempts: int = 0
    received_at: datetime = ts(default_factory=utcnow)
    processed_at: Optional[datetime] = ts(default=None, nullable=True)


class DailySalt(SQLModel, table=True):
    """Random salt of one UTC day for hashing IP addresses; deleted after two days so old
    hashes can no longer be tied to an address."""

    day: str = Field(primary_key=True)
    salt: str


class PersonalDataExport(SQLModel, table=True):
    """What we held about a customer when a platform asked (privacy data requests)."""

    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    source_id: Optional[str] = Field(default=None, foreign_key="source.id")
    request_id: str
    data: dict = json_col({})
    created_at: datetime = ts(default_factory=utcnow)


# --- payouts and outgoing webhooks (issue #11: core.payouts, core.outbox) -----------------------

class Payout(SQLModel, table=True):
    """Money owed to one partner in one currency: created (the amounts are reserved), then paid
    with the merchant's reference, or canceled (the amounts are free again). Only `pay` and
    `cancel` change `status`, each with a conditional UPDATE ... WHERE status = 'created', so
    two clicks on "pay" pay once (see `core.payouts.pay_payout`)."""

    __table_args__ = (
        Index("ix_payout_program_created", "program_id", "created_at"),
        Index("ix_payout_partner", "partner_id", "status", "currency"),
    )
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    partner_id: str = Field(foreign_key="partner.id")
    currency: str
    amount: int
    status: str = "created"  # created | paid | canceled
    reference: Optional[str] = None
    created_by: str
    paid_by: Optional[str] = None
    created_at: datetime = ts(default_factory=utcnow)
    paid_at: Optional[datetime] = ts(default=None, nullable=True)
    canceled_at: Optional[datetime] = ts(default=None, nullable=True)


class PayoutItem(SQLModel, table=True):
    """The part of one conversion's approved balance a payout covers (negative: a refund after
    an earlier payout, netted). Paying writes one ledger movement per item."""

    __table_args__ = (Index("ix_payoutitem_conversion", "conversion_id"),)
    payout_id: str = Field(foreign_key="payout.id", primary_key=True)
    conversion_id: str = Field(foreign_key="conversion.id", primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    amount: int


class PayoutRun(SQLModel, table=True):
    """A scheduled payout run done for a program and period ("2026-W09", "2026-03"); the
    primary key keeps two `touchpoint jobs run` at once from running it twice."""

    program_id: str = Field(foreign_key="program.id", primary_key=True)
    period: str = Field(primary_key=True)
    payouts: int = 0
    created_at: datetime = ts(default_factory=utcnow)


class WebhookEndpoint(SQLModel, table=True):
    """A merchant's URL that receives signed events. The signing secret is encrypted at rest
    with the credentials vault (it must be read back to sign)."""

    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id", index=True)
    url: str
    description: Optional[str] = None
    events: list = json_col([])
    secret_encrypted: str
    status: str = "active"  # active | disabled | deleted
    created_at: datetime = ts(default_factory=utcnow)


class OutgoingEvent(SQLModel, table=True):
    """The transactional outbox: an event written in the same transaction as the change that
    caused it, so it exists exactly when the change does."""

    __table_args__ = (Index("ix_outgoingevent_program_created", "program_id", "created_at"),)
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    type: str
    payload: dict = json_col({})
    created_at: datetime = ts(default_factory=utcnow)


class OutgoingDelivery(SQLModel, table=True):
    """One event to one endpoint: pending until the endpoint answers 2xx (succeeded), retried
    with exponential backoff, failed after the last attempt."""

    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_outgoingdelivery_due", "status", "next_attempt_at"),
        Index("ix_outgoingdelivery_program_created", "program_id", "created_at"),
    )
    id: str = Field(primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    endpoint_id: str = Field(foreign_key="webhookendpoint.id")
    event_id: str = Field(foreign_key="outgoingevent.id")
    event_type: str
    status: str = "pending"  # pending | succeeded | failed
    attempts: int = 0
    next_attempt_at: Optional[datetime] = ts(default=None, nullable=True)
    last_status_code: Optional[int] = None
    last_error: Optional[str] = None
    delivered_at: Optional[datetime] = ts(default=None, nullable=True)
    created_at: datetime = ts(default_factory=utcnow)


class OutgoingAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery, as the delivery log shows it."""

    __table_args__ = (Index("ix_outgoingattempt_delivery", "delivery_id", "at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    program_id: str = Field(foreign_key="program.id")
    delivery_id: str = Field(foreign_key="outgoingdelivery.id")
    at: datetime = ts(default_factory=utcnow)
    status_code: Optional[int] = None
    duration_ms: int = 0
    error: Optional[str] = None


# --- reliability: rate limits shared by every process (core/ratelimit.py) ------------------------

class RateLimitCounter(SQLModel, table=True):
    """One fixed-window counter of the `limits` library (Flask-Limiter's storage), kept in the
    database so every worker and every server counts the same hits."""

    __tablename__ = "rate_limit_counter"
    key: str = Field(primary_key=True, max_length=255)
    count: int = 0
    expires_at: float = Field(index=True)  # seconds since the epoch, when the window ends
