"""Every bad deflection request gets a clear JSON error, and nothing is sent or stored."""

from __future__ import annotations

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import Refusal as Case
from smsconnector.testing.entrypoints import (
    alone,
    assert_refused,
    both_databases,
    snapshot,
    start_up_refusal,
    text_brand,
)

from .ivr_support import AUTH, CALLER, TABLE, TOKEN

GOOD = {"caller": CALLER, "brand_number": BRAND_NUMBER, "skill": "support", "call_id": "CA-1"}

CASES = [
    Case("no token", 401, "unauthenticated", "Authorization: Bearer", headers={}),
    Case("wrong token", 401, "unauthenticated", "unknown token", headers={"Authorization": "Bearer nope"}),
    Case("basic auth", 401, "unauthenticated", "Authorization: Bearer", headers={"Authorization": "Basic eDp5"}),
    Case("malformed JSON", 400, "malformed", "body is not JSON", raw=b'{"caller": "+1415'),
    Case("JSON that is not an object", 400, "malformed", "expected a JSON object", body=[GOOD]),
    Case("caller missing", 422, "invalid_request", "caller: Field required",
         body={k: v for k, v in GOOD.items() if k != "caller"}),
    Case("unknown field", 422, "invalid_request", "text: Extra inputs are not permitted", body={**GOOD, "text": "x"}),
    Case("caller not text", 422, "invalid_request", "caller: Input should be a valid string",
         body={**GOOD, "caller": 14155550123}),
    Case("caller not a number", 422, "invalid_number", "caller: 'call me' is not a phone number",
         body={**GOOD, "caller": "call me"}),
    Case("caller not a valid number", 422, "invalid_number", "caller: '+15555550123' is not a valid phone number",
         body={**GOOD, "caller": "+15555550123"}),
    Case("caller on a UK landline", 422, "landline", "caller: +442079460000 is a landline",
         body={**GOOD, "caller": "+44 20 7946 0000"}),
    Case("caller on a French landline", 422, "landline", "caller: +33123456789 is a landline",
         body={**GOOD, "caller": "+33 1 23 45 67 89"}),
    Case("caller on a toll-free number", 422, "not_mobile", "+18005550199 is a toll-free number",
         body={**GOOD, "caller": "+1 800 555 0199"}),
    Case("unknown brand number", 422, "unknown_brand_number", "brand_number: +14155550100 is not one of",
         body={**GOOD, "brand_number": "+14155550100"}),
    Case("brand number that is no number", 422, "unknown_brand_number", "brand_number: main line is not one of",
         body={**GOOD, "brand_number": "main line"}),
    Case("unknown skill", 422, "unknown_skill", "skill: 'astrology' is not a known skill (known: billing, support)",
         body={**GOOD, "skill": "astrology"}),
    Case("menu path too long", 422, "invalid_request", "menu_path: List should have at most 20 items",
         body={**GOOD, "menu_path": ["1"] * 21}),
]


@both_databases
def test_bad_requests_are_refused_with_the_reason_and_change_nothing(make_app, live_server, db):
    app = make_app(plugins={"disabled": alone("ivr"), "ivr": {"token": TOKEN, "skills": ["billing"]}})
    server = live_server(app)

    assert_refused(server, db, "/api/ivr/deflections", CASES, body=GOOD, headers=AUTH, tables=[TABLE])


def test_without_a_configured_token_the_endpoint_refuses_everyone(make_app, live_server, db):
    app = make_app(plugins={"disabled": alone("ivr")})
    server = live_server(app)

    response = httpx.post(f"{server.url}/api/ivr/deflections", json=GOOD, headers={"Authorization": "Bearer anything"})

    assert (response.status_code, response.json()) == (401, {
        "error": "unauthenticated", "detail": "no token is configured for this endpoint: set plugins.ivr.token"})
    assert db.count("ivr_deflections") == 0


@both_databases
def test_a_caller_already_talking_to_an_agent_is_not_offered_a_second_conversation(make_app, live_server, db):
    app = make_app(plugins={"disabled": alone("ivr"), "ivr": {"token": TOKEN}})
    server = live_server(app)
    text_brand(server.url, "sim-1", "Where is my parcel?", consumer=CALLER)
    before = snapshot(db, TABLE)

    response = httpx.post(f"{server.url}/api/ivr/deflections", json=GOOD, headers=AUTH)

    assert response.status_code == 409
    assert response.json() == {"error": "conflict", "detail": f"{CALLER} already has an open conversation (1) with "
                                                              f"{BRAND_NUMBER}, queued for an agent: continue it there"}
    assert snapshot(db, TABLE) == before
    assert app.plugin("simulator").sent == []


@pytest.mark.parametrize(("settings", "key", "reason"), [
    ({"templates": {"billing": " "}}, "plugins.ivr.templates", "the template for 'billing' is empty"),
    ({"templates": {"billing": "x" * 1601}}, "plugins.ivr.templates", "the limit is 1600"),
    ({"expires_after_seconds": 0}, "plugins.ivr.expires_after_seconds", "greater than or equal to 1"),
    ({"default_region": "XX"}, "plugins.ivr.default_region", "'XX' is not a region"),
    ({"tokn": "typo"}, "plugins.ivr.tokn", "Extra inputs are not permitted"),
])
def test_a_wrong_setting_stops_start_up_naming_its_key(make_app, settings, key, reason):
    refused = start_up_refusal(make_app, "ivr", settings)

    assert refused.key == key
    assert reason in refused.reason
