"""API errors: a 4xx with `{"error": {"code", "message"}}` that says what was wrong."""
from __future__ import annotations

from flask import Flask, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def not_found(what: str) -> ApiError:
    return ApiError("not_found", f"{what} not found", 404)


def describe_validation_error(exc: ValidationError) -> str:
    """One readable sentence per wrong field: "amount: Input should be a valid integer"."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def error_response(code: str, message: str, status: int):  # type: ignore[no-untyped-def]
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def _wants_json() -> bool:
    return (
        request.path.startswith(("/api/", "/webhooks/", "/r/", "/t.js"))
        or request.accept_mimetypes.best == "application/json"
    )


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
        return error_response(exc.code, exc.message, exc.status)

    @app.errorhandler(DataError)
    def _data(exc: DataError):  # type: ignore[no-untyped-def]
        # The database refused a value the checks above let through (a NUL in a path id, a
        # number beyond its integer range): bad input, so a 4xx; the transaction rolled back.
        return error_response("invalid_request", "a value in the request cannot be stored "
                              "(out of range, or a NUL character)", 400)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):  # type: ignore[no-untyped-def]
        return error_response("invalid_request", describe_validation_error(exc), 400)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        if not _wants_json():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(code, exc.description or exc.name, exc.code or 400)
