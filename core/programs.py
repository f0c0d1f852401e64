"""Programs: creation (keys shown once), settings, and finding one by its keys."""
from __future__ import annotations

from urllib.parse import urlsplit

from sqlmodel import Session, select

from core.errors import ApiError
from core.ids import new_id
from core.models import Program
from core.schemas import ProgramCreate, ProgramCreated, ProgramOut, ProgramPatch
from core.security import hash_api_key, new_publishable_key, new_secret_key


def normalize_domain(value: str) -> str:
    """`https://Shop.Example/` -> `shop.example`; refuses what is not a host name."""
    v = value.strip().lower()
    if "://" in v:
        v = urlsplit(v).hostname or ""
    v = v.strip("/").split("/")[0].split(":")[0]
    labels = v.split(".")
    if not v or len(v) > 253 or any(not lab or len(lab) > 63 for lab in labels) or not all(
        c.isalnum() or c in "-." for c in v
    ):
        raise ApiError("invalid_domain", f"not a domain name: {value!r}")
    return v


def domain_allowed(host: str | None, allowed: list[str]) -> bool:
    """A host is allowed when it is one of the domains or a subdomain of one."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in allowed)


def create_program(s: Session, data: ProgramCreate) -> ProgramCreated:
    domain = normalize_domain(data.domain)
    secret = new_secret_key()
    program = Program(
        id=new_id("prg"),
        name=data.name,
        currency=data.currency,
        domain=domain,
        allowed_domains=[domain],
        secret_key_hash=hash_api_key(secret),
        publishable_key=new_publishable_key(),
    )
    s.add(program)
    s.flush()
    return ProgramCreated(program_id=program.id, api_key=secret,
                          publishable_key=program.publishable_key)


def rotate_secret_key(s: Session, program: Program) -> str:
    secret = new_secret_key()
    program.secret_key_hash = hash_api_key(secret)
    s.add(program)
    return secret


def by_secret_key(s: Session, key: str) -> Program | None:
    return s.exec(select(Program).where(Program.secret_key_hash == hash_api_key(key))).first()


def by_publishable_key(s: Session, key: str) -> Program | None:
    return s.exec(select(Program).where(Program.publishable_key == key)).first()


def update_program(s: Session, program: Program, patch: ProgramPatch) -> Program:
    values = patch.model_dump(exclude_unset=True)
    if "allowed_domains" in values:
        if values["allowed_domains"] is None:
            raise ApiError("invalid_request", "allowed_domains: must be a list of domains")
        values["allowed_domains"] = sorted({normalize_domain(d) for d in values["allowed_domains"]})
        if not values["allowed_domains"]:
            raise ApiError("invalid_request", "allowed_domains: at least one domain is needed")
    if "fraud_rules" in values and values["fraud_rules"] is not None:
        # Only the rules named change (see core.fraud.settings); a new dict so the JSON is saved.
        for rule, setting in values["fraud_rules"].items():
            if setting is None:
                raise ApiError("invalid_request", f"fraud_rules.{rule}: may not be null")
        values["fraud_rules"] = {**(program.fraud_rules or {}), **values["fraud_rules"]}
    for name, value in values.items():
        if value is None:
            raise ApiError("invalid_request", f"{name}: may not be null")
        setattr(program, name, value)
    s.add(program)
    return program


def program_out(p: Program) -> ProgramOut:
    return ProgramOut.model_validate(p, from_attributes=True)
