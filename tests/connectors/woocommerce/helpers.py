"""Orders and deliveries built from WooCommerce's published samples (tests/fixtures): each
variant is the sample order, loaded, with fields changed in code."""
from __future__ import annotations

import copy
import json
from typing import Any

from connectors.woocommerce.webhooks import signature
from tests.conftest import fixture_json

SECRET = "wc-secret"


def order(status: str = "processing", click: str | None = None, coupons: tuple[str, ...] = (),
          refunds: tuple[tuple[int, str], ...] = (), order_id: int | None = None,
          email: str | None = None, meta: dict[str, str] | None = None,
          paid: bool = True) -> dict[str, Any]:
    """The published order 727 (29.35 USD = 18.00 products + 10.00 shipping + 1.35 tax)."""
    o = copy.deepcopy(fixture_json("woocommerce", "order.retrieve_an_order.json"))
    o["status"] = status
    if order_id is not None:
        o["id"] = order_id
    if click:
        o["meta_data"].append({"id": 1, "key": "_tp_click", "value": click})
    for i, (key, value) in enumerate((meta or {}).items()):
        o["meta_data"].append({"id": 100 + i, "key": key, "value": value})
    o["coupon_lines"] = [{"id": i, "code": c, "discount": "0.00"} for i, c in enumerate(coupons)]
    o["refunds"] = [{"id": rid, "reason": "", "total": f"-{total}"} for rid, total in refunds]
    if email:
        o["billing"]["email"] = email
    if not paid:
        o["date_paid"] = o["date_paid_gmt"] = None
    return o


def headers(body: bytes, topic: str = "order.updated", delivery: str = "1",
            secret: str = SECRET) -> dict[str, str]:
    """The headers `WC_Webhook::deliver` sends, signed with `secret`."""
    resource, event = topic.split(".", 1)
    return {"X-WC-Webhook-Source": "https://shop.example/", "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": signature(secret, body), "X-WC-Webhook-ID": "142",
            "X-WC-Webhook-Delivery-ID": delivery, "Content-Type": "application/json"}


def body(o: Any) -> bytes:
    """As WooCommerce encodes it (`wp_json_encode`, trimmed)."""
    return json.dumps(o).encode()
