"""Request and response shapes of API v1 (pydantic). The OpenAPI document is generated from
these and from the routes that use them (`core.web.openapi`), never written by hand."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, Optional, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from core.money import valid_currency

AttributionModel = Literal["last_touch", "first_touch"]
PayoutSchedule = Literal["manual", "weekly", "monthly"]


def _is_time(annotation: Any) -> bool:
    return annotation is datetime or datetime in get_args(annotation)


def _is_number(annotation: Any) -> bool:
    kinds = (int, float, Decimal)
    return annotation in kinds or any(a in kinds for a in get_args(annotation))


def _is_integer(annotation: Any) -> bool:
    return annotation is int or (int in get_args(annotation) and Decimal not in get_args(annotation))


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# The times a request may give: wide enough for any real record, narrow enough for date arithmetic.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


class Strict(BaseModel):
    """Unknown fields are refused by name, so a typo never silently does nothing; times are
    ISO 8601 only (pydantic would read `to=0.0` as 1970, Unix seconds, a question nobody asked);
    numbers are never `true`/`false` (pydantic would read `false` as 0: a reward's
    `duration_months: false` became "no months", found by schemathesis)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _types_as_documented(cls, data: Any, info: ValidationInfo) -> Any:
        """What pydantic's lax mode would coerce silently: a number for a time, a boolean for a
        number, and in a JSON body a string for an integer (`"amount": "5"`). A query string has
        only strings: there numbers are read from them."""
        json_body = bool(info.context and info.context.get("json_body"))
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                value = data.get(key, data.get(name))
                if _is_time(field.annotation) and _numeric(value):
                    raise ValueError(f"{key}: give an ISO 8601 time with a zone, like "
                                     "2026-01-31T12:00:00Z")
                if _is_number(field.annotation) and isinstance(value, bool):
                    raise ValueError(f"{key}: must be a number, not {str(value).lower()}")
                if json_body and _is_integer(field.annotation) and isinstance(value, str):
                    raise ValueError(f"{key}: must be a number, not a string")
        return data

    @model_validator(mode="after")
    def _times_in_range(self) -> Any:
        """Every time a request gives lies between 1970 and 2200. Outside, the database or the
        arithmetic on it breaks: year 1 at +01:00 is before year 1 in UTC, which neither Python
        nor PostgreSQL's driver can hold (schemathesis found it through `to` and `occurred_at`)."""
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, datetime) and _is_time(field.annotation):
                aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
                if not EARLIEST <= aware <= LATEST:
                    raise ValueError(f"{field.alias or name}: must be between {EARLIEST.year} "
                                     f"and {LATEST.year}")
        return self


def _currency(v: str) -> str:
    if not valid_currency(v):
        raise ValueError("must be a three-letter ISO 4217 code in capitals, like USD")
    return v


# Minor units: ten trillion of the major unit, far above any order, far below a 64-bit column.
MAX_AMOUNT = 10**15
MAX_PERIOD = timedelta(days=3660)  # ten years: the API's reports and the pages' custom periods


def _period_bounds(model: Any) -> Any:
    """`from`/`to` of a report: at most ten years apart (a report reads every day of the period
    and of the one before it); each lies between 1970 and 2200 (`Strict`). Zone-less times are
    left to the report's own check, which names them."""
    start, end = model.from_, model.to
    if start is not None and start.tzinfo is not None and (end is None or end.tzinfo is not None):
        if (end or datetime.now(timezone.utc)) - start > MAX_PERIOD:
            raise ValueError("from: a report covers at most ten years (3660 days)")
    return model


# --- program -----------------------------------------------------------------------------------

class FraudRules(BaseModel):
    """The fraud and quality rules of a program (`core.fraud`), each switchable, with its
    threshold. A rule that fires puts the conversion on hold for an admin; nothing is dropped."""

    self_referral: bool = True
    disposable_email: bool = True
    test_orders: bool = True
    click_flood: bool = True
    click_flood_max_clicks: int = Field(default=20, ge=2, le=100_000)
    click_flood_window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    fast_conversion: bool = True
    fast_conversion_seconds: int = Field(default=10, ge=1, le=24 * 3600)


class FraudRulesPatch(Strict):
    """Only the rules named change; the others keep their setting. JSON types are taken as
    they are (strict): `0` is not `false`, `20.0` is not `20`, as the OpenAPI document says."""

    self_referral: Optional[bool] = Field(default=None, strict=True)
    disposable_email: Optional[bool] = Field(default=None, strict=True)
    test_orders: Optional[bool] = Field(default=None, strict=True)
    click_flood: Optional[bool] = Field(default=None, strict=True)
    click_flood_max_clicks: Optional[int] = Field(default=None, ge=2, le=100_000, strict=True)
    click_flood_window_minutes: Optional[int] = Field(default=None, ge=1, le=7 * 24 * 60, strict=True)
    fast_conversion: Optional[bool] = Field(default=None, strict=True)
    fast_conversion_seconds: Optional[int] = Field(default=None, ge=1, le=24 * 3600, strict=True)


class ProgramOut(BaseModel):
    id: str
    name: str
    currency: str
    domain: str
    allowed_domains: list[str]
    attribution_model: AttributionModel
    attribution_window_days: int
    cookie_days: int
    promo_code_priority: bool
    hold_days: int
    payout_minimum: int = 0
    payout_schedule: PayoutSchedule = "manual"
    fraud_rules: FraudRules = Field(default_factory=FraudRules)
    publishable_key: str
    created_at: datetime


class ProgramPatch(Strict):
    name: Optional[str] = Field(default=None, min_length=1, max_length=200)
    attribution_model: Optional[AttributionModel] = None
    attribution_window_days: Optional[int] = Field(default=None, ge=1, le=3650, strict=True)
    cookie_days: Optional[int] = Field(default=None, ge=1, le=3650, strict=True)
    promo_code_priority: Optional[bool] = Field(default=None, strict=True)
    hold_days: Optional[int] = Field(default=None, ge=0, le=3650, strict=True)
    allowed_domains: Optional[list[str]] = None
    payout_minimum: Optional[int] = Field(default=None, ge=0, le=10**12, strict=True)
    payout_schedule: Optional[PayoutSchedule] = None
    fraud_rules: Optional[FraudRulesPatch] = None


class ProgramCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    currency: str
    domain: str = Field(min_length=1, max_length=253)

    _c = field_validator("currency")(_currency)


class ProgramCreated(BaseModel):
    program_id: str
    api_key: str
    publishable_key: str


# --- partners, links, codes, rewards -----------------------------------------------------------

class PartnerIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    key: Optional[str] = Field(default=None, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    tags: list[str] = Field(default_factory=list)


class PartnerOut(BaseModel):
    id: str
    name: str
    email: str
    key: str
    tags: list[str]
    referral_url: str
    created_at: datetime


class LinkIn(Strict):
    partner_id: str
    url: str = Field(min_length=1, max_length=2048)
    key: Optional[str] = Field(default=None, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    campaign: Optional[str] = Field(default=None, max_length=200)


class LinkOut(BaseModel):
    id: str
    partner_id: str
    key: str
    url: str
    campaign: Optional[str]
    short_url: str
    created_at: datetime


class PromoCodeIn(Strict):
    partner_id: str
    code: str = Field(min_length=1, max_length=100)


class PromoCodeOut(BaseModel):
    id: str
    partner_id: str
    code: str
    created_at: datetime


class RewardIn(Strict):
    name: Optional[str] = Field(default=None, max_length=200)
    event: str = Field(default="sale", min_length=1, max_length=100)
    type: Literal["percent", "flat"]
    value: Decimal = Field(ge=0)
    duration_months: Optional[int] = Field(default=None, ge=0, le=1200)
    partner_tag: Optional[str] = Field(default=None, max_length=100)


class RewardOut(BaseModel):
    id: str
    name: Optional[str]
    event: str
    type: str
    value: float | int
    duration_months: Optional[int]
    partner_tag: Optional[str]
    created_at: datetime


class SourceIn(BaseModel):
    """`platform` plus that platform's credential fields (see each connector's README)."""

    model_config = ConfigDict(extra="allow")
    platform: str
    webhook_secret: Optional[str] = None


class SourcePatch(BaseModel):
    """A new webhook secret and/or credentials (e.g. after rotating them in the platform)."""

    model_config = ConfigDict(extra="allow")
    webhook_secret: Optional[str] = Field(default=None, min_length=1)


class SourceOut(BaseModel):
    id: str
    platform: str
    account: Optional[str]
    status: str
    webhook_url: str
    actions: list[str] = Field(default_factory=list)
    created_at: datetime


# --- tracking ----------------------------------------------------------------------------------

class ClickIn(Strict):
    publishable_key: str
    ref: Optional[str] = None
    link: Optional[str] = None
    url: Optional[str] = Field(default=None, max_length=4096)
    referrer: Optional[str] = Field(default=None, max_length=4096)
    previous_click_id: Optional[str] = Field(default=None, max_length=64)


class ClickOut(BaseModel):
    click_id: str
    partner_key: Optional[str] = None
    cookie_days: Optional[int] = None


class LeadIn(Strict):
    customer_id: str = Field(min_length=1, max_length=255)
    email: Optional[str] = Field(default=None, max_length=320)
    click_id: Optional[str] = None
    ref: Optional[str] = None
    event: str = Field(default="sign_up", min_length=1, max_length=100)
    occurred_at: Optional[datetime] = None


class SaleIn(Strict):
    customer_id: str = Field(min_length=1, max_length=255)
    order_id: str = Field(min_length=1, max_length=255)
    amount: int = Field(ge=0, le=MAX_AMOUNT, strict=True)
    currency: str
    email: Optional[str] = Field(default=None, max_length=320)
    click_id: Optional[str] = None
    ref: Optional[str] = None
    promo_code: Optional[str] = None
    event: str = Field(default="sale", min_length=1, max_length=100)
    subscription_id: Optional[str] = None
    occurred_at: Optional[datetime] = None
    # The payment platform's stable id of the card or account paid with (Stripe's
    # `payment_method_details.card.fingerprint`, say): the self-referral rule holds a sale paid
    # with the same card as an order the partner placed under their own email.
    payment_fingerprint: Optional[str] = Field(default=None, min_length=1, max_length=255)

    _c = field_validator("currency")(_currency)


class RefundIn(Strict):
    order_id: str = Field(min_length=1, max_length=255)
    amount: Optional[int] = Field(default=None, gt=0, le=MAX_AMOUNT, strict=True)
    refund_id: Optional[str] = Field(default=None, max_length=255)
    occurred_at: Optional[datetime] = None


class AttributionOut(BaseModel):
    model: Optional[str] = None
    touch: Optional[str] = None
    click_id: Optional[str] = None
    reason: str = ""
    evidence: Optional[str] = None


class ConversionOut(BaseModel):
    id: str
    platform: str
    event: str
    external_id: str
    customer_id: Optional[str]
    subscription_id: Optional[str]
    renewal: bool
    amount: int
    currency: str
    refunded: int
    partner_id: Optional[str]
    status: str
    commission: int
    commission_currency: str
    reward_id: Optional[str]
    attribution: Optional[AttributionOut]
    occurred_at: datetime


class EarningsOut(BaseModel):
    currency: str
    pending: int
    approved: int
    reversed: int
    paid: int
    other_currencies: dict[str, dict[str, int]] = Field(default_factory=dict)


class ListQuery(Strict):
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Optional[str] = None


class ConversionQuery(ListQuery):
    partner_id: Optional[str] = None
    status: Optional[Literal["pending", "approved", "held", "reversed", "partially_refunded",
                             "rejected"]] = None
    from_: Optional[datetime] = Field(default=None, alias="from")
    to: Optional[datetime] = None


# --- fraud review ------------------------------------------------------------------------------

class ReviewReason(BaseModel):
    rule: str
    message: str


class ReviewOut(BaseModel):
    """A conversion a fraud rule put on hold, and what became of it."""

    conversion_id: str
    state: Literal["held", "released", "rejected"]
    reasons: list[ReviewReason]
    partner_id: Optional[str]
    commission_at_stake: int
    commission_currency: str
    reviewed_at: Optional[datetime]
    reviewed_by: Optional[str]
    conversion: ConversionOut


class ReviewQuery(ListQuery):
    state: Literal["held", "released", "rejected"] = "held"
    partner_id: Optional[str] = None


class WhatIfQuery(Strict):
    model: AttributionModel
    window_days: Optional[int] = Field(default=None, ge=1, le=3650)
    from_: Optional[datetime] = Field(default=None, alias="from")
    to: Optional[datetime] = None

    _p = model_validator(mode="after")(_period_bounds)


class WhatIfPartner(BaseModel):
    partner_id: str
    name: str
    currency: str
    current: int
    alternative: int
    difference: int


class WhatIfOut(BaseModel):
    model: str
    attribution_window_days: int
    conversions: int
    conversions_changing_partner: int
    partners: list[WhatIfPartner]


class ReportQuery(Strict):
    group_by: Literal["partner", "tag", "campaign", "offer", "event", "platform", "day", "week",
                      "month"] = "partner"
    from_: Optional[datetime] = Field(default=None, alias="from")
    to: Optional[datetime] = None
    partner_id: Optional[str] = None
    tag: Optional[str] = None
    campaign: Optional[str] = None
    platform: Optional[str] = None
    format: Literal["json", "csv"] = "json"

    _p = model_validator(mode="after")(_period_bounds)


class ReportRowOut(BaseModel):
    key: Optional[str]
    label: str
    clicks: int
    unique_clicks: int
    leads: int
    conversions: int
    revenue: int
    commission: int
    conversion_rate: float
    earnings_per_click: int
    lead_to_sale_rate: float
    other_currencies: dict[str, dict[str, int]] = Field(default_factory=dict)


class ReportOut(BaseModel):
    group_by: str
    currency: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    data: list[ReportRowOut]
    totals: ReportRowOut
    previous: dict[str, Any]


# --- payouts and outgoing webhooks (core.payouts, core.outbox, core.outgoing_webhooks) ----------

OutgoingEventType = Literal["conversion.created", "commission.created", "commission.reversed",
                            "payout.paid"]


def _optional_currency(v: Optional[str]) -> Optional[str]:
    return None if v is None else _currency(v)


class PayoutCreate(Strict):
    """Omit `partner_id` for every partner with a balance due, `currency` for every currency."""

    partner_id: Optional[str] = None
    currency: Optional[str] = None

    _c = field_validator("currency")(_optional_currency)


class PayoutPay(Strict):
    reference: str = Field(min_length=1, max_length=200,
                           description="the merchant's reference of the transfer (batch id, ...)")
    paid_at: Optional[datetime] = None


class PayoutItemOut(BaseModel):
    conversion_id: str
    amount: int


class PayoutOut(BaseModel):
    id: str
    partner_id: str
    partner_name: str
    currency: str
    amount: int
    status: Literal["created", "paid", "canceled"]
    reference: Optional[str]
    created_by: str
    paid_by: Optional[str]
    created_at: datetime
    paid_at: Optional[datetime]
    canceled_at: Optional[datetime]
    items: list[PayoutItemOut]


class PayoutQuery(ListQuery):
    partner_id: Optional[str] = None
    status: Optional[Literal["created", "paid", "canceled"]] = None
    currency: Optional[str] = None

    _c = field_validator("currency")(_optional_currency)


class PayoutExportQuery(Strict):
    format: Literal["paypal", "wise"]
    status: Literal["created", "paid"] = "created"
    currency: Optional[str] = None
    partner_id: Optional[str] = None

    _c = field_validator("currency")(_optional_currency)


class WebhookEndpointIn(Strict):
    url: str = Field(min_length=1, max_length=2048)
    events: list[OutgoingEventType] = Field(default_factory=list,
                                            description="empty: every event type")
    description: Optional[str] = Field(default=None, max_length=200)


class WebhookEndpointPatch(Strict):
    url: Optional[str] = Field(default=None, min_length=1, max_length=2048)
    events: Optional[list[OutgoingEventType]] = None
    description: Optional[str] = Field(default=None, max_length=200)
    status: Optional[Literal["active", "disabled"]] = None


class WebhookEndpointOut(BaseModel):
    id: str
    url: str
    description: Optional[str]
    events: list[str]
    status: str
    created_at: datetime
    secret: Optional[str] = Field(default=None, description="only in the answer that created it")


class WebhookAttemptOut(BaseModel):
    at: datetime
    status_code: Optional[int]
    duration_ms: int
    error: Optional[str]


class WebhookDeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: Optional[datetime]
    last_status_code: Optional[int]
    last_error: Optional[str]
    delivered_at: Optional[datetime]
    created_at: datetime
    payload: dict[str, Any]
    attempt_log: list[WebhookAttemptOut]


class WebhookDeliveryQuery(ListQuery):
    endpoint_id: Optional[str] = None
    status: Optional[Literal["pending", "succeeded", "failed"]] = None
    event_type: Optional[OutgoingEventType] = None
