"""Vonage's webhook parameters as canonical messages and status updates, from webhooks as Vonage sent them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from smsconnector.errors import Malformed
from smsconnector.messages import DeliveryStatus, SegmentInfo, StatusUpdate
from smsconnector_vonage.normalize import inbound_message, status_update

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> dict[str, str]:
    """A recorded GET webhook's query string (unsigned: recorded before the account signed its webhooks)."""
    return dict(parse_qsl((PAYLOADS / name).read_text().strip(), keep_blank_values=True))


def test_a_recorded_inbound_message() -> None:
    message = inbound_message(payload("inbound_text.query"))

    assert (message.provider_message_id, message.from_number, message.to_number, message.text, message.segment) == (
        "0B0000004B65F62F",
        "+15862151111",
        "+12812581111",
        "Msg",
        None,
    )
    assert message.details == {"type": "text", "keyword": "Keyword", "message-timestamp": "2017-05-01 21:52:49"}


def test_a_recorded_receipt() -> None:
    update = status_update(payload("receipt_delivered.query"))

    assert update == StatusUpdate(
        "vonage", "0C0000002EEBDA56", DeliveryStatus.DELIVERED, occurred_at=update.occurred_at
    )


def test_a_part_carries_its_place_in_the_message() -> None:
    params = payload("inbound_text.query") | {
        "concat": "true",
        "concat-ref": "108",
        "concat-total": "3",
        "concat-part": "2",
    }

    assert inbound_message(params).segment == SegmentInfo(reference=108, total=3, sequence=2)


def test_a_failed_receipt_keeps_its_err_code() -> None:
    update = status_update(payload("receipt_delivered.query") | {"status": "failed", "err-code": "6"})

    assert (update.status, update.error_code) == (DeliveryStatus.FAILED, "6")


def test_a_binary_message_keeps_its_data_and_header_in_the_details() -> None:
    params = {k: v for k, v in payload("inbound_text.query").items() if k != "text"}
    message = inbound_message(params | {"type": "binary", "data": "0102ff", "udh": "050003cc0201"})

    assert (message.text, message.details["data"], message.details["udh"]) == ("", "0102ff", "050003cc0201")


@pytest.mark.parametrize(
    "change",
    [
        {"messageId": ""},
        {"msisdn": "call me"},
        {"concat": "true"},
        {"concat-ref": "1", "concat-total": "²", "concat-part": "1"},
    ],
    ids=["no messageId", "msisdn not a number", "concat without its fields", "non-ASCII digit"],
)
def test_an_inbound_message_lacking_what_it_needs_is_malformed(change: dict[str, str]) -> None:
    with pytest.raises(Malformed):
        inbound_message(payload("inbound_text.query") | change)
