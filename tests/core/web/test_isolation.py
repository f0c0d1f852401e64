"""No endpoint reads or changes another program's (or, in the portal, another partner's) data,
however its id was guessed.

The endpoints are enumerated from the Flask url_map, so a new one is covered automatically:
every rule with an id in its path is sent the ids of another program's objects (and for the
portal another partner's) by a signed-in user of this program, with an otherwise valid request;
the answer must be 404 (not 403: existence is not revealed), must not mention the other side's
data, and must change nothing in the database. Ids travelling in bodies and queries (the API's
`*_id` fields, found from the declared operations; the embedded Shopify app's forms) are probed
the same way. A rule whose path argument is not an id (a public link key, a static file name)
must be listed in NOT_IDS with the reason, so an unclassified new rule fails this test.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from itsdangerous import URLSafeTimedSerializer

from sqlmodel import select

from core.db import get_db
from core.models import Program
from core.sources import attach_source
from core.web.admin import INVITE_SALT
from core.web.openapi import OPERATIONS
from tests.core.test_journeys import click, sale, set_click_time
from tests.core.web.test_admin import csrf_token, login, make_user
from tests.factories import new_program
from tests.fakes import fake, sign
from tests.reliability import figures, snapshot  # noqa: F401 - figures is a fixture

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SHOP, APP_KEY, APP_SECRET = "mine.myshopify.com", "app-key", "app-secret-for-isolation-0123456789"

# Path arguments that are not ids of a program's rows, and why they need no probe here.
NOT_IDS = {
    "key": "/r/<key>: short-link keys are public by design (printed in every partner's links)",
    "filename": "/ui/static/<filename>: the same public stylesheet and script for everyone",
    "token": "/portal/login/<token>: a signed invitation, not a guessable id (probed forged)",
}
# Path arguments that are words, not ids: the value used while the id beside them is probed.
WORDS = {"platform": "fake", "decision": "release"}
AUDIENCES = (("/api/", "api"), ("/admin", "admin"), ("/portal", "portal"),
             ("/webhooks/", "webhook"), ("/shopify/app", "shopify"))
# Ids of a program's rows, by the name routes and API fields give them, and their model.
ID_TABLES = {"partner_id": "Partner", "conversion_id": "Conversion", "link_id": "Link",
             "source_id": "Source", "click_id": "Click", "reward_id": "Reward",
             "payout_id": "Payout", "endpoint_id": "WebhookEndpoint",
             "delivery_id": "OutgoingDelivery", "previous_click_id": "Click"}
ID_FIELDS = tuple(ID_TABLES)


@pytest.fixture
def connectors():
    from connectors.shopify import connector as shopify

    return (fake, shopify)


@pytest.fixture
def app(db_url, tmp_path, connectors):
    from core import make_app

    application = make_app({"database_url": db_url, "secret_key": "test-secret-key",
                            "base_url": "http://touchpoint.test", "var_dir": tmp_path,
                            "testing": True, "shopify_api_key": APP_KEY,
                            # Hundreds of refused requests from one address: the rate limits
                            # (tested in test_ratelimit) would answer 429 before the checks here.
                            "ratelimit_enabled": False,
                            "shopify_api_secret": APP_SECRET}, connectors)
    yield application
    application.extensions["touchpoint_db"].dispose()


@dataclass
class Side:
    """One program's objects, by kind."""

    api: Any
    ids: dict[str, str] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)  # strings that must never leak


def _side(app: Any, name: str, domain: str, partner: str, code: str, email: str) -> Side:
    api = new_program(app, name=name, domain=domain)
    side = Side(api)
    api.email = make_user(app, api.program_id, email)
    p = api.partner(partner.capitalize(), key=partner)
    api.reward(event="sale", value=10)
    link = api.ok("post", "/api/v1/links", {"partner_id": p["id"], "url": f"https://{domain}/p"}, 201)
    api.ok("post", "/api/v1/promo-codes", {"partner_id": p["id"], "code": code}, 201)
    src = api.ok("post", "/api/v1/sources", {"platform": "fake", "webhook_secret": f"{name}-whsec"}, 201)
    c = click(api, ref=partner)
    set_click_time(app, c, NOW - timedelta(hours=2))
    conv = sale(api, f"order-{partner}", 12345, NOW - timedelta(hours=1), customer=f"cust-{partner}",
                click_id=c)
    side.ids = {"partner_id": p["id"], "link_id": link["id"], "source_id": src["id"],
                "conversion_id": conv["id"], "click_id": c, "partner_key": partner,
                "link_key": link["key"], "code": code, "order_id": f"order-{partner}",
                "source_secret": f"{name}-whsec"}
    side.markers = [p["id"], f"{partner.capitalize()}", f"{partner}@partners.example",
                    link["id"], conv["id"], f"order-{partner}", src["id"], c, code]
    return side


def _paid_out_and_hooked(app: Any, side: Side) -> None:
    """The rest of what a program owns: a webhook endpoint with a delivery queued for it, and a
    payout of the approved commission; their ids join the side's (looked up by model, below)."""
    import core.models as models
    from core.jobs import approve_due

    api = side.api
    api.ok("post", "/api/v1/webhook-endpoints", {"url": "https://hooks.theirs.example/tp"}, 201)
    sale(api, "order-late", 2000, NOW - timedelta(minutes=5), customer="cust-late",
         ref=side.ids["partner_key"])
    with app.app_context():
        approve_due(NOW + timedelta(days=400))
    api.ok("post", "/api/v1/payouts", {}, 201)
    with app.app_context(), get_db().session() as s:
        for name, model in ID_TABLES.items():
            if name not in side.ids and hasattr(models, model):
                table = getattr(models, model)
                row = s.exec(select(table).where(table.program_id == api.program_id)).first()
                assert row is not None, f"make the other program own a {model} row"
                side.ids[name] = str(row.id)
                side.markers.append(str(row.id))


@pytest.fixture
def world(app):
    mine = _side(app, "Mine", "mine.example", "ann", "ANN10", "owner@mine.example")
    theirs = _side(app, "Theirs", "theirs.example", "zed", "ZEDSECRET", "owner@theirs.example")
    _paid_out_and_hooked(app, theirs)
    # A second partner of my own program, whose rows the portal must keep from Ann.
    bob = mine.api.partner("Bob", key="bob")
    bob_link = mine.api.ok("post", "/api/v1/links", {"partner_id": bob["id"],
                                                     "url": "https://mine.example/b"}, 201)
    bob_sale = sale(mine.api, "order-bob", 777, NOW - timedelta(minutes=30), customer="cust-bob",
                    ref="bob")
    mine.bob = {"partner_id": bob["id"], "link_id": bob_link["id"], "conversion_id": bob_sale["id"]}
    with app.app_context(), get_db().write() as s:  # my program is also a Shopify shop
        attach_source(s, s.get(Program, mine.api.program_id), "shopify", SHOP,
                      {"access_token": "shpat_x"}, APP_SECRET)
    return mine, theirs


# --- who is asking -------------------------------------------------------------------------------

def admin_client(app: Any, side: Side) -> Any:
    client = app.test_client()
    assert login(client, side.api.email).status_code == 302
    return client


def portal_client(app: Any, side: Side) -> Any:
    client = app.test_client()
    token = URLSafeTimedSerializer(app.secret_key, salt=INVITE_SALT).dumps(
        {"partner_id": side.ids["partner_id"], "program_id": side.api.program_id})
    assert client.get(f"/portal/login/{token}").status_code == 302
    return client


def session_token() -> str:
    now = int(time.time())
    dest = f"https://{SHOP}"
    return jwt.encode({"iss": f"{dest}/admin", "dest": dest, "aud": APP_KEY, "sub": "1",
                       "exp": now + 60, "nbf": now - 5, "iat": now, "jti": "j", "sid": "s"},
                      APP_SECRET, algorithm="HS256")


# --- the probes ----------------------------------------------------------------------------------

@dataclass
class Probe:
    rule: str
    method: str
    path: str
    who: str  # api | admin | portal | shopify | webhook
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None
    expect: tuple[int, ...] = (404,)


# Valid bodies for rules with an id in the path, so that only the id is wrong.
PATH_BODIES = {
    "api.patch_source": {"webhook_secret": "hijacked"},
    "outgoing_api.patch_endpoint": {"description": "hijacked"},
    "payouts_api.pay_payout": {"reference": "hijacked"},
    "payouts.pay": {"reference": "hijacked"},
    "admin.create_link": {"url": "https://mine.example/hijack"},
    "admin.create_code": {"code": "HIJACK"},
}


def path_probes(app: Any, mine: Side, theirs: Side) -> tuple[list[Probe], set[str]]:
    """One probe per (rule, method, foreign id) of every rule with an id in its path."""
    probes: list[Probe] = []
    covered: set[str] = set()
    for rule in app.url_map.iter_rules():
        args = set(rule.arguments)
        ids = args - set(NOT_IDS) - set(WORDS)
        unknown = ids - set(ID_FIELDS)
        assert not unknown, f"{rule.rule}: classify {unknown} in ID_FIELDS or NOT_IDS"
        if rule.endpoint == "portal.accept":
            forged = URLSafeTimedSerializer("not-the-secret", salt=INVITE_SALT).dumps(
                {"partner_id": theirs.ids["partner_id"], "program_id": theirs.api.program_id})
            probes.append(Probe(rule.rule, "GET", f"/portal/login/{forged}", "portal",
                                expect=(400,)))
            covered.add(rule.endpoint)
            continue
        if not ids:
            continue
        who = next(name for prefix, name in AUDIENCES if rule.rule.startswith(prefix))
        victims = [theirs.ids]
        if who == "portal":  # another partner of the same program, too
            victims.append(mine.bob)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for victim in victims:
                values = {a: victim[a] for a in ids}
                values.update({a: WORDS[a] for a in args & set(WORDS)})
                path = rule.rule
                for name, value in values.items():
                    path = path.replace(f"<{name}>", value)
                if who == "webhook":
                    # Signed with my source's secret, sent to their source's URL.
                    probes.append(Probe(rule.rule, method, path, who, expect=(401,)))
                else:
                    probes.append(Probe(rule.rule, method, path, who,
                                        body=PATH_BODIES.get(rule.endpoint)
                                        or _minimal_body(rule.rule, method)))
        covered.add(rule.endpoint)
    return probes, covered


def _minimal_body(rule: str, method: str) -> dict[str, Any] | None:
    """A body with the declared operation's required text fields filled, so a new operation is
    refused for its id and not for a missing field."""
    if method == "GET":
        return None
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
    op = next((o for o in OPERATIONS if (o.method, o.path) == (method, path)), None)
    if op is None or op.body is None:
        return {}
    return {n: "probe" for n, f in op.body.model_fields.items() if f.is_required()}


# Valid API requests with an id field; the probe replaces the id with the other program's.
# What a correct answer is: 404 for a setup operation naming a foreign row; for the track API a
# foreign click, ref or code is no evidence at all (the conversion stays unattributed).
API_REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/links"): {"body": {"partner_id": None, "url": "https://mine.example/x"}},
    ("POST", "/api/v1/promo-codes"): {"body": {"partner_id": None, "code": "HIJACK"}},
    ("GET", "/api/v1/conversions"): {"query": {"partner_id": None}},
    ("GET", "/api/v1/conversions.csv"): {"query": {"partner_id": None}},
    ("GET", "/api/v1/reports"): {"query": {"partner_id": None}},
    ("GET", "/api/v1/payouts"): {"query": {"partner_id": None}},
    ("GET", "/api/v1/payouts/export"): {"query": {"partner_id": None, "format": "paypal"}},
    ("POST", "/api/v1/payouts"): {"body": {"partner_id": None}},
    ("GET", "/api/v1/reviews"): {"query": {"partner_id": None}},
    ("GET", "/api/v1/webhook-deliveries"): {"query": {"endpoint_id": None}},
    ("POST", "/api/v1/track/click"): {"body": {"publishable_key": "MINE", "ref": "ann",
                                               "previous_click_id": None}, "accepted": True},
    ("POST", "/api/v1/track/lead"): {"body": {"customer_id": "new-lead", "click_id": None},
                                      "accepted": True},
    ("POST", "/api/v1/track/sale"): {"body": {"customer_id": "new-buyer", "order_id": "new-order",
                                              "amount": 5000, "currency": "USD", "click_id": None},
                                     "accepted": True},
}


# List filters that answer an empty list for a foreign id where the rest answer 404 (none today).
EMPTY_LISTS: set[tuple[str, str, str]] = set()
FOREIGN_FILTERS = {("GET", "/api/v1/webhook-deliveries", "endpoint_id"),
                   ("GET", "/api/v1/payouts", "partner_id"),
                   ("GET", "/api/v1/payouts/export", "partner_id")}


def body_probes(mine: Side, theirs: Side) -> list[Probe]:
    probes = []
    for op in OPERATIONS:
        fields = {}
        for model in (op.body, op.query):
            if model is not None:
                fields.update({n: f for n, f in model.model_fields.items() if n in ID_FIELDS})
        if not fields or "{" in op.path:
            continue
        spec = API_REQUESTS.get((op.method, op.path))
        assert spec is not None, f"{op.method} {op.path} takes {sorted(fields)}: add it to API_REQUESTS"
        for name in fields:
            where = "body" if "body" in spec else "query"
            request = {k: (theirs.ids[k] if v is None else mine.api.publishable_key if v == "MINE"
                           else v) for k, v in spec[where].items()}
            if name not in request:
                continue
            probes.append(Probe(op.path, op.method, op.path, "api",
                                body=request if where == "body" else None,
                                query=request if where == "query" else None,
                                expect=(200,) if spec.get("accepted") else
                                (200, 404) if (op.method, op.path, name) in EMPTY_LISTS else (404,)))
    return probes


def shopify_probes(theirs: Side) -> list[Probe]:
    """The embedded app's forms take the same ids as the API, with a session token."""
    pid = theirs.ids["partner_id"]
    return [Probe("/shopify/app/links", "POST", "/shopify/app/links", "shopify",
                  body={"partner_id": pid, "url": "https://mine.example/x"}),
            Probe("/shopify/app/promo-codes", "POST", "/shopify/app/promo-codes", "shopify",
                  body={"partner_id": pid, "code": "HIJACK"})]


def send(app: Any, probe: Probe, clients: dict[str, Any], mine: Side) -> Any:
    headers: dict[str, str] = {}
    client = clients[probe.who]
    if probe.who == "api":
        headers["Authorization"] = f"Bearer {mine.api.key}"
    if probe.who == "shopify":
        headers["Authorization"] = f"Bearer {session_token()}"
    if probe.who in ("admin", "portal") and probe.method == "POST":
        page = "/admin/partners" if probe.who == "admin" else "/portal/"
        data = {**(probe.body or {}), "csrf_token": csrf_token(client, page)}
        return client.post(probe.path, data=data)
    if probe.who == "webhook":
        raw = b'{"id": "iso-1", "topic": "sale", "order": "x", "amount": 1, "at": "2026-01-01T00:00:00+00:00"}'
        headers["X-Fake-Signature"] = sign(mine.ids["source_secret"], raw)
        return client.post(probe.path, data=raw, headers=headers)
    return client.open(probe.path, method=probe.method, json=probe.body,
                       query_string=probe.query, headers=headers)


def test_no_endpoint_reaches_another_programs_or_partners_data(app, world, figures):  # noqa: F811
    mine, theirs = world
    clients = {"api": app.test_client(), "admin": admin_client(app, mine),
               "portal": portal_client(app, mine), "shopify": app.test_client(),
               "webhook": app.test_client()}
    probes, covered = path_probes(app, mine, theirs)
    probes += body_probes(mine, theirs) + shopify_probes(theirs)
    before = snapshot(app)
    for probe in probes:
        resp = send(app, probe, clients, mine)
        where = f"{probe.method} {probe.path} as {probe.who}"
        assert resp.status_code in probe.expect, (where, resp.status_code, resp.get_data(as_text=True)[:300])
        page = resp.get_data(as_text=True)
        leaked = [m for m in theirs.markers + ([mine.bob["conversion_id"], "order-bob"]
                                               if probe.who == "portal" else []) if m in page]
        assert not leaked, (where, leaked)
        if probe.method == "GET" and resp.status_code == 200 and resp.is_json \
                and "data" in (resp.get_json() or {}):
            assert resp.get_json()["data"] == [], where  # a filter by a foreign id finds nothing
        if resp.status_code >= 400:
            assert snapshot(app) == before, f"{where} was refused but changed the database"
        else:
            # Accepted track calls record my own conversion; theirs is untouched, and mine is
            # not credited to their partner.
            after = snapshot(app)
            for table, rows in after.items():
                foreign = [r for r in rows if theirs.api.program_id in r]
                assert foreign == [r for r in before[table] if theirs.api.program_id in r], (where, table)
            foreign_ids = [theirs.ids[k] for k in ID_TABLES if k in theirs.ids]
            for table, rows in after.items():
                for row in rows:
                    if mine.api.program_id in row:
                        assert not [i for i in foreign_ids if i in row], (where, table, row)
            before = after
        figures["probes"] += 1
        figures[f"probes_{probe.who}"] += 1
    figures["endpoints_with_ids"] += len(covered) + len({(p.method, p.rule) for p in probes
                                                         if p.who in ("api", "shopify")
                                                         and "<" not in p.rule})
    # Everything with an id in its path was probed (a new one joins by itself).
    with_ids = {r.endpoint for r in app.url_map.iter_rules()
                if set(r.arguments) - set(NOT_IDS) - set(WORDS) or r.endpoint == "portal.accept"}
    assert with_ids <= covered, with_ids - covered


def test_the_ids_of_my_own_program_do_work(app, world):
    """The probes above would pass vacuously if the requests were malformed: the same requests
    with my own ids succeed."""
    mine, _ = world
    api = mine.api
    assert api.get(f"/api/v1/partners/{mine.ids['partner_id']}").status_code == 200
    assert api.get(f"/api/v1/conversions/{mine.ids['conversion_id']}").status_code == 200
    assert api.patch(f"/api/v1/sources/{mine.ids['source_id']}",
                     json={"webhook_secret": "rotated"}).status_code == 200
    assert api.post("/api/v1/links", json={"partner_id": mine.ids["partner_id"],
                                           "url": "https://mine.example/x"}).status_code == 201
    admin = admin_client(app, mine)
    assert admin.get(f"/admin/partners/{mine.ids['partner_id']}").status_code == 200
    resp = admin.post(f"/admin/partners/{mine.ids['partner_id']}/codes",
                      data={"code": "MINE2", "csrf_token": csrf_token(admin, "/admin/partners")})
    assert resp.status_code == 302
    portal = portal_client(app, mine)
    assert portal.get(f"/portal/conversions/{mine.ids['conversion_id']}").status_code == 200
    assert portal.get(f"/portal/links/{mine.ids['link_id']}").status_code == 200
    resp = app.test_client().post("/shopify/app/promo-codes",
                                  json={"partner_id": mine.ids["partner_id"], "code": "MINE3"},
                                  headers={"Authorization": f"Bearer {session_token()}"})
    assert resp.status_code == 201
    html = admin.get(f"/admin/partners/{mine.ids['partner_id']}").get_data(as_text=True)
    assert re.search(r"MINE2", html) and "MINE3" in html


@pytest.mark.parametrize("method,path,name", sorted(FOREIGN_FILTERS))
def test_a_foreign_filter_is_a_404(app, world, method, path, name):
    mine, theirs = world
    query = {name: theirs.ids[name], **({"format": "paypal"} if path.endswith("/export") else {})}
    assert mine.api.get(path, query_string=query).status_code == 404
