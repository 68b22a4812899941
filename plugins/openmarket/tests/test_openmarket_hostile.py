"""Hostile OpenMarket webhooks with valid Basic credentials, so that they reach the normalizer: numbers no column
holds and lone surrogates are refused with 400, a NUL in the text is mended, the same on SQLite and PostgreSQL. That
any body is answered 2xx or 4xx, a refusal storing nothing, is the contract suite's to show
(test_openmarket_contract.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsconnector.errors import Malformed
from smsconnector_openmarket.normalize import inbound_message, status_update

PAYLOADS = Path(__file__).parent / "payloads"
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def _payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


def _mo(**message: Any) -> dict[str, Any]:
    body = _payload("mo_text.json")
    body["mobileOriginate"]["message"].update(message)
    return body


def _receipt(**fields: Any) -> dict[str, Any]:
    body = _payload("receipt_part_delivered.json")
    body["deliveryReceipt"].update(fields)
    return body


def _post(url: str, path: str, raw: bytes, fake: Any) -> httpx.Response:
    return httpx.post(f"{url}/webhooks/openmarket/{path}", content=raw, auth=fake.inbound_auth,
                      headers={"content-type": "application/json"})


@pytest.mark.parametrize(("read", "event", "detail"), [
    pytest.param(status_update, {"ticketId": "T", "response": {"code": float("inf")}}, "must be a whole number",
                 id="code 1e999"),
    pytest.param(status_update, {"ticketId": "T", "response": {"code": 4}, "segmentNumber": float("inf"),
                                 "totalSegments": 2}, "segmentNumber must be a whole number", id="segmentNumber 1e999"),
    pytest.param(status_update, {"ticketId": "T", "response": {"code": 4}, "segmentNumber": 1,
                                 "totalSegments": 10**20}, "totalSegments must be from 1 to 255",
                 id="totalSegments 10**20"),
    pytest.param(status_update, {"ticketId": "T", "response": {"code": "9" * 5000}}, "must be a whole number",
                 id="code of 5000 digits"),
])
def test_numbers_no_column_holds_are_malformed(read, event, detail):
    with pytest.raises(Malformed, match=detail):
        read(event)


def test_a_type_of_number_of_1e999_is_no_type_and_the_address_is_read_as_a_number():
    mo = _mo()["mobileOriginate"]
    mo["source"]["ton"] = float("inf")

    assert inbound_message(mo).from_number == "+14155550123"


@both_databases
@pytest.mark.parametrize(("path", "raw", "detail"), [
    pytest.param("status", json.dumps(_receipt(totalSegments=10**20)).encode(), "totalSegments must be from 1 to 255",
                 id="totalSegments 10**20"),
    pytest.param("status", json.dumps(_receipt(segmentNumber=1)).encode().replace(b'"segmentNumber": 1',
                                                                                  b'"segmentNumber": 1e999'),
                 "segmentNumber must be a whole number", id="segmentNumber 1e999"),
    pytest.param("status", json.dumps(_receipt(response={"code": 1})).encode().replace(b'"code": 1', b'"code": 1e999'),
                 "must be a whole number", id="code 1e999"),
    pytest.param("inbound", json.dumps(_mo(content="@")).encode().replace(b'"@"', b'"\\ud800"'), "a lone surrogate",
                 id="lone surrogate in the text"),
    pytest.param("inbound", json.dumps(_mo()).encode().replace(b'"0111A', b'"' + b"T" * 100 + b'0111A'),
                 "the provider message id is longer than 100", id="ticket id past its column"),
])
def test_what_no_column_holds_is_refused_with_400_and_stores_nothing(openmarket_app, live_server, fake, db, path, raw,
                                                                     detail):
    server = live_server(openmarket_app())
    before = db.contents()

    response = _post(server.url, path, raw, fake)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed" and detail in response.json()["detail"]
    assert db.contents() == before


@both_databases
def test_a_nul_in_the_text_is_mended_and_the_message_routed(openmarket_app, live_server, fake, db):
    server = live_server(openmarket_app())

    response = _post(server.url, "inbound", json.dumps(_mo(content="a\u0000b")).encode(), fake)

    assert response.status_code == 200, response.text
    assert db.rows("SELECT body FROM messages") == [{"body": "a\ufffdb"}]
    assert db.count("inbox", "processed_at IS NULL OR error IS NOT NULL") == 0
