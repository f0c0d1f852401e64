"""Sources: connected platform accounts. Connecting asks the connector to check the credentials
and register webhooks before anything is stored, so a refused connection leaves no row behind."""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlmodel import Session, select

from core.connectors import ConnectError, Connector, Registry, SourceContext
from core.errors import ApiError, not_found
from core.ids import new_id
from core.models import Program, Source
from core.schemas import SourceIn, SourceOut, SourcePatch
from core.security import Vault


def registry() -> Registry:
    return current_app.extensions["touchpoint"]["registry"]


def vault() -> Vault:
    return current_app.extensions["touchpoint"]["vault"]


def base_url() -> str:
    return current_app.extensions["touchpoint"]["settings"].base_url


def webhook_url(connector: Connector, source_id: str) -> str:
    """Platforms that find the account from headers share one endpoint; the others get their
    source id in the path."""
    if connector.account_from_headers is not None:
        return f"{base_url()}/webhooks/{connector.id}"
    return f"{base_url()}/webhooks/{connector.id}/{source_id}"


def context(source: Source, connector: Connector | None = None) -> SourceContext:
    """The source as its connector sees it, credentials decrypted."""
    connector = connector or registry().get(source.platform)
    secrets = vault().decrypt(source.secrets_encrypted)
    return SourceContext(
        id=source.id, program_id=source.program_id, platform=source.platform,
        webhook_secret=secrets.get("webhook_secret"), account=source.account,
        credentials=secrets.get("credentials", {}), settings=dict(source.settings or {}),
        webhook_url=webhook_url(connector, source.id) if connector else "",
    )


def get_source(s: Session, program_id: str, source_id: str) -> Source:
    source = s.get(Source, source_id)
    if source is None or source.program_id != program_id:
        raise not_found("source")
    return source


def find_by_account(s: Session, platform: str, account: str,
                    active_only: bool = True) -> Source | None:
    """The source of a platform account; with `active_only=False` an uninstalled one too (its
    privacy webhooks still arrive), the active one first."""
    q = select(Source).where(Source.platform == platform, Source.account == account)
    if active_only:
        q = q.where(Source.status == "active")
    rows = s.exec(q.order_by(Source.created_at.desc())).all()
    return next((r for r in rows if r.status == "active"), rows[0] if rows else None)


def connect_source(s: Session, program: Program, data: SourceIn,
                   overrides: dict[str, Any] | None = None) -> tuple[Source, tuple[str, ...]]:
    """Validate, let the connector connect, then store. Raises ApiError for anything refused."""
    connector = registry().get(data.platform)
    if connector is None:
        raise ApiError("unknown_platform",
                       f"platform must be one of {', '.join(registry().ids())}, not {data.platform!r}")
    fields = dict(data.model_extra or {})
    unknown = sorted(set(fields) - set(connector.credential_fields))
    if unknown:
        raise ApiError("invalid_request", f"unknown field(s) for {connector.id}: {', '.join(unknown)}")
    for name, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise ApiError("invalid_request", f"{name}: must be a non-empty string")
    given = set(fields) | ({"webhook_secret"} if data.webhook_secret else set())
    missing = [f for f in connector.required_fields if f not in given]
    if missing:
        raise ApiError("invalid_request", f"missing for {connector.id}: {', '.join(missing)}")
    account = None
    for name in ("shop", "store_url"):
        if name in fields:
            account = fields[name].strip()
    if account and connector.normalize_account is not None:
        try:
            account = connector.normalize_account(account)
        except ValueError as exc:
            raise ApiError("invalid_account", str(exc)) from None
    source_id = new_id("src")
    ctx = SourceContext(id=source_id, program_id=program.id, platform=connector.id,
                        webhook_secret=data.webhook_secret, account=account, credentials=fields,
                        settings=dict((overrides or {}).get("settings", {})),
                        webhook_url=webhook_url(connector, source_id))
    actions: tuple[str, ...] = ()
    webhook_secret = data.webhook_secret
    settings: dict[str, Any] = dict(ctx.settings)
    if connector.connect is not None:
        try:
            result = connector.connect(ctx)
        except ConnectError as exc:
            raise ApiError("connect_failed", str(exc)) from None
        webhook_secret = result.webhook_secret or webhook_secret
        account = result.account or account
        settings.update(result.settings)
        actions = result.actions
    if not webhook_secret:
        raise ApiError("invalid_request",
                       "webhook_secret: required (or give API credentials so Touchpoint can "
                       "register the webhook itself)")
    if account and find_by_account(s, connector.id, account) is not None:
        raise ApiError("already_connected", f"{account} is already connected", 409)
    source = Source(id=source_id, program_id=program.id, platform=connector.id, account=account,
                    settings=settings,
                    secrets_encrypted=vault().encrypt({"webhook_secret": webhook_secret,
                                                       "credentials": fields}))
    s.add(source)
    s.flush()
    return source, actions


def attach_source(s: Session, program: Program, platform: str, account: str,
                  credentials: dict[str, str], webhook_secret: str,
                  settings: dict[str, Any] | None = None) -> Source:
    """Store a source whose credentials were obtained by the platform's own flow (an OAuth
    install): a reinstall of the same account reactivates and updates its row."""
    source = s.exec(select(Source).where(Source.platform == platform, Source.account == account,
                                         Source.program_id == program.id)).first()
    if source is None:
        source = Source(id=new_id("src"), program_id=program.id, platform=platform, account=account)
    source.status = "active"
    source.settings = {**(source.settings or {}), **(settings or {})}
    source.secrets_encrypted = vault().encrypt({"webhook_secret": webhook_secret,
                                                "credentials": credentials})
    s.add(source)
    s.flush()
    return source


def program_of_account(s: Session, platform: str, account: str) -> Program | None:
    """The program a platform account was installed into, whatever the source's status."""
    source = s.exec(select(Source).where(Source.platform == platform, Source.account == account)
                    .order_by(Source.created_at)).first()
    return s.get(Program, source.program_id) if source is not None else None


def update_source(s: Session, source: Source, data: "SourcePatch") -> Source:
    """Replace the webhook secret and/or credential fields; nothing else changes."""
    connector = registry().get(source.platform)
    fields = dict(data.model_extra or {})
    unknown = sorted(set(fields) - set(connector.credential_fields if connector else ()))
    if unknown:
        raise ApiError("invalid_request", f"unknown field(s) for {source.platform}: {', '.join(unknown)}")
    for name, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise ApiError("invalid_request", f"{name}: must be a non-empty string")
    if not fields and not data.webhook_secret:
        raise ApiError("invalid_request", "give webhook_secret and/or credential fields to change")
    secrets = vault().decrypt(source.secrets_encrypted)
    if data.webhook_secret:
        secrets["webhook_secret"] = data.webhook_secret
    secrets["credentials"] = {**secrets.get("credentials", {}), **fields}
    source.secrets_encrypted = vault().encrypt(secrets)
    s.add(source)
    return source


def disconnect_source(s: Session, source: Source) -> None:
    connector = registry().get(source.platform)
    if connector is not None and connector.disconnect is not None and source.status == "active":
        try:
            connector.disconnect(context(source, connector))
        except ConnectError as exc:
            current_app.logger.warning("disconnecting %s: %s", source.id, exc)
    source.status = "removed"
    s.add(source)


def source_out(source: Source, actions: tuple[str, ...] = ()) -> SourceOut:
    connector = registry().get(source.platform)
    return SourceOut(id=source.id, platform=source.platform, account=source.account,
                     status=source.status,
                     webhook_url=webhook_url(connector, source.id) if connector else "",
                     actions=list(actions), created_at=source.created_at)
