"""Forged, tampered, stale, cross-source and replayed webhook signatures, for all four platforms,
through the HTTP endpoints on both databases; and forged Shopify OAuth callbacks and session
tokens against every route of the embedded app.

A refused delivery is a 401 and changes nothing (every table compared). A replayed delivery is a
200 marked duplicate and changes nothing either: Stripe and Paddle sign a timestamp, so a replay
older than five minutes is refused outright; WooCommerce and Shopify sign no time, so a replay is
recognised by its delivery id instead.
"""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import shopify

from tests.connectors.deliveries import BY_ID, PLATFORMS, SHOP, Platform, connect
from tests.reliability import figures, snapshot  # noqa: F401 - figures is a fixture

SECRET = "the-right-secret-0123456789"
OTHER = "another-sources-secret-987654"
APP_KEY, APP_SECRET = "app-key", "app-secret-for-signatures-0123456789"


@pytest.fixture
def app(db_url, tmp_path):
    from app import CONNECTORS
    from core import make_app

    application = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                            "base_url": "https://tp.example", "var_dir": tmp_path,
                            "testing": True, "shopify_api_key": APP_KEY,
                            # Hundreds of refused requests from one address: the rate limits
                            # (tested in test_ratelimit) would answer 429 before the checks here.
                            "ratelimit_enabled": False,
                            "shopify_api_secret": APP_SECRET}, CONNECTORS)
    yield application
    application.extensions["touchpoint_db"].dispose()


@pytest.fixture(params=PLATFORMS, ids=lambda p: p.id)
def platform(request) -> Platform:
    return request.param


def _post(client, platform: Platform, source_id: str, body: bytes, headers: dict[str, str]):
    return client.post(platform.url(source_id), data=body, headers=headers)


def test_bad_signatures_are_refused_and_change_nothing(app, platform, figures):  # noqa: F811
    _, source_id = connect(app, platform, SECRET)
    client = app.test_client()
    now = int(time.time())
    for n, (topic, build) in enumerate(platform.samples):
        payload = build(f"sig{n}")
        body, good = platform.delivery(topic, payload, f"sig{n}", SECRET)
        attempts = {
            "forged": platform.delivery(topic, payload, f"sig{n}", OTHER)[1],
            "tampered": good,  # signed for `body`, sent with one byte more
            "missing": {k: v for k, v in good.items() if "sig" not in k.lower()
                        and "hmac" not in k.lower()},
            "empty": {k: ("" if "sig" in k.lower() or "hmac" in k.lower() else v)
                      for k, v in good.items()},
            "garbage": {k: ("t=x,v1=zz;ts=;h1=" if "sig" in k.lower() or "hmac" in k.lower() else v)
                        for k, v in good.items()},
        }
        if platform.timestamped:
            attempts["stale"] = platform.delivery(topic, payload, f"sig{n}", SECRET, at=now - 3600)[1]
            attempts["future"] = platform.delivery(topic, payload, f"sig{n}", SECRET, at=now + 3600)[1]
        before = snapshot(app)
        for name, headers in attempts.items():
            sent = body + b" " if name == "tampered" else body
            resp = _post(client, platform, source_id, sent, headers)
            assert resp.status_code == 401, (topic, name, resp.get_json())
            assert resp.get_json()["error"]["code"] == "invalid_signature"
            figures[f"refused_{name}"] += 1
            figures["refused"] += 1
        assert snapshot(app) == before, topic
        # The same request, correctly signed, is accepted: the refusals were the signatures'.
        assert _post(client, platform, source_id, body, good).status_code == 200, topic


def test_a_delivery_signed_for_another_source_is_refused(app, platform, figures):  # noqa: F811
    """Their source's secret does not open my source's URL (nor the other way round)."""
    _, mine = connect(app, platform, SECRET, name="Mine")
    other_account = "other.myshopify.com" if platform.id == "shopify" else "https://other.example"
    _, theirs = connect(app, platform, OTHER, name="Theirs",
                        account=other_account if platform.account else None)
    client = app.test_client()
    topic, build = platform.samples[0]
    body, headers = platform.delivery(topic, build("cross"), "cross", OTHER)
    before = snapshot(app)
    if platform.id == "shopify":  # one URL; the shop header names the source
        resp = client.post(platform.url(mine), data=body, headers=headers)  # names my shop
    else:
        resp = _post(client, platform, mine, body, headers)
    assert resp.status_code == 401
    assert snapshot(app) == before
    figures["refused_cross_source"] += 1


def test_replayed_deliveries_change_nothing(app, platform, figures):  # noqa: F811
    _, source_id = connect(app, platform, SECRET)
    client = app.test_client()
    sent = []
    for n, (topic, build) in enumerate(platform.samples):
        body, headers = platform.delivery(topic, build(f"rep{n}"), f"rep{n}", SECRET)
        resp = _post(client, platform, source_id, body, headers)
        assert resp.status_code == 200 and resp.get_json()["duplicate"] is False, resp.get_json()
        sent.append((body, headers))
    before = snapshot(app)
    for body, headers in sent * 2:
        resp = _post(client, platform, source_id, body, headers)
        assert resp.status_code == 200 and resp.get_json()["duplicate"] is True
        figures["replayed"] += 1
    assert snapshot(app) == before
    if platform.timestamped:
        # Captured and replayed later: the signed time is then stale, refused before the inbox.
        body, _ = sent[0]
        topic, build = platform.samples[0]
        _, old = platform.delivery(topic, body, "rep0", SECRET, at=int(time.time()) - 3600)
        assert _post(client, platform, source_id, body, old).status_code == 401
        figures["replayed_stale"] += 1


# --- the Shopify app: OAuth callback HMACs and session tokens ---------------------------------

def _installed(app) -> None:
    connect(app, BY_ID["shopify"], APP_SECRET)  # the shop has installed the app


def _signed_callback(state: str, secret: str = APP_SECRET, **extra: str) -> dict[str, str]:
    params = {"code": "c0de", "shop": SHOP, "state": state, "timestamp": str(int(time.time())),
              **extra}
    shopify.Session.setup(api_key=APP_KEY, secret=secret)
    try:
        params["hmac"] = shopify.Session.calculate_hmac(params)
    finally:
        shopify.Session.setup(api_key=None, secret=None)
    return params


def test_forged_oauth_callbacks_are_refused(app, figures):  # noqa: F811
    client = app.test_client()
    resp = client.get(f"/shopify/install?shop={SHOP}")
    state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
    before = snapshot(app)
    forged = {
        "wrong secret": _signed_callback(state, secret="not-the-app-secret"),
        "no hmac": {k: v for k, v in _signed_callback(state).items() if k != "hmac"},
        "changed after signing": {**_signed_callback(state), "code": "another-code"},
        "another shop": {**_signed_callback(state), "shop": "victim.myshopify.com"},
        "stale": _signed_callback(state, timestamp=str(int(time.time()) - 86_400)),
        "wrong state": _signed_callback("guessed-state"),
    }
    for name, params in forged.items():
        resp = client.get("/shopify/callback", query_string=params)
        assert resp.status_code == 401, (name, resp.get_json())
        figures["oauth_refused"] += 1
    # A correctly signed callback from a browser without the state cookie (CSRF, or a replay).
    stranger = app.test_client()
    assert stranger.get("/shopify/callback", query_string=_signed_callback(state)).status_code == 401
    figures["oauth_refused"] += 1
    assert snapshot(app) == before


def _token(secret: str = APP_SECRET, aud: str = APP_KEY, dest: str = f"https://{SHOP}",
           exp_in: int = 60, algorithm: str = "HS256", **extra) -> str:
    now = int(time.time())
    claims = {"iss": f"{dest}/admin", "dest": dest, "aud": aud, "sub": "1", "exp": now + exp_in,
              "nbf": now - 5, "iat": now - 5, "jti": "j", "sid": "s", **extra}
    return jwt.encode(claims, secret if algorithm != "none" else None, algorithm=algorithm)


APP_ROUTES = (("GET", "/shopify/app/data", None), ("GET", "/shopify/app/setup", None),
              ("POST", "/shopify/app/partners", {"name": "Eve", "email": "eve@evil.example"}),
              ("POST", "/shopify/app/links", {"partner_id": "x", "url": "https://x.example"}),
              ("POST", "/shopify/app/promo-codes", {"partner_id": "x", "code": "EVE"}),
              ("POST", "/shopify/app/rewards", {"type": "percent", "value": 90}),
              ("PATCH", "/shopify/app/settings", {"hold_days": 0}))


def test_forged_session_tokens_are_refused_on_every_app_route(app, figures):  # noqa: F811
    _installed(app)
    client = app.test_client()
    forged = {
        "wrong secret": _token(secret="not-the-app-secret-not-the-app-secret"),
        "another app": _token(aud="another-app"),
        "expired": _token(exp_in=-120),
        "not yet valid": _token(nbf=int(time.time()) + 600),
        "alg none": _token(algorithm="none"),
        "another shop's token for mine": _token(dest="https://victim.myshopify.com",
                                                 iss=f"https://{SHOP}/admin"),
        "garbage": "a.b.c",
        "empty": "",
    }
    rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/shopify/app/")}
    assert rules == {path for _, path, _ in APP_ROUTES}, "a new embedded route: add it to APP_ROUTES"
    before = snapshot(app)
    for method, path, body in APP_ROUTES:
        for name, token in forged.items():
            resp = client.open(path, method=method, json=body,
                               headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 401, (path, name, resp.status_code)
            figures["session_tokens_refused"] += 1
        assert client.open(path, method=method, json=body).status_code == 401
    assert snapshot(app) == before
    # The real token works, so the refusals above were the tokens'.
    ok = client.get("/shopify/app/data", headers={"Authorization": f"Bearer {_token()}"})
    assert ok.status_code == 200


def test_every_registered_connector_is_covered():
    """A new connector joins these checks (and test_mutations) by adding its samples and signer
    to tests/connectors/deliveries.py."""
    from app import CONNECTORS

    assert {p.id for p in PLATFORMS} == {c.id for c in CONNECTORS}
