"""Shopify payloads built from the published samples (tests/fixtures/shopify)."""
from __future__ import annotations

import copy
import json
from typing import Any

from connectors.shopify.webhooks import signature
from tests.conftest import fixture_json

SHOP = "demo.myshopify.com"
SECRET = "shpss_app_secret"


def order(order_id: int = 450789469, click: str | None = None, landing: str | None = None,
          codes: tuple[str, ...] = (), financial_status: str = "paid") -> dict[str, Any]:
    o = copy.deepcopy(fixture_json("shopify", "order.json")["order"])
    o["id"] = order_id
    # One customer per order unless a test says otherwise (the sample's customer is shared).
    o["customer"]["id"] = order_id * 10
    o["email"] = o["customer"]["email"] = f"c{order_id}@example.com"
    o["financial_status"] = financial_status
    o["processed_at"] = "2026-03-02T10:00:00-05:00"
    if click:
        o["note_attributes"].append({"name": "tp_click", "value": click})
    if landing is not None:
        o["landing_site"] = landing
    o["discount_codes"] = [{"code": c, "amount": "10.00", "type": "fixed_amount"} for c in codes]
    return o


def refund(order_id: int = 450789469, refund_id: int = 509562969, amount: str = "209.00") -> dict[str, Any]:
    r = copy.deepcopy(fixture_json("shopify", "refund.json")["refund"])
    r["id"], r["order_id"] = refund_id, order_id
    r["transactions"][0]["amount"] = amount
    return r


def headers(body: bytes, topic: str, webhook_id: str = "w1", secret: str = SECRET,
            shop: str = SHOP) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": signature(secret, body), "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": shop, "X-Shopify-Webhook-Id": webhook_id,
            "Content-Type": "application/json"}


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
