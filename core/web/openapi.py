"""`@operation`: validates a route's input with pydantic and records it for the OpenAPI document.

The document at `/api/v1/openapi.json` is built from what the decorated routes declare, so it can
not drift from the code.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request
from pydantic import BaseModel, ValidationError

from core.errors import ApiError, describe_validation_error


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    many: bool
    auth: str  # "secret" | "publishable" | "none"
    tag: str
    extra_responses: tuple[int, ...] = ()
    # Other media types the success answer may have (e.g. "text/csv" for `format=csv`).
    media_types: tuple[str, ...] = ()


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    many: bool = False,
    auth: str = "secret",
    tag: str = "setup",
    media_types: tuple[str, ...] = (),
    extra_responses: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an API operation. The view receives `body=` and/or `query=` as validated models;
    `extra_responses` are other success statuses it may answer (202 for work kept for later)."""
    OPERATIONS.append(Operation(method.upper(), path, summary, body, query, response, status,
                                many, auth, tag, extra_responses=tuple(extra_responses),
                                media_types=tuple(media_types)))

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return view(*args, **kwargs)

        return inner

    return wrap


def refuse_nul(data: Any, where: str = "") -> None:
    """A NUL character can be stored by neither database's text (PostgreSQL refuses it): refuse
    it by name here rather than fail on the way in."""
    if isinstance(data, str):
        if "\x00" in data:
            raise ApiError("invalid_request", f"{where or 'body'}: contains a NUL character")
    elif isinstance(data, dict):
        for key, value in data.items():
            refuse_nul(str(key), where or "body")
            refuse_nul(value, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            refuse_nul(value, f"{where}.{i}" if where else str(i))


def parse_body(model: type[BaseModel]) -> Any:
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ApiError("invalid_json", "the body must be a JSON object (Content-Type: application/json)")
    refuse_nul(data)
    try:
        return model.model_validate(data, context={"json_body": True})
    except ValidationError as exc:
        raise ApiError("invalid_request", describe_validation_error(exc)) from exc


def parse_query(model: type[BaseModel]) -> Any:
    repeated = sorted(k for k, values in request.args.lists() if len(values) > 1)
    if repeated:  # taking one of them silently would answer another question than was asked
        raise ApiError("invalid_request", f"{repeated[0]}: give it once, not "
                       f"{len(request.args.getlist(repeated[0]))} times")
    data = {k: v for k, v in request.args.items()}
    refuse_nul(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError("invalid_request", describe_validation_error(exc)) from exc


def _path_params(path: str) -> list[dict[str, Any]]:
    params = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            params.append({"name": part[1:-1], "in": "path", "required": True,
                           "schema": {"type": "string"}})
    return params


def build_spec(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared operation."""
    components: dict[str, Any] = {}

    def ref(model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    error_ref = {"$ref": "#/components/schemas/Error"}
    components["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"]}},
        "required": ["error"],
    }
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        item: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                                "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '').replace('-', '_')}"}
        params = _path_params(op.path)
        if op.query is not None:
            schema = op.query.model_json_schema(by_alias=True)
            for name, prop in schema.get("properties", {}).items():
                params.append({"name": name, "in": "query",
                               "required": name in schema.get("required", []), "schema": prop})
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True,
                                   "content": {"application/json": {"schema": ref(op.body)}}}
        if op.response is not None:
            schema = ref(op.response, "serialization")
            if op.many:
                schema = {"type": "object", "properties": {
                    "data": {"type": "array", "items": schema},
                    "next_cursor": {"type": ["string", "null"]}}}
            ok = {"description": "OK", "content": {"application/json": {"schema": schema}}}
        else:
            ok = {"description": "OK"}
        for media_type in op.media_types:
            ok.setdefault("content", {})[media_type] = {"schema": {"type": "string"}}
        for code in op.extra_responses:
            item.setdefault("responses", {})[str(code)] = {
                "description": "Accepted, applied later",
                "content": {"application/json": {"schema": {"type": "object"}}}}
        item["responses"] = {**item.get("responses", {}), str(op.status): ok,
                             "4XX": {"description": "What was wrong with the request",
                                     "content": {"application/json": {"schema": error_ref}}}}
        if op.auth == "secret":
            item["security"] = [{"secretKey": []}]
        elif op.auth == "none":
            item["security"] = []
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "Touchpoint API", "version": "1",
                 "description": "Affiliate tracking and attribution. Money is integer minor units "
                                "with an ISO 4217 currency; times are ISO 8601 in UTC."},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "secretKey": {"type": "http", "scheme": "bearer",
                          "description": "The program's secret key, tp_sk_..."}}},
        "security": [{"secretKey": []}],
    }
