"""Hostile send requests: answered 2xx or 4xx, never 5xx, and a refusal leaves the database exactly as it was,
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import CONSUMER, alone, both_databases
from smsconnector.testing.hostile import assert_kept_its_promise, json_bodies

from .automation_support import AUTH, TABLE, TOKEN

GOOD: dict[str, Any] = {"from": BRAND_NUMBER, "campaign": "reminders", "message_class": "informational",
                        "reply_policy": "agent", "skill": "scheduling", "text": "See you tomorrow at 10:00.",
                        "recipients": [{"to": CONSUMER, "text": "See you at 10:00.", "context": {"appointment": 42}}]}
PLUGIN_TABLES = (TABLE,)


@pytest.fixture
def server(make_app, live_server):
    return live_server(make_app(plugins={"disabled": alone("automation"), "automation": {
        "token": TOKEN, "skills": ["scheduling"], "max_recipients": 3}}, sender={"enabled": False}))


def _send(server: Any, raw: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/api/automation/messages", content=raw,
                      headers={**AUTH, "content-type": "application/json"})


@both_databases
@pytest.mark.parametrize(("raw", "detail"), [
    pytest.param(b"[" * 20_000 + b"]" * 20_000, "nests deeper than 32 levels", id="deep nesting"),
    pytest.param(b'{"text": "a\\u0000b"}', "body.text: U+0000 (NUL)", id="NUL"),
    pytest.param(b'{"text": "\\ud800"}', "body.text: a lone surrogate", id="lone surrogate"),
    pytest.param(b'{"recipients": [{"context": {"n": 100000000000000000000}}]}', "an integer beyond 64 bits",
                 id="huge number in a context"),
])
def test_what_no_database_stores_is_refused_with_400_and_stores_nothing(server, db, raw, detail):
    before = db.contents(*PLUGIN_TABLES)

    response = _send(server, raw)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed" and detail in response.json()["detail"]
    assert db.contents(*PLUGIN_TABLES) == before


@both_databases
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_send_requests_get_2xx_or_4xx_and_refusals_store_nothing(server, db, data):
    raw = data.draw(json_bodies(GOOD))
    before = db.contents(*PLUGIN_TABLES)

    response = _send(server, raw)

    assert_kept_its_promise(response.status_code, before, db, *PLUGIN_TABLES)
