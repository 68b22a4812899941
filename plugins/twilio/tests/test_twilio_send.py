"""Sending through the official client to the fake Twilio: what leaves, what is retried, what is given up on."""

from __future__ import annotations

import asyncio
import re
import socket
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smsconnector.decisions import ConsentSignal, Verdict
from smsconnector.errors import PermanentSendError, RetryableSendError
from smsconnector.messages import Media, OutboundMessage, utcnow
from smsconnector.plugins import hookimpl
from smsconnector.testing import eventually
from smsconnector_twilio.fake import OPTED_OUT, SERVER_ERROR, Failure
from smsconnector_twilio.send import MessageSender, classify
from smsconnector_twilio.settings import Settings

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN, BRAND, CONSUMER, queue_reply

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
OTHER = "+14155550124"
SERVICE = "MG" + "11" * 16
NUMBER_SERVICE = "MG" + "22" * 16


class Spy:
    """A plugin that records the consent signals the host reports and bounds validity like a send check."""

    def __init__(self, validity_seconds: int | None = None) -> None:
        self.signals: list[ConsentSignal] = []
        self.validity_seconds = validity_seconds

    @hookimpl
    def smsconnector_consent_signal(self, signal: ConsentSignal) -> None:
        """Remember the signal."""
        self.signals.append(signal)

    @hookimpl
    def smsconnector_check_outbound(self) -> Verdict | None:
        """Allow, bounding how long Twilio may hold the message when asked to."""
        return Verdict("allow", validity_seconds=self.validity_seconds) if self.validity_seconds else None


def message_row(db, message_id: int) -> dict:
    [row] = db.rows("SELECT * FROM messages WHERE id = :id", id=message_id)
    return row


def settled(db, message_id: int) -> dict | None:
    """The message once the sender is done with it (no outbox row left), else None."""
    if db.count("outbox", "message_id = :id", id=message_id):
        return None
    return message_row(db, message_id)


# -- what leaves --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("twilio", "media", "expected"),
    [
        pytest.param({}, (), {"To": CONSUMER, "From": BRAND, "Body": "It ships today.",
                              "StatusCallback": "http://testserver/webhooks/twilio/status"}, id="from the number"),
        pytest.param({"messaging_service_sid": SERVICE}, (),
                     {"To": CONSUMER, "From": BRAND, "MessagingServiceSid": SERVICE, "Body": "It ships today.",
                      "StatusCallback": "http://testserver/webhooks/twilio/status"}, id="through a service"),
        pytest.param({"messaging_service_sid": SERVICE, "numbers": {BRAND: {"messaging_service_sid": NUMBER_SERVICE}}},
                     (), {"To": CONSUMER, "From": BRAND, "MessagingServiceSid": NUMBER_SERVICE,
                          "Body": "It ships today.", "StatusCallback": "http://testserver/webhooks/twilio/status"},
                     id="through the number's own service"),
    ],
)
def test_a_reply_reaches_twilio_as_one_create_call(twilio, media, expected, twilio_app, serve, fake_twilio, db):
    app = twilio_app(twilio=twilio)
    server = serve(app)

    message_id = queue_reply(server, app)

    row = eventually(lambda: settled(db, message_id))
    [request] = fake_twilio.message_requests()
    assert (request.params, request.username, request.status) == (expected, ACCOUNT_SID, 201)
    [sent] = fake_twilio.sent()
    assert (row["provider_message_id"], row["status"], row["error_code"]) == (sent["sid"], "sending", None)
    assert row["num_segments"] == (None if "MessagingServiceSid" in expected else 1)


def test_media_goes_as_repeated_media_urls_without_an_empty_body(twilio_app, serve, fake_twilio, db):
    app = twilio_app()
    server = serve(app)
    media = (Media("https://cdn.example.com/a.jpg", "image/jpeg"), Media("https://cdn.example.com/b.png"))

    message_id = queue_reply(server, app, text="", media=media)

    eventually(lambda: settled(db, message_id))
    [request] = fake_twilio.message_requests()
    assert request.values("MediaUrl") == ["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png"]
    assert "Body" not in request.params
    assert fake_twilio.sent()[0]["sid"].startswith("MM")


@pytest.mark.parametrize(("bound", "sent"), [(600, "600"), (50_000, "36000")])
def test_a_send_checks_validity_bound_becomes_the_validity_period(bound, sent, twilio_app, serve, fake_twilio, db):
    app = twilio_app(register=[("spy", Spy(validity_seconds=bound))])
    server = serve(app)

    message_id = queue_reply(server, app)

    eventually(lambda: settled(db, message_id))
    assert fake_twilio.message_requests()[0].params["ValidityPeriod"] == sent


def test_an_api_key_authenticates_rest_calls_instead_of_the_auth_token(twilio_app, serve, fake_twilio, db):
    key = "SK" + "ab" * 16
    fake_twilio.api_keys[key] = "key-secret"
    app = twilio_app(twilio={"api_key": key, "api_secret": "key-secret"})
    server = serve(app)

    message_id = queue_reply(server, app)

    assert eventually(lambda: settled(db, message_id))["status"] == "sending"
    assert [r.username for r in fake_twilio.message_requests()] == [key]


def test_without_a_public_url_sends_carry_no_status_callback(twilio_app, serve, fake_twilio, db):
    app = twilio_app(public_url=None)
    server = serve(app)

    message_id = queue_reply(server, app)

    eventually(lambda: settled(db, message_id))
    assert "StatusCallback" not in fake_twilio.message_requests()[0].params


# -- what is retried, and what is not -----------------------------------------------------------------------------


@both_databases
def test_21610_stops_at_once_and_reports_the_opt_out(twilio_app, serve, fake_twilio, db):
    spy = Spy()
    app = twilio_app(register=[("spy", spy)])
    server = serve(app)
    fake_twilio.fail(OPTED_OUT, to=CONSUMER)

    message_id = queue_reply(server, app)

    row = eventually(lambda: settled(db, message_id))
    assert (row["status"], row["error_code"]) == ("failed", "21610")
    assert [r.status for r in fake_twilio.message_requests()] == [400]
    assert spy.signals == [ConsentSignal(consumer_number=CONSUMER, brand_number=BRAND, action="opt_out",
                                         source="twilio:21610", provider="twilio", message_id=message_id)]


def retrying(server) -> float:
    """How many Twilio messages wait for a retry, as /metrics says."""
    text = httpx.get(f"{server.url}/metrics").text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "smsconnector_outbox_retrying" and s.labels == {"provider": "twilio"})


@both_databases
def test_an_outage_longer_than_the_old_attempt_count_loses_nothing_and_keeps_each_consumers_order(
        twilio_app, serve, fake_twilio, db):
    # Twilio answers 500 to the next 24 sends: the heads of the two consumers' queues take them all between
    # them, so one of them fails at least 12 times -- the old budget gave up after 8 attempts.
    fake_twilio.fail(*[SERVER_ERROR] * 24)
    app = twilio_app(sender={"retry_for_seconds": 60})  # the backoff tops out at 0.2 s in tests
    server = serve(app)
    texts = {CONSUMER: ["a1", "a2", "a3"], OTHER: ["b1", "b2"]}

    ids = [queue_reply(server, app, to=to, text=text) for to, queued in texts.items() for text in queued]

    assert eventually(lambda: retrying(server) >= 1)  # operators see the outage while it lasts
    assert eventually(lambda: db.count("outbox") == 0, timeout=30)
    # Every message delivered once, each consumer's in the order they were queued.
    assert {to: [m["body"] for m in fake_twilio.sent(to=to)] for to in texts} == texts
    failures = Counter(r.params["Body"] for r in fake_twilio.message_requests() if r.status == 500)
    assert sum(failures.values()) == 24 and set(failures) == {"a1", "b1"} and max(failures.values()) >= 12
    assert {message_row(db, i)["status"] for i in ids} == {"sending"}
    assert {message_row(db, i)["error_code"] for i in ids} == {None}
    assert retrying(server) == 0


@both_databases
def test_an_outage_past_the_budget_fails_with_twilios_code_and_an_admin_sends_it_again_once(
        twilio_app, serve, fake_twilio, db):
    fake_twilio.fail(*[SERVER_ERROR] * 10_000)
    app = twilio_app(sender={"retry_for_seconds": 1}, api={"admin_tokens": ["admin-token"]})
    server = serve(app)

    message_id = queue_reply(server, app)

    row = eventually(lambda: settled(db, message_id))
    failed = fake_twilio.message_requests()
    assert (row["status"], row["error_code"]) == ("failed", "20500")
    assert re.fullmatch(rf"gave up after {len(failed)} attempts over 1\.\d seconds: Internal Server Error",
                        row["error_message"]), row["error_message"]
    assert len(failed) > 1 and {r.status for r in failed} == {500} and fake_twilio.sent() == []

    fake_twilio.recover()  # Twilio is back; an administrator sends the message again
    retried = httpx.post(f"{server.url}/api/messages/{message_id}/retry",
                         headers={"authorization": "Bearer admin-token"})

    assert (retried.status_code, retried.json()["status"]) == (200, "queued")
    row = eventually(lambda: settled(db, message_id))
    [sent] = fake_twilio.sent()
    assert (row["status"], row["error_code"], row["provider_message_id"]) == ("sending", None, sent["sid"])
    assert [r.status for r in fake_twilio.message_requests()] == [500] * len(failed) + [201]


def test_wrong_credentials_fail_the_send_permanently_with_20003(twilio_app, serve, fake_twilio, db):
    app = twilio_app(twilio={"auth_token": "f" * 32})
    server = serve(app)

    message_id = queue_reply(server, app)

    row = eventually(lambda: settled(db, message_id))
    assert (row["status"], row["error_code"]) == ("failed", "20003")
    assert [r.status for r in fake_twilio.message_requests()] == [401]


@pytest.mark.parametrize(
    ("status", "code", "retryable", "kept", "opted_out"),
    [
        (429, 20429, True, "20429", False),
        (400, 20429, True, "20429", False),
        (500, 20500, True, "20500", False),
        (503, None, True, "503", False),
        (400, 21610, False, "21610", True),
        (400, 21211, False, "21211", False),
        (400, 21614, False, "21614", False),
        (400, 21408, False, "21408", False),
        (401, 20003, False, "20003", False),
        (404, 20404, False, "20404", False),
    ],
)
def test_classify(status, code, retryable, kept, opted_out):
    error = classify(status, code, "reason", retry_after=1.5)

    assert isinstance(error, RetryableSendError if retryable else PermanentSendError)
    assert error.code == kept
    assert getattr(error, "opted_out", False) is opted_out
    # Looked up before the retry when Twilio may have processed it (a 5xx), never after a 429.
    assert getattr(error, "maybe_accepted", False) is (status >= 500)


# -- the sender on its own: Retry-After, network failures -------------------------------------------------------


def send_directly(settings: Settings) -> None:
    """Send one message through a fresh client, outside any app."""
    from smsconnector_twilio.client import close_client, make_client

    async def run() -> None:
        client = make_client(settings, pool_size=1)
        try:
            await MessageSender(client, settings, in_flight=1, status_callback=None).send(
                OutboundMessage(id=1, provider="twilio", from_number=BRAND, to_number=CONSUMER, text="Hi"))
        finally:
            await close_client(client)

    asyncio.run(run())


def test_retry_after_from_twilio_reaches_the_sender(fake_twilio):
    fake_twilio.fail(Failure(429, 20429, "Too Many Requests", retry_after=7))
    settings = Settings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=fake_twilio.url)

    with pytest.raises(RetryableSendError) as raised:
        send_directly(settings)

    assert (raised.value.code, raised.value.retry_after) == ("20429", 7.0)


def test_a_connection_refused_is_a_retryable_network_error():
    with socket.socket() as sock:  # a port nobody listens on once this socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=f"http://127.0.0.1:{port}")

    with pytest.raises(RetryableSendError) as raised:
        send_directly(settings)

    assert raised.value.code == "network"
    assert not raised.value.maybe_accepted  # never connected: Twilio cannot have it


def test_twilio_not_answering_within_the_timeout_is_a_retryable_network_error(fake_twilio):
    fake_twilio.hold()
    settings = Settings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=fake_twilio.url,
                        timeout_seconds=0.5)
    try:
        with pytest.raises(RetryableSendError) as raised:
            send_directly(settings)
    finally:
        fake_twilio.release()

    assert raised.value.code == "network"
    assert "TimeoutError" in raised.value.reason
    assert raised.value.maybe_accepted  # the request was out: Twilio may have taken it


# -- many sends in flight -----------------------------------------------------------------------------------------


def consumers(count: int) -> list[str]:
    return [f"+1415555{n:04d}" for n in range(200, 200 + count)]


def test_many_sends_wait_on_twilio_at_once_while_the_host_keeps_answering(twilio_app, serve, fake_twilio, db):
    app = twilio_app()
    server = serve(app)
    fake_twilio.hold()

    ids = [queue_reply(server, app, to=number) for number in consumers(20)]

    eventually(lambda: fake_twilio.in_flight == 20)
    assert httpx.get(server.url + "/healthz").status_code == 200  # the event loop is free meanwhile
    fake_twilio.release()
    eventually(lambda: db.count("outbox") == 0)
    assert sorted(m["to"] for m in fake_twilio.sent()) == consumers(20)
    assert {message_row(db, i)["status"] for i in ids} == {"sending"}


def test_max_concurrent_requests_bounds_the_sends_in_flight(twilio_app, serve, fake_twilio, db):
    app = twilio_app(twilio={"max_concurrent_requests": 4})
    server = serve(app)
    fake_twilio.hold()

    for number in consumers(12):
        queue_reply(server, app, to=number)

    eventually(lambda: fake_twilio.in_flight == 4)
    fake_twilio.release()
    eventually(lambda: db.count("outbox") == 0)
    assert (fake_twilio.max_in_flight, len(fake_twilio.sent())) == (4, 12)


# -- a send whose answer was lost ---------------------------------------------------------------------------------


def lost_answer(twilio_app, live_server, db, fake_twilio, *, accepted: bool) -> tuple[int, Any]:
    """A reply a sender cleared to go and then died without recording: marked attempted, its lease running out.
    ``accepted``: the request had reached Twilio (the fake has the message, as Twilio would). Then a new sender."""
    stopped = twilio_app(sender={"enabled": False})
    server = live_server(stopped)
    message_id = queue_reply(server, stopped)
    server.stop()
    db.execute("UPDATE outbox SET attempted_at = :at, lease_until = :lease", at=utcnow() - timedelta(seconds=0.5),
               lease=utcnow() + timedelta(seconds=0.5))
    created = None
    if accepted:
        created = asyncio.run(create_at_the_fake(fake_twilio))
    live_server(twilio_app(migrate=False))
    return message_id, created


async def create_at_the_fake(fake_twilio) -> Any:
    from smsconnector_twilio.client import close_client, make_client

    client = make_client(Settings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=fake_twilio.url),
                         pool_size=1)
    try:
        return await client.messages.create_async(to=CONSUMER, from_=BRAND, body="It ships today.")
    finally:
        await close_client(client)


@both_databases
def test_a_reply_twilio_took_before_the_sender_died_is_found_and_not_sent_again(twilio_app, live_server, fake_twilio,
                                                                                 db):
    message_id, created = lost_answer(twilio_app, live_server, db, fake_twilio, accepted=True)

    row = eventually(lambda: settled(db, message_id))
    assert (row["provider_message_id"], row["status"]) == (created.sid, "sent")
    assert len(fake_twilio.message_requests()) == 1  # the lost attempt's; nothing sent again
    [lookup] = [r for r in fake_twilio.requests if r.method == "GET"]
    assert dict(lookup.query)["To"] == CONSUMER and dict(lookup.query)["From"] == BRAND


def test_a_reply_twilio_never_got_is_sent_after_the_lookup(twilio_app, live_server, fake_twilio, db):
    message_id, _ = lost_answer(twilio_app, live_server, db, fake_twilio, accepted=False)

    row = eventually(lambda: settled(db, message_id))
    [sent] = fake_twilio.sent()
    assert row["provider_message_id"] == sent["sid"]
    assert [r.method for r in fake_twilio.requests] == ["GET", "POST"]


def test_a_send_that_timed_out_after_twilio_took_it_is_not_sent_twice(twilio_app, serve, fake_twilio, db):
    # Twilio answers after the client gave up; the retry, one to two seconds later (well after Twilio has the
    # message, even on a busy machine), first asks what Twilio has.
    fake_twilio.latency = 0.6
    app = twilio_app(twilio={"timeout_seconds": 0.3}, sender={"backoff_base_seconds": 2.0})
    server = serve(app)

    message_id = queue_reply(server, app)

    row = eventually(lambda: settled(db, message_id))
    [sent] = fake_twilio.sent()
    assert row["provider_message_id"] == sent["sid"]
    assert len(fake_twilio.message_requests()) == 1
