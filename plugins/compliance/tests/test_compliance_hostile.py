"""Hostile bodies at the compliance plugin's endpoints (consent, opt-out, preview): answered 2xx or 4xx, never 5xx,
and a refusal leaves the database -- the ledger included -- exactly as it was, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.hostile import assert_kept_its_promise, json_bodies

from .compliance_helpers import ADMIN_TOKEN, AGENT_TOKEN, CONSUMER

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
PLUGIN_TABLES = ("compliance_ledger", "compliance_sends")
#: each endpoint, whose token, and a valid body to break
ENDPOINTS = {
    "consent": ("/api/compliance/consent", ADMIN_TOKEN, {
        "consumer": CONSUMER, "brand_number": BRAND_NUMBER, "action": "consent", "consent_class": "marketing",
        "method": "web_form", "source": "https://acme.example/join", "consumer_action": "ticked the box",
        "disclosure_text": "Marketing texts from Acme. Reply STOP to opt out.", "campaign": "summer",
        "occurred_at": "2026-05-01T14:00:00Z"}),
    "opt-out": ("/api/compliance/opt-out", AGENT_TOKEN, {"consumer": CONSUMER, "brand_number": BRAND_NUMBER,
                                                         "method": "voice", "source": "asked on the phone"}),
    "preview": ("/api/compliance/preview", AGENT_TOKEN, {"to": CONSUMER, "from": BRAND_NUMBER, "text": "Hello",
                                                         "message_class": "marketing"}),
}


@pytest.fixture
def server(make_app, live_server, make_agent):
    app = make_app(api={"admin_tokens": [ADMIN_TOKEN]})
    make_agent()
    return live_server(app)


def _post(server, path: str, token: str, raw: bytes) -> httpx.Response:
    return httpx.post(server.url + path, content=raw, headers={"authorization": f"Bearer {token}",
                                                               "content-type": "application/json"})


@both_databases
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize(("raw", "detail"), [
    pytest.param(b"[" * 20_000 + b"]" * 20_000, "nests deeper than 32 levels", id="deep nesting"),
    pytest.param(b'{"source": "a\\u0000b"}', "body.source: U+0000 (NUL)", id="NUL"),
    pytest.param(b'{"source": "\\udfff"}', "body.source: a lone surrogate", id="lone surrogate"),
])
def test_what_no_database_stores_is_refused_with_400_and_stores_nothing(server, db, endpoint, raw, detail):
    path, token, _ = ENDPOINTS[endpoint]
    before = db.contents(*PLUGIN_TABLES)

    response = _post(server, path, token, raw)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed" and detail in response.json()["detail"]
    assert db.contents(*PLUGIN_TABLES) == before


@both_databases
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_bodies_get_2xx_or_4xx_and_refusals_store_nothing(server, db, endpoint, data):
    path, token, valid = ENDPOINTS[endpoint]
    raw = data.draw(json_bodies(valid))
    before = db.contents(*PLUGIN_TABLES)

    response = _post(server, path, token, raw)

    assert_kept_its_promise(response.status_code, before, db, *PLUGIN_TABLES)
    if response.status_code < 300 and endpoint != "preview":
        assert json.loads(response.content)["consumer_number"]  # recorded, and said so
