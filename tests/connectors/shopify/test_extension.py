"""connectors/shopify/extension/: the theme app embed is well formed and loads t.js."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

EXTENSION = Path(__file__).parents[3] / "connectors" / "shopify" / "extension"


def test_theme_app_embed():
    toml = tomllib.loads((EXTENSION / "shopify.extension.toml").read_text())
    assert toml["type"] == "theme" and toml["name"]
    liquid = (EXTENSION / "blocks" / "touchpoint.liquid").read_text()
    schema = json.loads(re.search(r"{% schema %}(.*){% endschema %}", liquid, re.S).group(1))
    assert schema["target"] == "head"  # an app embed, not a section block
    assert {s["id"] for s in schema["settings"]} == {"touchpoint_url", "publishable_key"}
    assert "/t.js?pk={{ publishable_key | url_encode }}" in liquid
