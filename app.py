"""The app factory: the one explicit list of connectors, then core.

    flask --app app run           # development
    touchpoint serve              # production (gunicorn)
"""
from __future__ import annotations

from typing import Any

from flask import Flask

import core
from connectors.paddle import connector as paddle
from connectors.shopify import connector as shopify
from connectors.stripe import connector as stripe
from connectors.woocommerce import connector as woocommerce
from core.connectors import Connector

CONNECTORS: tuple[Connector, ...] = (stripe, paddle, woocommerce, shopify)


def create_app(config: dict[str, Any] | None = None,
               connectors: tuple[Connector, ...] = CONNECTORS) -> Flask:
    """Build the app. `config` overrides settings (tests pass `database_url`, `testing`...)."""
    return core.make_app(config, connectors)
