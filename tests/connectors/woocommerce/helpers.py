"""Orders and deliveries built from WooCommerce's published samples (tests/fixtures)."""
from __future__ import annotations

import copy
import json
from typing import Any

from connectors.woocommerce.webhooks import signature
from tests.conftest import fixture_json

SECRET = "wc-secret"


def order(status: str = "processing", click: str | None = None, coupons: tuple[str, ...] = (),
          refunds: tuple[tuple[int, str], ...] = (), order_id: int | None = None,
          email: str | None = None) -> dict[str, Any]:
    o = copy.deepcopy(fixture_json("woocommerce", "order.retrieve_an_order.json"))
    o["status"] = status
    if order_id is not None:
        o["id"] = order_id
    if click:
        o["meta_data"].append({"id": 1, "key": "_tp_click", "value": click})
    o["coupon_lines"] = [{"id": i, "code": c, "discount": "0.00"} for i, c in enumerate(coupons)]
    o["refunds"] = [{"id": rid, "reason": "", "total": f"-{total}"} for rid, total in refunds]
    if email:
        o["billing"]["email"] = email
    return o


def headers(body: bytes, topic: str = "order.updated", delivery: str = "1",
            secret: str = SECRET) -> dict[str, str]:
    return {"X-WC-Webhook-Signature": signature(secret, body), "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-ID": "142", "X-WC-Webhook-Delivery-ID": delivery,
            "Content-Type": "application/json"}


def body(o: dict[str, Any]) -> bytes:
    return json.dumps(o).encode()
