"""Build a realistic program directly in a fresh database, fast (bulk inserts, no HTTP).

1,000 partners with tags, 50 campaigns (links), clicks over 180 days, conversions from the four
platforms with subscription renewals and refunds, their customers, touches and ledger entries,
consistent with what the live engine would have written (commission = 10% or the tag's 15%).
"""
from __future__ import annotations

import base64
import os
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session

from core.models import (
    Click, Conversion, Customer, LedgerEntry, Link, Partner, PartnerTag, Reward, Source,
    Touch,
)
from core.programs import create_program
from core.schemas import ProgramCreate

PLATFORMS = ("stripe", "paddle", "woocommerce", "shopify")
TAGS = ("creators", "newsletter", "coupon-sites", "agencies", "vip")
CHUNK = 20_000


def rid(prefix: str) -> str:
    return prefix + "_" + base64.b32encode(os.urandom(10)).decode().lower()


def _bulk(engine: Engine, model: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            conn.execute(insert(model), rows[i:i + CHUNK])


def build(engine: Engine, *, partners: int = 1000, campaigns: int = 50, clicks: int = 1_000_000,
          conversions: int = 100_000, days: int = 180, seed: int = 7,
          now: datetime | None = None, progress: Any = None) -> dict[str, Any]:
    rnd = random.Random(seed)
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=days)
    step = progress or (lambda _msg: None)
    with Session(engine) as s:
        created = create_program(s, ProgramCreate(name="Bench", currency="USD", domain="shop.example"))
        s.commit()
    pid = created.program_id
    t0 = start - timedelta(days=1)
    partner_rows = [{"id": rid("ptr"), "program_id": pid, "name": f"Partner {i}",
                     "email": f"p{i}@partners.example", "key": f"p{i}", "created_at": t0}
                    for i in range(partners)]
    _bulk(engine, Partner, partner_rows)
    pids = [p["id"] for p in partner_rows]
    tag_rows, tagged = [], {}
    for p in pids:
        for tag in rnd.sample(TAGS, rnd.choice((1, 1, 2))):
            tag_rows.append({"program_id": pid, "partner_id": p, "tag": tag})
            tagged.setdefault(p, set()).add(tag)
    _bulk(engine, PartnerTag, tag_rows)
    _bulk(engine, Reward, [
        {"id": rid("rwd"), "program_id": pid, "name": "Standard", "event": "sale", "type": "percent",
         "value": "10", "duration_months": None, "partner_tag": None, "created_at": t0},
        {"id": rid("rwd"), "program_id": pid, "name": "VIP", "event": "sale", "type": "percent",
         "value": "15", "duration_months": 12, "partner_tag": "vip", "created_at": t0}])
    links = [{"id": rid("lnk"), "program_id": pid, "partner_id": pids[i % partners],
              "key": f"c{i}", "url": f"https://shop.example/landing/{i}", "campaign": f"campaign-{i}",
              "created_at": t0} for i in range(campaigns)]
    _bulk(engine, Link, links)
    sources = [{"id": rid("src"), "program_id": pid, "platform": p, "account": None,
                "secrets_encrypted": "", "settings": {}, "status": "active", "created_at": t0}
               for p in PLATFORMS]
    _bulk(engine, Source, sources)
    step("partners, links, sources")

    # Partner popularity follows a long tail, as in real programs.
    weights = [1.0 / (i + 1) ** 0.8 for i in range(partners)]
    span = days * 86400
    click_rows: list[dict[str, Any]] = []
    chosen = rnd.choices(range(partners), weights=weights, k=clicks)
    for n in range(clicks):
        link = links[n % campaigns] if n % 5 == 0 else None
        partner = link["partner_id"] if link else pids[chosen[n]]
        cid = rid("clk")
        click_rows.append({
            "id": cid, "program_id": pid, "partner_id": partner,
            "link_id": link["id"] if link else None, "visitor_id": cid,
            "campaign": link["campaign"] if link else None, "url": "https://shop.example/",
            "referrer": None, "device": "mobile" if n % 3 else "desktop",
            "ip_hash": base64.b16encode(os.urandom(8)).decode(),
            "is_bot": n % 20 == 0, "is_unique": n % 7 != 0,
            "created_at": start + timedelta(seconds=rnd.randrange(span))})
        if len(click_rows) == CHUNK * 5:
            _bulk(engine, Click, click_rows)
            click_rows = []
            step(f"clicks {n + 1:,}")
    _bulk(engine, Click, click_rows)
    step(f"clicks {clicks:,}")

    conv_rows, cust_rows, touch_rows, ledger_rows = [], [], [], []
    n = 0
    while n < conversions:
        src = sources[n % 4]
        cust = rid("cus")
        first_at = start + timedelta(seconds=rnd.randrange(span - 86400))
        attributed = rnd.random() < 0.7
        partner = pids[rnd.choices(range(partners), weights=weights)[0]] if attributed else None
        other = pids[rnd.randrange(partners)]
        cust_rows.append({"id": cust, "program_id": pid, "external_id": f"{src['id']}:{cust}",
                          "email": f"{cust}@customers.example", "partner_id": partner,
                          "attribution": {"model": "last_touch", "touch": "click"} if partner else None,
                          "attributed_at": first_at if partner else None, "created_at": first_at})
        if partner:
            touch_rows.append({"program_id": pid, "customer_id": cust, "partner_id": other,
                               "kind": "click", "at": first_at - timedelta(days=rnd.randrange(2, 20))})
            touch_rows.append({"program_id": pid, "customer_id": cust, "partner_id": partner,
                               "kind": "click", "at": first_at - timedelta(hours=rnd.randrange(1, 40))})
        subscription = src["platform"] in ("stripe", "paddle") and rnd.random() < 0.6
        payments = min(rnd.randrange(1, 7) if subscription else 1, conversions - n)
        amount = rnd.choice((1900, 2900, 4900, 9900, 14900)) if subscription else rnd.randrange(1500, 30000)
        sub_id = rid("sub") if subscription else None
        rate = 15 if partner and "vip" in tagged.get(partner, ()) else 10
        for k in range(payments):
            at = first_at + timedelta(days=30 * k)
            if at > now:
                break
            cid = rid("cnv")
            refunded = 0
            status = "pending"
            commission = (amount * rate + 50) // 100 if partner else 0
            earned = commission
            r = rnd.random()
            if r < 0.04:
                refunded, status, commission = amount, "reversed", 0
            elif r < 0.08:
                refunded, status = amount // 2, "partially_refunded"
                commission = earned - (earned * refunded + amount // 2) // amount
            elif at < now - timedelta(days=30):
                status = "approved"
            conv_rows.append({
                "id": cid, "program_id": pid, "origin": src["id"], "source_id": src["id"],
                "platform": src["platform"], "kind": "sale", "event": "sale",
                "external_id": rid("ord"), "customer_id": cust, "subscription_id": sub_id,
                "renewal": k > 0, "amount": amount, "currency": "USD", "paid_total": amount,
                "amount_program": None, "refunded": refunded, "status": status,
                "partner_id": partner, "click_id": None, "campaign": None,
                "reward_id": None, "commission_base": earned, "commission": commission,
                "commission_currency": "USD",
                "attribution": {"model": "last_touch", "touch": "subscription" if k else "click",
                                "reason": "bench"} if partner else None,
                "hints": {}, "occurred_at": at, "created_at": at})
            if partner and earned:
                ledger_rows.append({"program_id": pid, "partner_id": partner, "conversion_id": cid,
                                    "kind": "earned", "from_bucket": None, "to_bucket": "pending",
                                    "amount": earned, "currency": "USD", "created_at": at})
                if commission < earned:
                    ledger_rows.append({"program_id": pid, "partner_id": partner,
                                        "conversion_id": cid, "kind": "reversed",
                                        "from_bucket": "pending", "to_bucket": "reversed",
                                        "amount": earned - commission, "currency": "USD",
                                        "created_at": at})
                elif status == "approved":
                    ledger_rows.append({"program_id": pid, "partner_id": partner,
                                        "conversion_id": cid, "kind": "approved",
                                        "from_bucket": "pending", "to_bucket": "approved",
                                        "amount": earned, "currency": "USD",
                                        "created_at": at + timedelta(days=30)})
            n += 1
    _bulk(engine, Customer, cust_rows)
    _bulk(engine, Conversion, conv_rows)
    _bulk(engine, Touch, touch_rows)
    _bulk(engine, LedgerEntry, ledger_rows)
    step(f"conversions {len(conv_rows):,}, ledger entries {len(ledger_rows):,}")
    top = max(range(partners), key=lambda i: weights[i])
    return {"program_id": pid, "api_key": created.api_key, "publishable_key": created.publishable_key,
            "top_partner_id": pids[top], "link_keys": [lk["key"] for lk in links],
            "sources": {s_["platform"]: s_["id"] for s_ in sources}, "now": now}
