"""Partners, their tags, links, promo codes, and reward rules: the setup a program makes."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.errors import ApiError, not_found
from core.ids import new_id, new_key
from core.models import Link, Partner, PartnerTag, Program, PromoCode, Reward
from core.programs import domain_allowed
from core.schemas import (
    LinkIn, LinkOut, PartnerIn, PartnerOut, PromoCodeIn, PromoCodeOut, RewardIn, RewardOut,
)


def get_partner(s: Session, program_id: str, partner_id: str) -> Partner:
    partner = s.get(Partner, partner_id)
    if partner is None or partner.program_id != program_id:
        raise not_found("partner")
    return partner


def partner_by_key(s: Session, program_id: str, key: str) -> Partner | None:
    return s.exec(
        select(Partner).where(Partner.program_id == program_id, Partner.key == key)
    ).first()


def create_partner(s: Session, program: Program, data: PartnerIn) -> Partner:
    key = data.key or new_key()
    if partner_by_key(s, program.id, key) is not None:
        raise ApiError("key_taken", f"a partner with key {key!r} already exists", 409)
    partner = Partner(id=new_id("ptr"), program_id=program.id, name=data.name,
                      email=data.email.strip().lower(), key=key)
    s.add(partner)
    s.flush()
    for tag in sorted({t.strip() for t in data.tags if t.strip()}):
        s.add(PartnerTag(program_id=program.id, partner_id=partner.id, tag=tag))
    s.flush()
    return partner


def tags_of(s: Session, partner_ids: list[str]) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = defaultdict(list)
    if partner_ids:
        for row in s.exec(select(PartnerTag).where(PartnerTag.partner_id.in_(partner_ids))):
            tags[row.partner_id].append(row.tag)
    return tags


def partner_out(p: Partner, tags: list[str], program: Program) -> PartnerOut:
    return PartnerOut(id=p.id, name=p.name, email=p.email, key=p.key, tags=sorted(tags),
                      referral_url=f"https://{program.domain}/?ref={p.key}", created_at=p.created_at)


def create_link(s: Session, program: Program, data: LinkIn) -> Link:
    get_partner(s, program.id, data.partner_id)
    parts = urlsplit(data.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError("invalid_url", f"url must be an absolute http(s) URL: {data.url!r}")
    if not domain_allowed(parts.hostname, program.allowed_domains):
        raise ApiError("domain_not_allowed",
                       f"{parts.hostname} is not one of the program's allowed domains "
                       f"({', '.join(program.allowed_domains)})")
    key = data.key or new_key(7)
    link = Link(id=new_id("lnk"), program_id=program.id, partner_id=data.partner_id, key=key,
                url=data.url, campaign=data.campaign)
    s.add(link)
    try:
        s.flush()
    except IntegrityError:
        raise ApiError("key_taken", f"the link key {key!r} is taken", 409) from None
    return link


def link_out(link: Link, base_url: str) -> LinkOut:
    return LinkOut(id=link.id, partner_id=link.partner_id, key=link.key, url=link.url,
                   campaign=link.campaign, short_url=f"{base_url}/r/{link.key}",
                   created_at=link.created_at)


def create_promo_code(s: Session, program: Program, data: PromoCodeIn) -> PromoCode:
    get_partner(s, program.id, data.partner_id)
    code = data.code.strip()
    existing = s.exec(select(PromoCode).where(PromoCode.program_id == program.id,
                                              PromoCode.code_lower == code.lower())).first()
    if existing is not None:
        raise ApiError("code_taken", f"the promo code {code!r} already belongs to a partner", 409)
    promo = PromoCode(id=new_id("pc"), program_id=program.id, partner_id=data.partner_id,
                      code=code, code_lower=code.lower())
    s.add(promo)
    s.flush()
    return promo


def promo_code_out(p: PromoCode) -> PromoCodeOut:
    return PromoCodeOut(id=p.id, partner_id=p.partner_id, code=p.code, created_at=p.created_at)


def create_reward(s: Session, program: Program, data: RewardIn) -> Reward:
    value = Decimal(data.value)
    if data.type == "flat" and value != value.to_integral_value():
        raise ApiError("invalid_request", "value: a flat reward is an integer of minor units")
    if data.type == "percent" and value > 100:
        raise ApiError("invalid_request", "value: a percent reward is at most 100")
    reward = Reward(id=new_id("rwd"), program_id=program.id, name=data.name, event=data.event,
                    type=data.type, value=str(value.normalize() if data.type == "percent" else int(value)),
                    duration_months=data.duration_months, partner_tag=data.partner_tag)
    s.add(reward)
    s.flush()
    return reward


def reward_out(r: Reward) -> RewardOut:
    value = Decimal(r.value)
    number: float | int = int(value) if value == value.to_integral_value() else float(value)
    return RewardOut(id=r.id, name=r.name, event=r.event, type=r.type, value=number,
                     duration_months=r.duration_months, partner_tag=r.partner_tag,
                     created_at=r.created_at)
