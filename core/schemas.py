"""Request and response shapes of API v1 (pydantic). The OpenAPI document is generated from
these and from the routes that use them (`core.web.openapi`), never written by hand."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.money import valid_currency

AttributionModel = Literal["last_touch", "first_touch"]


class Strict(BaseModel):
    """Unknown fields are refused by name, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid")


def _currency(v: str) -> str:
    if not valid_currency(v):
        raise ValueError("must be a three-letter ISO 4217 code in capitals, like USD")
    return v


# --- program -----------------------------------------------------------------------------------

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
    publishable_key: str
    created_at: datetime


class ProgramPatch(Strict):
    name: Optional[str] = Field(default=None, min_length=1, max_length=200)
    attribution_model: Optional[AttributionModel] = None
    attribution_window_days: Optional[int] = Field(default=None, ge=1, le=3650)
    cookie_days: Optional[int] = Field(default=None, ge=1, le=3650)
    promo_code_priority: Optional[bool] = None
    hold_days: Optional[int] = Field(default=None, ge=0, le=3650)
    allowed_domains: Optional[list[str]] = None


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
    amount: int = Field(ge=0, strict=True)
    currency: str
    email: Optional[str] = Field(default=None, max_length=320)
    click_id: Optional[str] = None
    ref: Optional[str] = None
    promo_code: Optional[str] = None
    event: str = Field(default="sale", min_length=1, max_length=100)
    subscription_id: Optional[str] = None
    occurred_at: Optional[datetime] = None

    _c = field_validator("currency")(_currency)


class RefundIn(Strict):
    order_id: str = Field(min_length=1, max_length=255)
    amount: Optional[int] = Field(default=None, gt=0, strict=True)
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
    status: Optional[Literal["pending", "approved", "held", "reversed", "partially_refunded"]] = None
    from_: Optional[datetime] = Field(default=None, alias="from")
    to: Optional[datetime] = None



class WhatIfQuery(Strict):
    model: AttributionModel
    window_days: Optional[int] = Field(default=None, ge=1, le=3650)
    from_: Optional[datetime] = Field(default=None, alias="from")
    to: Optional[datetime] = None


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
