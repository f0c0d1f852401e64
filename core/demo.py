"""`touchpoint demo`: a program with a few months of realistic activity from all four platforms,
built through the same engine as real data (clicks through the click recorder, conversions
through `core.ingest`), so the ledger, the reports and the what-if are real."""
from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Flask
from werkzeug.security import generate_password_hash

from core import events as ev
from core.db import get_db
from core.ids import new_id
from core.ingest import IngestContext, apply
from core.jobs import approve_due
from core.models import Program, User
from core.money import Money
from core.partners import create_link, create_partner, create_promo_code, create_reward
from core.programs import create_program
from core.schemas import LinkIn, PartnerIn, ProgramCreate, PromoCodeIn, RewardIn
from core.sources import attach_source

PARTNERS = [("Maya Lopez", "maya", ["creators"]), ("Budget Bytes Blog", "budgetbytes", ["content"]),
            ("Tech Weekly", "techweekly", ["newsletter"]), ("Deal Hunter", "dealhunter", ["coupon"]),
            ("Olu Adeyemi", "olu", ["creators", "vip"]), ("Northwind Agency", "northwind", ["agency"]),
            ("Sam Carter", "samc", ["creators"]), ("The Indie Stack", "indiestack", ["newsletter", "vip"])]
UAS = ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15",
       "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"]


def run(app: Flask, days: int = 120, seed: int | None = None) -> dict[str, Any]:
    rnd = random.Random(seed)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    db = get_db()
    recorder = app.extensions["touchpoint"]["clicks"]
    settings = app.extensions["touchpoint"]["settings"]
    password = secrets.token_urlsafe(12)
    with db.write() as s:
        created = create_program(s, ProgramCreate(name="Demo Outfitters", currency="USD",
                                                  domain="demo-outfitters.example"))
        program = s.get(Program, created.program_id)
        program.hold_days = 14
        email = f"demo+{created.program_id[-6:]}@touchpoint.local"
        s.add(User(id=new_id("usr"), program_id=program.id, email=email,
                   password_hash=generate_password_hash(password)))
        partners = [create_partner(s, program, PartnerIn(name=n, email=f"{k}@partners.example",
                                                         key=k, tags=t)) for n, k, t in PARTNERS]
        links = [create_link(s, program, LinkIn(partner_id=p.id, campaign=c,
                                                url=f"https://demo-outfitters.example/{c}"))
                 for p in partners for c in rnd.sample(["spring-sale", "new-arrivals", "pro-plan"], 2)]
        for p in partners[:4]:
            create_promo_code(s, program, PromoCodeIn(partner_id=p.id, code=f"{p.key.upper()}15"))
        create_reward(s, program, RewardIn(name="Standard 20%", event="sale", type="percent", value=20))
        create_reward(s, program, RewardIn(name="VIP 30% for a year", event="sale", type="percent",
                                           value=30, duration_months=12, partner_tag="vip"))
        create_reward(s, program, RewardIn(name="Sign-up bonus", event="lead", type="flat", value=200))
        sources = {p: attach_source(s, program, p, f"demo-{p}", {}, secrets.token_urlsafe(16))
                   for p in ("stripe", "paddle", "woocommerce", "shopify")}
        program_id, api_key = program.id, created.api_key
    link_info = [(recorder.link(link.key), link) for link in links]
    counts = {"clicks": 0, "leads": 0, "sales": 0, "refunds": 0}
    for day in range(days, -1, -1):
        for _ in range(rnd.randint(20, 55)):
            info, link = rnd.choice(link_info)
            at = now - timedelta(days=day, seconds=rnd.randrange(86400))
            if at > now:
                continue
            click_id = recorder.record(program_id=program_id, partner_id=link.partner_id,
                                       link_id=link.id, campaign=link.campaign, url=link.url,
                                       referrer="https://social.example/", user_agent=rnd.choice(UAS),
                                       ip=f"198.51.100.{rnd.randrange(256)}", now=at)
            counts["clicks"] += 1
            if rnd.random() < 0.06:
                _convert(db, program_id, sources, rnd, click_id, at, now, counts)
    with app.app_context():
        approve_due(now)
    return {"program_id": program_id, "api_key": api_key, "admin_url": f"{settings.base_url}/admin",
            "email": email, "password": password, "partners": len(partners), **counts}


def _convert(db, program_id: str, sources: dict, rnd: random.Random, click_id: str,  # type: ignore[no-untyped-def]
             clicked: datetime, now: datetime, counts: dict[str, int]) -> None:
    platform = rnd.choice(list(sources))
    source = sources[platform]
    customer = new_id("cust", 8)
    at = min(clicked + timedelta(hours=rnd.randint(1, 72)), now)
    referral = ev.Referral(click_id=click_id, evidence="demo")
    events: list[ev.Event] = []
    if platform in ("stripe", "paddle"):
        events.append(ev.Lead(customer_id=customer, occurred_at=at, referral=referral))
        counts["leads"] += 1
        price = rnd.choice([1900, 4900, 9900])
        sub = new_id("sub", 8)
        months = 0
        while at + timedelta(days=30 * months) <= now and months < 6:
            paid_at = at + timedelta(days=30 * months, hours=1)
            events.append(ev.Sale(order_id=new_id("inv", 10), amount=Money(price, "USD"),
                                  occurred_at=paid_at, customer_id=customer, subscription_id=sub,
                                  renewal=months > 0, referral=referral if months == 0 else ev.NO_REFERRAL))
            counts["sales"] += 1
            months += 1
            if rnd.random() < 0.15:
                events.append(ev.SubscriptionCanceled(subscription_id=sub, occurred_at=paid_at + timedelta(days=3)))
                break
    else:
        order = new_id("ord", 10)
        amount = rnd.randrange(2500, 25000)
        events.append(ev.Sale(order_id=order, amount=Money(amount, "USD"),
                              paid_total=Money(amount + amount // 10, "USD"), occurred_at=at,
                              customer_id=customer, referral=referral))
        counts["sales"] += 1
        if rnd.random() < 0.1:
            events.append(ev.Refund(order_id=order, refund_id=new_id("re", 8), occurred_at=at + timedelta(days=2),
                                    amount=Money(rnd.randrange(500, amount), "USD")))
            counts["refunds"] += 1
    with db.write() as s:
        program = s.get(Program, program_id)
        src = s.get(type(source), source.id)
        apply(IngestContext(session=s, program=program, origin=src.id, platform=platform, source=src),
              events)
