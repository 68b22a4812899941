"""Hostile Twilio webhooks, signed with the account's token so that they pass the signature and reach the
normalizer: what no database holds is mended (a consumer's text) or refused with 400 (an id, a count), the same
on SQLite and PostgreSQL. That any body is answered 2xx or 4xx, a refusal storing nothing, is the contract suite's
to show (test_twilio_contract.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .twilio_support import INBOUND, STATUS, payload, post_signed

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def _edited(name: str, **changes: str) -> bytes:
    """A recorded payload with fields replaced (raw, already percent-encoded values)."""
    pairs = [pair for pair in payload(name).split(b"&") if pair.split(b"=")[0].decode() not in changes]
    return b"&".join(pairs + [f"{key}={value}".encode() for key, value in changes.items()])


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@both_databases
def test_a_nul_in_the_body_and_the_details_is_mended_and_the_message_routed(twilio_app, serve, db):
    server = serve(twilio_app())

    response = post_signed(server.url, INBOUND, _edited("sms_with_geo", Body="a%00b", FromCity="SAN%00FRANCISCO"))

    assert response.status_code == 200, response.text
    [message] = db.rows("SELECT body, details, conversation_id FROM messages")
    assert message["body"] == "a\ufffdb" and _json(message["details"])["FromCity"] == "SAN\ufffdFRANCISCO"
    assert message["conversation_id"] is not None
    assert db.count("inbox", "processed_at IS NULL OR error IS NOT NULL") == 0


@both_databases
@pytest.mark.parametrize(("path", "body", "detail"), [
    pytest.param(INBOUND, _edited("sms_with_geo", MessageSid="SM" + "a" * 199), "longer than 100 characters",
                 id="MessageSid past its column"),
    pytest.param(INBOUND, _edited("sms_with_geo", NumSegments="%C2%B2"), "NumSegments is not a count",
                 id="NumSegments superscript two"),
    pytest.param(INBOUND, _edited("sms_with_geo", NumSegments="1" + "0" * 20), "NumSegments is not a count",
                 id="NumSegments 10**20"),
    pytest.param(INBOUND, _edited("sms_with_geo", NumSegments="256"), "the segment count must be a whole number",
                 id="NumSegments past 255"),
    pytest.param(INBOUND, _edited("sms_with_geo", NumMedia="9" * 5000), "NumMedia is not a count",
                 id="NumMedia of 5000 digits"),
    pytest.param(STATUS, _edited("status_failed", ErrorCode="3" * 40), "the error code is longer than 32",
                 id="ErrorCode past its column"),
])
def test_what_no_column_holds_is_refused_with_400_and_stores_nothing(twilio_app, serve, db, path, body, detail):
    server = serve(twilio_app())
    before = db.contents()

    response = post_signed(server.url, path, body)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed" and detail in response.json()["detail"]
    assert db.contents() == before
