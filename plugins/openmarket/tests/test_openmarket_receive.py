"""Receiving from OpenMarket: recorded payloads, Basic credentials, the allow-list, and bad input refused."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsconnector.errors import Malformed, PluginError
from smsconnector.messages import DeliveryStatus, InboundMessage, SegmentInfo, StatusUpdate
from smsconnector_openmarket.content import GSM_CODEC
from smsconnector_openmarket.fake import FakeOpenMarket
from smsconnector_openmarket.normalize import inbound_message, status_update

PAYLOADS = Path(__file__).parent / "payloads"
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


# -- recorded payloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("mo_text.json", dict(provider_message_id="0111A-0304F-1015M-12AB3", from_number="+14155550123",
                          to_number="+15555550100", text="Where is my order?", segment=None)),
    ("mo_part_documented.json", dict(provider_message_id="8514F-01278-17445-23FSJ", from_number="+12515550145",
                                     to_number="222111", text=" thinking about it.",
                                     segment=SegmentInfo(8, 2, 2, b" thinking about it.", GSM_CODEC))),
    ("mo_hex_crlf.json", dict(from_number="+14155550123", text="Order 34\r\nNot arrived", segment=None)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_recorded_mos_normalize(name: str, expected: dict[str, Any]) -> None:
    message = inbound_message(payload(name)["mobileOriginate"])

    assert isinstance(message, InboundMessage)
    assert {key: getattr(message, key) for key in expected} == expected
    assert message.details.get("mobile_operator_id") in (None, "383")


@pytest.mark.parametrize(("name", "expected"), [
    ("receipt_part_delivered.json", StatusUpdate("openmarket", "03155-0331L-1439U-51SLFX", DeliveryStatus.DELIVERED,
                                                 segment=SegmentInfo(0, 3, 2))),
    ("receipt_undelivered.json", StatusUpdate("openmarket", "03155-0331L-1439U-51SLFX", DeliveryStatus.UNDELIVERED,
                                              error_code="351", error_message="Invalid destination address")),
    ("receipt_v3_layout.json", StatusUpdate("openmarket", "0112C-0402H-14019-14Y7J", DeliveryStatus.DELIVERED,
                                            segment=SegmentInfo(0, 2, 1))),
])
def test_recorded_receipts_normalize(name: str, expected: StatusUpdate) -> None:
    update = status_update(payload(name)["deliveryReceipt"])

    assert update == StatusUpdate(**{**_fields(expected), "occurred_at": update.occurred_at})


def _fields(update: StatusUpdate) -> dict[str, Any]:
    return {name: getattr(update, name) for name in update.__slots__}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("code", "state", "status"), [
    (0, "DELIVRD", DeliveryStatus.SENT),  # sent to the carrier; the last word for some numbers
    (4, "DELIVRD", DeliveryStatus.DELIVERED),
    (341, "REJECTD", DeliveryStatus.FAILED),
    (345, "UNDELIV", DeliveryStatus.UNDELIVERED),
    (351, "EXPIRED", DeliveryStatus.UNDELIVERED),
    (3, "ENROUTE", DeliveryStatus.SENT),
    (999, "", DeliveryStatus.UNDELIVERED),
])
def test_receipt_codes_and_states_map_to_statuses(code: int, state: str, status: DeliveryStatus) -> None:
    receipt = FakeOpenMarket.receipt("T-1", code)["deliveryReceipt"]
    receipt["message"]["state"]["description"] = state

    update = status_update(receipt)

    assert update.status is status
    assert update.error_code == (str(code) if status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED) else None)


@pytest.mark.parametrize(("receipt", "problem"), [
    ({"response": {"code": 4}}, "ticketId is missing"),
    ({"ticketId": "T", "response": {"code": "four"}}, "response.code must be a whole number"),
    ({"ticketId": "T", "response": {"code": 4}, "segmentNumber": 0, "totalSegments": 2}, "segmentNumber 0"),
    ({"ticketId": "T", "response": {"code": 4}, "segmentNumber": 3, "totalSegments": 2}, "segmentNumber 3"),
])
def test_bad_receipts_are_refused(receipt: dict[str, Any], problem: str) -> None:
    with pytest.raises(Malformed, match=problem):
        status_update(receipt)


# -- over HTTP -------------------------------------------------------------------------------------------


@both_databases
def test_an_mo_is_answered_200_empty_and_stored_once(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app())
    body = fake.mo("Where is my order?")

    first, retry = fake.post_mo(server.url, [body, body])

    assert (first.status_code, first.content, retry.status_code, retry.content) == (200, b"", 200, b"")
    [row] = db.rows("SELECT provider, provider_message_id, from_number, to_number, body FROM messages")
    assert row == {"provider": "openmarket", "provider_message_id": body["mobileOriginate"]["ticketId"],
                   "from_number": "+14155550123", "to_number": "+15555550100", "body": "Where is my order?"}


@dataclass(frozen=True)
class Bad:
    label: str
    body: bytes | dict[str, Any]
    status: int
    error: str
    detail: str
    auth: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "inbound"


def _mo(**message: Any) -> dict[str, Any]:
    return {"mobileOriginate": {"ticketId": "BAD-1", "source": {"ton": 1, "address": "14155550123"},
                                "destination": {"ton": 1, "address": "15555550100"}, "message": message}}


def _part(udh: bytes, payload: bytes = b"Hi") -> dict[str, Any]:
    return _mo(type="hexEncodedText", content=(udh + payload).hex(), udh=True)


BAD = [
    Bad("wrong password", _mo(type="text", content="hi"), 401, "unauthenticated", "wrong credentials",
        auth=("openmarket", "guess")),
    Bad("wrong user", _mo(type="text", content="hi"), 401, "unauthenticated", "wrong credentials",
        auth=("someone", "fake-inbound-password")),
    Bad("no credentials", _mo(type="text", content="hi"), 401, "unauthenticated", "Authorization: Basic",
        headers={"Authorization": ""}),
    Bad("bearer instead of basic", _mo(type="text", content="hi"), 401, "unauthenticated", "Authorization: Basic",
        headers={"Authorization": "Bearer abc"}),
    Bad("basic that is not base64", _mo(type="text", content="hi"), 401, "unauthenticated", "not valid base64",
        headers={"Authorization": "Basic !!!"}),
    Bad("invalid JSON", b'{"mobileOriginate": ', 400, "malformed", "body is not JSON"),
    Bad("JSON of another shape", {"hello": "world"}, 400, "malformed", "'mobileOriginate' or 'deliveryReceipt'"),
    Bad("hex that is not hex", _mo(type="hexEncodedText", content="05000308020g", udh=True), 400, "malformed",
        "not hexadecimal"),
    Bad("a UDH claiming more bytes than it has", _mo(type="hexEncodedText", content="0b00030802", udh=True), 400,
        "malformed", "UDHL claims 11 octets but only 4 follow"),
    Bad("an IE claiming more bytes than the UDH", _part(bytes([5, 0, 5, 8, 2, 1])), 400, "malformed",
        "IE 0x00 claims 5 octets"),
    Bad("sequence 0", _part(bytes([5, 0, 3, 8, 2, 0])), 400, "malformed", "sequence must be between 1 and total"),
    Bad("sequence above the total", _part(bytes([5, 0, 3, 8, 2, 3])), 400, "malformed",
        "sequence must be between 1 and total"),
    Bad("16-bit reference, sequence above the total", _part(bytes([6, 8, 4, 1, 2, 2, 9])), 400, "malformed",
        "sequence must be between 1 and total"),
    Bad("no ticket id", {"mobileOriginate": {**_mo(type="text", content="x")["mobileOriginate"], "ticketId": ""}},
        400, "malformed", "ticketId is missing"),
    Bad("a source that is no phone number", {"mobileOriginate": {**_mo(type="text", content="x")["mobileOriginate"],
                                                                 "source": {"ton": 1, "address": "12"}}},
        400, "malformed", "source.address is not a phone number"),
    Bad("a receipt for part 0", FakeOpenMarket.receipt("T-1", 4, segment_number=0, total_segments=2), 400,
        "malformed", "segmentNumber 0 is not between 1 and totalSegments", path="status"),
]


@both_databases
def test_bad_input_is_refused_with_a_clear_error_and_stores_nothing(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app())
    fake.post_mo(server.url, fake.mo("an earlier message"))  # so that "nothing changed" is not "nothing there"
    before = db.snapshot()
    outcomes = {}

    for case in BAD:
        content = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        response = httpx.post(f"{server.url}/webhooks/openmarket/{case.path}", content=content,
                              auth=case.auth or (None if "Authorization" in case.headers else fake.inbound_auth),
                              headers={"Content-Type": "application/json", **case.headers})
        error = response.json() if response.headers.get("content-type") == "application/json" else {}
        outcomes[case.label] = (response.status_code, error.get("error"), case.detail in error.get("detail", ""))

    assert outcomes == {case.label: (case.status, case.error, True) for case in BAD}
    assert db.snapshot() == before


def test_a_401_asks_for_basic_credentials(openmarket_app, live_server, fake) -> None:
    server = live_server(openmarket_app())

    [response] = fake.post_mo(server.url, fake.mo("hi"), auth=("openmarket", "guess"))

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic realm=")


@both_databases
def test_an_address_outside_the_allowed_networks_is_refused(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app(openmarket={"allowed_networks": "10.0.0.0/8, 2001:db8::/32"}))
    before = db.snapshot()

    [response] = fake.post_mo(server.url, fake.mo("hi"))

    assert response.status_code == 403
    assert response.json() == {"error": "forbidden",
                               "detail": "address 127.0.0.1 is not in plugins.openmarket.allowed_networks"}
    assert db.snapshot() == before


def test_an_address_inside_the_allowed_networks_is_accepted(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app(openmarket={"allowed_networks": ["10.0.0.0/8", "127.0.0.0/8"]}))

    [response] = fake.post_mo(server.url, fake.mo("hi"))

    assert response.status_code == 200
    assert db.count("messages") == 1


def test_without_inbound_credentials_configured_nothing_is_accepted(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app(openmarket={"inbound_username": None, "inbound_password": None}))

    [response] = fake.post_mo(server.url, fake.mo("hi"))

    assert response.status_code == 401
    assert "no inbound credentials are configured" in response.json()["detail"]
    assert db.count("messages") == 0


def test_a_receipt_for_an_unknown_ticket_is_answered_and_held(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app())
    before = db.snapshot()

    [response] = fake.post_receipts(server.url, fake.receipt("NOT-OURS", 4, segment_number=1, total_segments=2))

    assert (response.status_code, response.content) == (200, b"")
    # Held in case the send it reports on is recorded a moment later (its inbox entry recognises a retry);
    # no message changes.
    assert db.snapshot() == {**before, "held_statuses": 1, "inbox": 1}


def test_an_mo_to_a_short_code_keeps_the_short_code(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app())

    fake.post_mo(server.url, fake.mo("STOP", destination="222111", destination_ton=3))

    assert db.rows("SELECT to_number, body FROM messages WHERE direction = 'inbound'") == [
        {"to_number": "222111", "body": "STOP"}]


@pytest.mark.parametrize(("section", "key"), [
    ({"account_id": "000-000-000-00000"}, "plugins.openmarket"),
    ({"inbound_username": "openmarket"}, "plugins.openmarket"),
    ({"allowed_networks": ["not-a-network"]}, "plugins.openmarket.allowed_networks"),
    ({"api_base_url": "smsc.openmarket.com"}, "plugins.openmarket.api_base_url"),
    ({"inbound_charset": "ebcdic"}, "plugins.openmarket.inbound_charset"),
    ({"shared_secret": "x"}, "plugins.openmarket.shared_secret"),
])
def test_bad_configuration_stops_start_up_naming_the_key(make_app, section: dict[str, Any], key: str) -> None:
    with pytest.raises(PluginError, match=f"plugin 'openmarket': configuration {key}"):
        make_app(plugins={"openmarket": section}, migrate=False)
