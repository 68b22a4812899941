"""Every bad send request gets a clear JSON error, and nothing is sent or stored, not even for its good recipients."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import CONSUMER, alone, assert_refused, both_databases, start_up_refusal
from smsconnector.testing.entrypoints import Refusal as Case

from .automation_support import AUTH, TABLE, TOKEN

GOOD: dict[str, Any] = {"from": BRAND_NUMBER, "campaign": "reminders", "message_class": "informational",
                        "reply_policy": "agent", "skill": "scheduling", "text": "See you tomorrow at 10:00.",
                        "recipients": [{"to": CONSUMER}]}


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


def recipients(*numbers: str) -> dict[str, Any]:
    return {**GOOD, "recipients": [{"to": n} for n in numbers]}


CASES = [
    Case("no token", 401, "unauthenticated", "Authorization: Bearer", headers={}),
    Case("wrong token", 401, "unauthenticated", "unknown token", headers={"Authorization": "Bearer nope"}),
    Case("malformed JSON", 400, "malformed", "body is not JSON", raw=b'{"from": '),
    Case("not UTF-8", 400, "malformed", "body is not JSON", raw=b'{"from": "\xff"}'),
    Case("JSON that is not an object", 400, "malformed", "expected a JSON object", body=["x"]),
    Case("body too large", 413, "too_large", "exceeds the limit of 4096 bytes",
         body={**GOOD, "text": "x" * 1600, "recipients": [{"to": CONSUMER, "text": "y" * 1600},
                                                          {"to": "+14155550124", "text": "z" * 1600}]}),
    Case("campaign missing", 422, "invalid_request", "campaign: Field required", body=without("campaign")),
    Case("unknown message class", 422, "invalid_request", "message_class: Input should be 'informational', "
         "'transactional' or 'marketing'", body={**GOOD, "message_class": "urgent"}),
    Case("compliance class not for automation", 422, "invalid_request", "message_class: Input should be",
         body={**GOOD, "message_class": "compliance"}),
    Case("unknown reply policy", 422, "invalid_request", "reply_policy: Input should be 'agent', 'auto_reply' or "
         "'ignore'", body={**GOOD, "reply_policy": "forward"}),
    Case("no recipients", 422, "invalid_request", "recipients: List should have at least 1 item",
         body={**GOOD, "recipients": []}),
    Case("recipient without a number", 422, "invalid_request", "recipients.0.to: Field required",
         body={**GOOD, "recipients": [{"text": "hi"}]}),
    Case("text too long", 422, "invalid_request", "text: String should have at most 1600 characters",
         body={**GOOD, "text": "x" * 1601}),
    Case("unknown brand number", 422, "unknown_brand_number", "from: +14155550100 is not one of",
         body={**GOOD, "from": "+14155550100"}),
    Case("agent policy without a skill", 422, "invalid_request", "skill: required when reply_policy is 'agent'",
         body=without("skill")),
    Case("skill with a policy that has none", 422, "invalid_request", "skill: only replies under reply_policy",
         body={**GOOD, "reply_policy": "ignore"}),
    Case("unknown skill", 422, "unknown_skill", "skill: 'astrology' is not a known skill (known: scheduling, "
         "support)", body={**GOOD, "skill": "astrology"}),
    Case("too many recipients", 422, "too_many_recipients", "recipients: 4 in one request; the limit is 3",
         body=recipients(CONSUMER, "+14155550124", "+14155550125", "+14155550126")),
    Case("a landline among good recipients", 422, "landline", "recipients.1.to: +442079460000 is a landline",
         body=recipients(CONSUMER, "+44 20 7946 0000", "+14155550124")),
    Case("an invalid number among good recipients", 422, "invalid_number",
         "recipients.2.to: '+15555550123' is not a valid phone number",
         body=recipients(CONSUMER, "+14155550124", "+15555550123")),
    Case("not a number", 422, "invalid_number", "recipients.0.to: 'tomorrow' is not a phone number",
         body=recipients("tomorrow")),
    Case("a toll-free recipient", 422, "not_mobile", "recipients.0.to: +18005550199 is a toll-free number",
         body=recipients("+18005550199")),
    Case("the same consumer twice", 422, "duplicate_recipient", "recipients.1.to: +14155550123 is already "
         "recipient 0", body=recipients(CONSUMER, "(415) 555-0123")),
    Case("a recipient with no text", 422, "invalid_request", "recipients.0.text: no text for this recipient and "
         "none for the request", body=without("text")),
]


@both_databases
def test_bad_requests_are_refused_with_the_reason_and_change_nothing(make_app, live_server, db):
    app = make_app(plugins={"disabled": alone("automation"), "automation": {
        "token": TOKEN, "skills": ["scheduling"], "max_recipients": 3, "max_body_bytes": 4096}})
    server = live_server(app)

    assert_refused(server, db, "/api/automation/messages", CASES, body=GOOD, headers=AUTH, tables=[TABLE])


def test_without_a_configured_token_the_endpoint_refuses_everyone(make_app, live_server, db):
    server = live_server(make_app(plugins={"disabled": alone("automation")}))

    response = httpx.post(f"{server.url}/api/automation/messages", json=GOOD, headers=AUTH)

    assert (response.status_code, response.json()) == (401, {
        "error": "unauthenticated", "detail": "no token is configured for this endpoint: set plugins.automation.token"})
    assert db.count("automation_sends") == 0


@pytest.mark.parametrize(("settings", "key", "reason"), [
    ({"auto_replies": {"sale": ""}}, "plugins.automation.auto_replies", "the auto-reply for 'sale' is empty"),
    ({"auto_reply": "x" * 1601}, "plugins.automation.auto_reply", "at most 1600 characters"),
    ({"reply_window_minutes": 0}, "plugins.automation.reply_window_minutes", "greater than or equal to 1"),
    ({"max_recipients": 0}, "plugins.automation.max_recipients", "greater than or equal to 1"),
    ({"default_region": "ZZ"}, "plugins.automation.default_region", "'ZZ' is not a region"),
    ({"tokne": "x"}, "plugins.automation.tokne", "Extra inputs are not permitted"),
])
def test_a_wrong_setting_stops_start_up_naming_its_key(make_app, settings, key, reason):
    refused = start_up_refusal(make_app, "automation", settings)

    assert refused.key == key
    assert reason in refused.reason
