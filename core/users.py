"""Owners of a program who sign in to /admin: passwords hashed with Werkzeug (scrypt)."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from core.errors import ApiError
from core.ids import new_id
from core.models import Program, User

MIN_PASSWORD = 10
# Checked when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def create_user(s: Session, program_id: str, email: str, password: str) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise ApiError("invalid_request", "email: not an email address")
    if len(password) < MIN_PASSWORD:
        raise ApiError("invalid_request", f"password: at least {MIN_PASSWORD} characters")
    if s.get(Program, program_id) is None:
        raise ApiError("not_found", "program not found", 404)
    if s.exec(select(User).where(User.email == email)).first() is not None:
        raise ApiError("email_taken", f"{email} already has an account", 409)
    user = User(id=new_id("usr"), program_id=program_id, email=email,
                password_hash=generate_password_hash(password))
    s.add(user)
    try:
        s.flush()
    except IntegrityError:
        raise ApiError("email_taken", f"{email} already has an account", 409) from None
    return user


def authenticate(s: Session, email: str, password: str) -> User | None:
    """The user with this email and password, or None (the same time either way)."""
    user = s.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def set_password(s: Session, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ApiError("invalid_request", f"password: at least {MIN_PASSWORD} characters")
    user.password_hash = generate_password_hash(password)
    s.add(user)
