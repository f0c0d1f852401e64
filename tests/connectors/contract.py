"""Checks every connector's events must pass, for the platforms' own tests to call."""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from core.events import EVENT_TYPES
from core.money import Money


def check_events(events: list) -> None:
    """What core relies on in every event a connector emits."""
    for event in events:
        assert isinstance(event, EVENT_TYPES), event
        for f in fields(event):
            value = getattr(event, f.name)
            if isinstance(value, datetime):
                assert value.tzinfo is not None, (event, f.name)
            if isinstance(value, Money):
                assert isinstance(value.amount, int) and value.amount >= 0, (event, f.name)
        if type(event).__name__ == "Sale":
            assert event.order_id and isinstance(event.order_id, str)
            if event.paid_total is not None:
                assert event.paid_total.currency == event.amount.currency
                assert event.paid_total.amount >= event.amount.amount
