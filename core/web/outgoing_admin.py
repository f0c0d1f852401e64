"""/admin/webhooks: the merchant's endpoints for outgoing events (add, disable, delete, reveal
the signing secret) and the delivery log with every attempt and a "Retry" button.

Part of /admin (same sign-in, CSRF, program scoping) in its own blueprint. Every action calls
`core.outgoing_webhooks`, as the API does.
"""
from __future__ import annotations

import json

from flask import (
    Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for,
)
from pydantic import ValidationError
from sqlmodel import select

from core import outgoing_webhooks as hooks
from core.db import get_db
from core.db import session as db_session
from core.errors import ApiError, describe_validation_error
from core.models import OutgoingAttempt, OutgoingEvent, WebhookEndpoint
from core.outbox import EVENT_TYPES
from core.schemas import WebhookEndpointIn, WebhookEndpointPatch
from core.security import Vault
from core.web import admin
from core.web.pages import protect_forms

bp = Blueprint("webhooks_admin", __name__, url_prefix="/admin/webhooks",
               template_folder="templates")
bp.before_request(protect_forms)
bp.before_request(admin._require_login)
bp.context_processor(admin._inject)

DELIVERY_STATUSES = ("pending", "succeeded", "failed")


def _vault() -> Vault:
    return current_app.extensions["touchpoint"]["vault"]


def _fail(exc: Exception) -> None:
    flash(describe_validation_error(exc) if isinstance(exc, ValidationError)
          else getattr(exc, "message", str(exc)), "error")


def _own(s: object, endpoint_id: str) -> WebhookEndpoint:
    try:
        return hooks.get_endpoint(s, g.program.id, endpoint_id)  # type: ignore[arg-type]
    except ApiError:
        abort(404)


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    s, program = db_session(), g.program
    endpoints = list(s.exec(select(WebhookEndpoint).where(
        WebhookEndpoint.program_id == program.id, WebhookEndpoint.status != "deleted")
        .order_by(WebhookEndpoint.created_at)))
    status = request.args.get("status")
    status = status if status in DELIVERY_STATUSES else None
    urls = {e.id: e.url for e in s.exec(select(WebhookEndpoint).where(
        WebhookEndpoint.program_id == program.id))}
    return render_template(
        "admin/webhooks.html", endpoints=endpoints, event_types=EVENT_TYPES,
        secrets={e.id: hooks.endpoint_secret(_vault(), e) for e in endpoints},
        deliveries=hooks.recent_deliveries(s, program.id, 100, status=status), urls=urls,
        status=status, statuses=DELIVERY_STATUSES)


@bp.post("/")
def create():  # type: ignore[no-untyped-def]
    form = request.form
    try:
        data = WebhookEndpointIn(url=form.get("url", "").strip(),
                                 events=form.getlist("events"),
                                 description=form.get("description", "").strip() or None)
        with get_db().write() as s:
            endpoint, _ = hooks.create_endpoint(s, _vault(), g.program.id, data)
        flash(f"Endpoint added. Its signing secret is under “Signing secret” below; "
              f"check the {hooks.SIGNATURE_HEADER} header with it.", "ok")
        return redirect(url_for("webhooks_admin.index") + f"#{endpoint.id}")
    except (ValidationError, ApiError) as exc:
        _fail(exc)
    return redirect(url_for("webhooks_admin.index"))


@bp.post("/<endpoint_id>/status")
def set_status(endpoint_id: str):  # type: ignore[no-untyped-def]
    try:
        patch = WebhookEndpointPatch(status=request.form.get("status"))  # type: ignore[arg-type]
        with get_db().write() as s:
            hooks.update_endpoint(s, _own(s, endpoint_id), patch)
        flash("Endpoint enabled." if patch.status == "active" else "Endpoint disabled: "
              "nothing is sent to it until you enable it again.", "ok")
    except ValidationError as exc:
        _fail(exc)
    return redirect(url_for("webhooks_admin.index"))


@bp.post("/<endpoint_id>/delete")
def delete(endpoint_id: str):  # type: ignore[no-untyped-def]
    with get_db().write() as s:
        hooks.delete_endpoint(s, _own(s, endpoint_id))
    flash("Endpoint deleted; its deliveries stay in the log.", "ok")
    return redirect(url_for("webhooks_admin.index"))


@bp.get("/deliveries/<delivery_id>")
def delivery(delivery_id: str):  # type: ignore[no-untyped-def]
    s = db_session()
    try:
        d = hooks.get_delivery(s, g.program.id, delivery_id)
    except ApiError:
        abort(404)
    event = s.get(OutgoingEvent, d.event_id)
    attempts = list(s.exec(select(OutgoingAttempt).where(OutgoingAttempt.delivery_id == d.id)
                           .order_by(OutgoingAttempt.at, OutgoingAttempt.id)))
    endpoint = s.get(WebhookEndpoint, d.endpoint_id)
    return render_template("admin/webhook_delivery.html", d=d, attempts=attempts,
                           endpoint=endpoint,
                           payload=json.dumps(event.payload if event else {}, indent=2))


@bp.post("/deliveries/<delivery_id>/retry")
def retry(delivery_id: str):  # type: ignore[no-untyped-def]
    try:
        with get_db().write() as s:
            try:
                d = hooks.get_delivery(s, g.program.id, delivery_id)
            except ApiError:
                abort(404)
            hooks.retry_delivery(s, d)
        flash("Queued: it is sent at the next `touchpoint jobs run`.", "ok")
    except ApiError as exc:
        _fail(exc)
    return redirect(admin.local_next(request.form.get("next"), url_for("webhooks_admin.index")))
