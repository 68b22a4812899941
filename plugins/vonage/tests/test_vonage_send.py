"""Sending through Vonage: the request it gets, one id per part, per-part receipts, and its error table."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from smsconnector import outbound
from smsconnector.app import App
from smsconnector.errors import PermanentSendError, RetryableSendError
from smsconnector.messages import DeliveryStatus, OutboundMessage, SendResult
from smsconnector.testing import BRAND_NUMBER, Database, LiveServer, eventually
from smsconnector_vonage import client
from smsconnector_vonage.fake import FakeVonage
from smsconnector_vonage.settings import Settings

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
CONSUMER = "+14155550123"
CALLBACK = "https://connector.example/webhooks/vonage/status"
#: three GSM-7 parts of at most 153 characters
THREE_PARTS = "Your parcel left our warehouse this morning and is on its way to you. " * 5


def send(fake: FakeVonage, text: str, **fields: Any) -> SendResult:
    """Send ``text`` through the plugin's client to the fake, as the host's sender does."""
    message = OutboundMessage(
        id=17, provider="vonage", from_number=BRAND_NUMBER, to_number=CONSUMER, text=text, **fields
    )

    async def run() -> SendResult:
        sms = client.new_client(Settings(**fake.plugin_config()))
        try:
            return await client.send(sms, message, callback=CALLBACK)
        finally:
            assert sms is not None
            await sms.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Your code is 5512 {ok} €", "text"),
        ("Ваш код 5512", "unicode"),
        ("Order shipped 📦", "unicode"),
        ("Backtick ` is not GSM", "unicode"),
    ],
)
def test_the_type_is_unicode_when_the_text_is_not_gsm_7(fake: FakeVonage, text: str, kind: str) -> None:
    send(fake, text)

    assert fake.accepted[0].params["type"] == kind
    assert fake.accepted[0].params["text"] == text


def test_a_send_asks_for_receipts_at_the_status_callback(fake: FakeVonage) -> None:
    result = send(fake, "Your parcel ships today.", validity_seconds=3600)

    [request] = [r.body for r in fake.requests]
    params = fake.accepted[0].params
    assert {key: params[key] for key in ("from", "to", "callback", "status-report-req", "client-ref", "ttl")} == {
        "from": "15555550100",
        "to": "14155550123",
        "callback": CALLBACK,
        "status-report-req": "1",
        "client-ref": "17",
        "ttl": "3600000",
    }
    assert b"api_secret=" in request  # the account's credentials travel in the form, as Vonage's SDKs send them
    assert result == SendResult(fake.accepted[0].ids[0], segments=1)


def test_a_long_message_is_known_by_every_parts_id(fake: FakeVonage) -> None:
    result = send(fake, THREE_PARTS)

    assert len(fake.accepted[0].ids) == 3
    assert result == SendResult.of_parts(fake.accepted[0].ids)


#: Vonage's send status -> how the host treats it
ERROR_TABLE = {
    "1": RetryableSendError,  # Throttled
    "5": RetryableSendError,  # Internal Error
    "10": RetryableSendError,  # Too Many Existing Binds
    "2": PermanentSendError,  # Missing Parameters
    "3": PermanentSendError,  # Invalid Parameters
    "4": PermanentSendError,  # Invalid Credentials
    "6": PermanentSendError,  # Invalid Message
    "7": PermanentSendError,  # Number Barred
    "8": PermanentSendError,  # Partner Account Barred
    "9": PermanentSendError,  # Partner Quota Violation
    "15": PermanentSendError,  # Invalid Sender Address
    "29": PermanentSendError,  # Non-Whitelisted Destination
}


@pytest.mark.parametrize(("status", "error"), ERROR_TABLE.items())
def test_the_error_table(fake: FakeVonage, status: str, error: type[Exception]) -> None:
    fake.fail_next(status)

    with pytest.raises(error) as raised:
        send(fake, "Your parcel ships today.")

    assert raised.value.code == status  # type: ignore[attr-defined]
    assert fake.accepted == []


def test_a_message_only_partly_accepted_is_not_sent_again(fake: FakeVonage) -> None:
    fake.fail_next("1", parts=3, accepted=1)  # throttled after the first part went

    with pytest.raises(PermanentSendError, match="1 of its 3 parts were accepted") as raised:
        send(fake, THREE_PARTS)

    assert raised.value.code == "1"


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RetryableSendError), (500, RetryableSendError), (503, RetryableSendError), (401, PermanentSendError)],
)
def test_http_errors(fake: FakeVonage, status: int, error: type[Exception]) -> None:
    fake.respond_next(status, body=b"<html>no</html>")

    with pytest.raises(error) as raised:
        send(fake, "Your parcel ships today.")

    assert raised.value.code == str(status)  # type: ignore[attr-defined]


def test_wrong_credentials_are_a_permanent_failure(fake: FakeVonage) -> None:
    message = OutboundMessage(id=1, provider="vonage", from_number=BRAND_NUMBER, to_number=CONSUMER, text="Hi")

    async def run() -> SendResult:
        sms = client.new_client(Settings(**fake.plugin_config(api_secret="guess")))
        assert sms is not None
        try:
            return await client.send(sms, message, callback=CALLBACK)
        finally:
            await sms.aclose()

    with pytest.raises(PermanentSendError) as raised:
        asyncio.run(run())

    assert raised.value.code == "4"


# -- through the host: per-part receipts ---------------------------------------------------------------------


def queue_reply(server: LiveServer, text: str) -> int:
    async def queue() -> int:
        async with server.app.store.transaction() as session:
            message = await outbound.queue(
                session, provider="vonage", from_number=BRAND_NUMBER, to_number=CONSUMER, text=text
            )
        assert message.id is not None
        return message.id

    return server.call(queue)


def message_row(db: Database, message_id: int) -> dict[str, Any]:
    [row] = db.rows("SELECT status, error_code FROM messages WHERE id = :id", id=message_id)
    return row


@both_databases
def test_a_three_part_send_whose_parts_2_and_3_fail_ends_failed_with_the_err_code(
    vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    server = live_server(vonage_app())
    message_id = queue_reply(server, THREE_PARTS)
    eventually(lambda: fake.accepted)
    [sent] = fake.accepted

    answers = fake.post_receipts(server.url, sent, failures={2: ("failed", "6"), 3: ("rejected", "7")})

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert eventually(lambda: message_row(db, message_id)["status"] == "failed")
    assert message_row(db, message_id) == {"status": "failed", "error_code": "6"}
    assert db.count("delivery_parts", "message_id = :id", id=message_id) == 3


@both_databases
def test_a_long_message_is_delivered_once_every_part_is(
    vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    server = live_server(vonage_app())
    message_id = queue_reply(server, THREE_PARTS)
    eventually(lambda: fake.accepted)
    [sent] = fake.accepted
    first, *rest = fake.receipts(sent)
    url = server.url + "/webhooks/vonage/status"

    fake.post(url, first, how="get")
    after_one = message_row(db, message_id)["status"]
    fake.post_all(url, rest, how="form")

    assert after_one == DeliveryStatus.SENT.value
    assert message_row(db, message_id) == {"status": "delivered", "error_code": None}
