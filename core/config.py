"""Settings from the environment (and a `.env` file), with every default in one place."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

DEFAULT_DATABASE_URL = "sqlite:///var/touchpoint.db"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _secret_key(var_dir: Path) -> str:
    """TOUCHPOINT_SECRET_KEY, or one generated once into var/secret.key and reused after."""
    env = os.environ.get("TOUCHPOINT_SECRET_KEY")
    if env:
        return env
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two workers starting at once must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    base_url: str = DEFAULT_BASE_URL
    shopify_api_key: str | None = None
    shopify_api_secret: str | None = None
    var_dir: Path = field(default_factory=lambda: Path("var"))
    testing: bool = False
    # Reverse proxies in front of Touchpoint whose X-Forwarded-For/-Proto/-Host to believe:
    # without it every visitor has the proxy's address (one rate-limit counter, one IP hash).
    trusted_proxies: int = 0
    # How long clicks of the redirect gather before they are moved to the database in one
    # transaction (core/click_spool.py): longer means fewer transactions under load, and reports
    # that see a click that much later. Nothing is lost either way.
    click_gather_ms: int = 5

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        load_dotenv(override=False)
        var_dir = Path(os.environ.get("TOUCHPOINT_VAR_DIR", "var"))
        values: dict[str, object] = {
            "database_url": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            "base_url": os.environ.get("TOUCHPOINT_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            "shopify_api_key": os.environ.get("SHOPIFY_API_KEY") or None,
            "shopify_api_secret": os.environ.get("SHOPIFY_API_SECRET") or None,
            "var_dir": var_dir,
            "trusted_proxies": int(os.environ.get("TOUCHPOINT_TRUSTED_PROXIES") or 0),
            "click_gather_ms": int(os.environ.get("TOUCHPOINT_CLICK_GATHER_MS") or 5),
        }
        values.update(overrides)
        if not values.get("secret_key"):
            values["secret_key"] = _secret_key(Path(values["var_dir"]))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]
