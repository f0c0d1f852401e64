"""Touchpoint's core: the common model, attribution, commissions, storage and the web app.

`init_app(app, connectors, settings)` wires everything into a Flask app: the database, the
connector registry, the click recorder, error handlers, blueprints and the CLI. No platform is
named here; connectors arrive as an argument (see `app.py`).
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from core.config import Settings
from core.connectors import Connector, Registry


def make_app(config: dict[str, Any] | None, connectors: tuple[Connector, ...]) -> Flask:
    """A Flask app with these connectors. `config` overrides settings (`database_url`,
    `base_url`, `secret_key`, `testing`, ...); other keys go to `app.config` upper-cased."""
    config = dict(config or {})
    fields = Settings.__dataclass_fields__
    settings = Settings.from_env(**{k: v for k, v in config.items() if k in fields})
    app = Flask("touchpoint", static_folder=None)
    app.config.update({k.upper(): v for k, v in config.items() if k not in fields})
    app.config["TESTING"] = settings.testing
    init_app(app, connectors, settings)
    return app


def init_app(app: Flask, connectors: tuple[Connector, ...], settings: Settings) -> None:
    from core import db, errors
    from core.security import Vault
    from core.tracking import ClickRecorder
    from core.web import api, redirect, review_api, track, webhooks

    if not app.config.get("SECRET_KEY"):  # Flask presets it to None, so setdefault would not do
        app.config["SECRET_KEY"] = settings.secret_key
    database = db.init_app(app, settings.database_url)
    registry = Registry(connectors)
    app.extensions["touchpoint"] = {
        "settings": settings,
        "registry": registry,
        "vault": Vault(settings.secret_key),
        "clicks": ClickRecorder(database.engine, settings.var_dir, settings.click_gather_ms / 1000),
    }
    # Clicks a process that is gone spooled but did not store (see core.click_spool).
    app.extensions["touchpoint"]["clicks"].recover()
    app.wsgi_app = redirect.RedirectFastPath(app.wsgi_app, app.extensions["touchpoint"]["clicks"])  # type: ignore[method-assign]
    if settings.trusted_proxies:
        # Outermost, so the redirect's fast path and every limit see the visitor's address.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    errors.init_app(app)
    for bp in (api.bp, track.bp, redirect.bp, webhooks.bp, review_api.bp):
        app.register_blueprint(bp)
    from core.web import outgoing_api, payouts_api

    for bp in (payouts_api.bp, outgoing_api.bp):
        app.register_blueprint(bp)
    for connector in registry:
        if connector.blueprint is not None:
            app.register_blueprint(connector.blueprint)
    _init_pages(app)


def _init_pages(app: Flask) -> None:
    """Admin and portal pages, when present."""
    try:
        from core.web import pages
    except ImportError:
        return
    pages.init_app(app)
