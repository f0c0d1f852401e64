"""/api/v1/webhook-endpoints and /api/v1/webhook-deliveries: the merchant's URLs for signed
Touchpoint events, and the delivery log (see `core.outbox`, `core.outgoing_webhooks`)."""
from __future__ import annotations

from flask import Blueprint, current_app
from sqlmodel import select

from core import outgoing_webhooks as hooks
from core.db import session
from core.models import OutgoingDelivery, WebhookEndpoint
from core.schemas import (
    ListQuery, WebhookDeliveryOut, WebhookDeliveryQuery, WebhookEndpointIn, WebhookEndpointOut,
    WebhookEndpointPatch,
)
from core.security import Vault
from core.web.apiutil import current_program, listing, ok, page, writing
from core.web.openapi import operation

bp = Blueprint("outgoing_api", __name__, url_prefix="/api/v1")


def _vault() -> Vault:
    return current_app.extensions["touchpoint"]["vault"]


@bp.post("/webhook-endpoints")
@operation("POST", "/api/v1/webhook-endpoints", "Register a URL for signed events "
           "(conversion.created, commission.created, commission.reversed, payout.paid); the "
           "answer holds the signing secret, shown this once", body=WebhookEndpointIn,
           response=WebhookEndpointOut, status=201, tag="webhooks")
def create_endpoint(body: WebhookEndpointIn):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        endpoint, secret = hooks.create_endpoint(s, _vault(), program.id, body)
        out = hooks.endpoint_out(endpoint, secret)
    return ok(out, 201)


@bp.get("/webhook-endpoints")
@operation("GET", "/api/v1/webhook-endpoints", "List webhook endpoints", query=ListQuery,
           response=WebhookEndpointOut, many=True, tag="webhooks")
def list_endpoints(query: ListQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    rows, nxt = page(WebhookEndpoint, select(WebhookEndpoint).where(
        WebhookEndpoint.program_id == program.id, WebhookEndpoint.status != "deleted"),
        query.limit, query.cursor, session())
    return listing([hooks.endpoint_out(e) for e in rows], nxt)


@bp.get("/webhook-endpoints/<endpoint_id>")
@operation("GET", "/api/v1/webhook-endpoints/{endpoint_id}", "One webhook endpoint",
           response=WebhookEndpointOut, tag="webhooks")
def get_endpoint(endpoint_id: str):  # type: ignore[no-untyped-def]
    return ok(hooks.endpoint_out(hooks.get_endpoint(session(), current_program().id, endpoint_id)))


@bp.patch("/webhook-endpoints/<endpoint_id>")
@operation("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}", "Change an endpoint's URL, "
           "events or description, or disable it", body=WebhookEndpointPatch,
           response=WebhookEndpointOut, tag="webhooks")
def patch_endpoint(endpoint_id: str, body: WebhookEndpointPatch):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        out = hooks.endpoint_out(hooks.update_endpoint(
            s, hooks.get_endpoint(s, program.id, endpoint_id), body))
    return ok(out)


@bp.delete("/webhook-endpoints/<endpoint_id>")
@operation("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}", "Delete an endpoint: nothing "
           "more is sent to it; its delivery log stays", response=WebhookEndpointOut,
           tag="webhooks")
def delete_endpoint(endpoint_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        out = hooks.endpoint_out(hooks.delete_endpoint(
            s, hooks.get_endpoint(s, program.id, endpoint_id)))
    return ok(out)


@bp.post("/webhook-endpoints/<endpoint_id>/rotate-secret")
@operation("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "Replace the "
           "endpoint's signing secret; the answer holds the new one, shown this once",
           response=WebhookEndpointOut, tag="webhooks")
def rotate_secret(endpoint_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        endpoint = hooks.get_endpoint(s, program.id, endpoint_id)
        out = hooks.endpoint_out(endpoint, hooks.rotate_secret(s, _vault(), endpoint))
    return ok(out)


@bp.get("/webhook-deliveries")
@operation("GET", "/api/v1/webhook-deliveries", "The delivery log: each event sent to each "
           "endpoint, with every attempt's status code, duration and error",
           query=WebhookDeliveryQuery, response=WebhookDeliveryOut, many=True, tag="webhooks")
def list_deliveries(query: WebhookDeliveryQuery):  # type: ignore[no-untyped-def]
    program = current_program()
    s = session()
    stmt = select(OutgoingDelivery).where(OutgoingDelivery.program_id == program.id)
    if query.endpoint_id:
        hooks.get_endpoint(s, program.id, query.endpoint_id)  # another program's: 404
        stmt = stmt.where(OutgoingDelivery.endpoint_id == query.endpoint_id)
    if query.status:
        stmt = stmt.where(OutgoingDelivery.status == query.status)
    if query.event_type:
        stmt = stmt.where(OutgoingDelivery.event_type == query.event_type)
    rows, nxt = page(OutgoingDelivery, stmt, query.limit, query.cursor, s)
    return listing([hooks.delivery_out(s, d) for d in rows], nxt)


@bp.get("/webhook-deliveries/<delivery_id>")
@operation("GET", "/api/v1/webhook-deliveries/{delivery_id}", "One delivery and its attempts",
           response=WebhookDeliveryOut, tag="webhooks")
def get_delivery(delivery_id: str):  # type: ignore[no-untyped-def]
    s = session()
    return ok(hooks.delivery_out(s, hooks.get_delivery(s, current_program().id, delivery_id)))


@bp.post("/webhook-deliveries/<delivery_id>/retry")
@operation("POST", "/api/v1/webhook-deliveries/{delivery_id}/retry", "Send a pending or failed "
           "delivery again at the next dispatch", response=WebhookDeliveryOut, tag="webhooks")
def retry_delivery(delivery_id: str):  # type: ignore[no-untyped-def]
    program = current_program()
    with writing() as s:
        d = hooks.retry_delivery(s, hooks.get_delivery(s, program.id, delivery_id))
        s.flush()
        out = hooks.delivery_out(s, d)
    return ok(out)
