"""How the rules compare addresses (pure, no database)."""
from __future__ import annotations

import pytest

from core.fraud.emails import disposable_domain, is_public_provider, mailbox, split


@pytest.mark.parametrize("given,expected", [
    ("Ann.Lee+shop@GoogleMail.com", "annlee@gmail.com"),
    (" ann.lee@gmail.com ", "annlee@gmail.com"),
    ("Ann.Lee+x@annsblog.example", "ann.lee@annsblog.example"),  # dots matter off Gmail
    ("no-at-sign", None), ("@gmail.com", None), ("ann@", None), (None, None),
])
def test_mailbox(given, expected):
    assert mailbox(given) == expected


def test_disposable_and_public_domains():
    assert disposable_domain("x@mailinator.com") == "mailinator.com"
    assert disposable_domain("x@a.b.mailinator.com") == "mailinator.com"
    assert disposable_domain("x@annsblog.example") is None and disposable_domain("junk") is None
    assert is_public_provider("gmail.com") and is_public_provider("outlook.com")
    assert is_public_provider("mailinator.com") and not is_public_provider("annsblog.example")
    assert split("A@B.Example.") == ("a", "b.example")
