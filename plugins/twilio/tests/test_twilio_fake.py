"""The fake Twilio answers the official client as Twilio does, so other tests and benchmarks can trust it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from smsconnector.testing.polling import eventually
from smsconnector_twilio.client import close_client, make_client
from smsconnector_twilio.fake import OPTED_OUT, SERVER_ERROR, FakeTwilio
from smsconnector_twilio.settings import Settings

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN, BRAND, CONSUMER

Run = Callable[[Awaitable[Any]], Any]


@pytest.fixture
def run() -> Iterator[Run]:
    """Run a coroutine to its end on this test's own event loop (the clients' sessions belong to it)."""
    with asyncio.Runner() as runner:
        yield runner.run


def open_client(run: Run, fake_url: str, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> Client:
    async def make() -> Client:
        return make_client(Settings(account_sid=account_sid, auth_token=auth_token, api_base_url=fake_url),
                           pool_size=1)

    return run(make())


@pytest.fixture
def client(run, fake_twilio) -> Iterator[Client]:
    client = open_client(run, fake_twilio.url)
    yield client
    run(close_client(client))


def test_a_created_message_has_the_documented_shape(run, client, fake_twilio):
    created = run(client.messages.create_async(to=CONSUMER, from_=BRAND, body="Hello {there}"))

    assert created.sid.startswith("SM") and len(created.sid) == 34
    assert (created.status, created.direction, created.num_segments, created.num_media) == (
        "queued", "outbound-api", "1", "0")
    assert (created.to, created.from_, created.body, created.account_sid) == (CONSUMER, BRAND, "Hello {there}",
                                                                             ACCOUNT_SID)
    assert run(client.messages(created.sid).fetch_async()).sid == created.sid


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        pytest.param({"from_": BRAND, "body": "x", "to": ""}, 400, 21604, id="no To"),
        pytest.param({"to": CONSUMER, "body": "x"}, 400, 21603, id="no From"),
        pytest.param({"to": CONSUMER, "from_": BRAND}, 400, 21602, id="no Body"),
        pytest.param({"to": CONSUMER, "from_": BRAND, "body": "x" * 1601}, 400, 21617, id="Body too long"),
        pytest.param({"to": "12345", "from_": BRAND, "body": "x"}, 400, 21211, id="To not E.164"),
    ],
)
def test_an_invalid_create_gets_twilios_error(kwargs, status, code, run, client, fake_twilio):
    with pytest.raises(TwilioRestException) as raised:
        run(client.messages.create_async(**kwargs))

    assert (raised.value.status, raised.value.code) == (status, code)
    assert fake_twilio.messages == {}


def test_wrong_credentials_get_20003_and_another_account_20404(run, fake_twilio):
    wrong = open_client(run, fake_twilio.url, auth_token="f" * 32)
    other = open_client(run, fake_twilio.url, account_sid="AC" + "ee" * 16)
    fake_twilio.api_keys["AC" + "ee" * 16] = AUTH_TOKEN  # authenticated, but not this account's resources

    with pytest.raises(TwilioRestException) as unauthenticated:
        run(wrong.messages.create_async(to=CONSUMER, from_=BRAND, body="x"))
    with pytest.raises(TwilioRestException) as elsewhere:
        run(other.messages.create_async(to=CONSUMER, from_=BRAND, body="x"))

    assert (unauthenticated.value.status, unauthenticated.value.code) == (401, 20003)
    assert (elsewhere.value.status, elsewhere.value.code) == (404, 20404)
    run(close_client(wrong))
    run(close_client(other))


def test_scripted_failures_are_used_once_each_destination_first(run, client, fake_twilio):
    fake_twilio.fail(SERVER_ERROR)
    fake_twilio.fail(OPTED_OUT, to=CONSUMER)
    outcomes = []
    for to in (CONSUMER, CONSUMER, "+14155550199", CONSUMER):
        try:
            run(client.messages.create_async(to=to, from_=BRAND, body="x"))
            outcomes.append("created")
        except TwilioRestException as exc:
            outcomes.append(exc.code)

    assert outcomes == [21610, 20500, "created", "created"]
    assert [r.status for r in fake_twilio.message_requests()] == [400, 500, 201, 201]


def test_a_scripted_answer_and_a_stall_reach_the_client_and_are_recorded(fake_twilio):
    fake_twilio.respond_next(503, body=b"upstream down")
    fake_twilio.stall_next(1.0)
    messages = f"{fake_twilio.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    form = {"To": CONSUMER, "From": BRAND, "Body": "late"}

    unavailable = httpx.post(messages, data=form, auth=(ACCOUNT_SID, AUTH_TOKEN))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(messages, data=form, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=0.2)

    assert unavailable.status_code == 503
    # The stalled send is still answered, late, and accepted as usual.
    statuses = eventually(lambda: [r.status for r in fake_twilio.requests] if len(fake_twilio.requests) == 2 else None)
    assert statuses == [503, 201]
    assert [r.params["Body"] for r in fake_twilio.requests] == ["late", "late"]
    assert [m["body"] for m in fake_twilio.sent()] == ["late"]


def test_the_fake_listens_where_it_is_told_and_records_who_called():
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, port=0) as fake:
        port = int(fake.url.rsplit(":", 1)[1])
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, host="127.0.0.1", port=port) as fake:
        answer = httpx.get(f"{fake.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", auth=("ACwrong", "guess"))

        assert fake.url == f"http://127.0.0.1:{port}"
        assert answer.status_code == 401 and answer.json()["code"] == 20003
        assert [(r.method, r.username, r.status) for r in fake.requests] == [("GET", "ACwrong", 401)]


def test_listing_follows_twilios_pages(run, client, fake_twilio):
    numbers = [f"+1415555{n:04d}" for n in range(300, 307)]
    for number in numbers:
        fake_twilio.add_number(number)

    listed = run(client.incoming_phone_numbers.list_async(page_size=3))

    assert [n.phone_number for n in listed] == numbers
    assert [dict(r.query).get("Page", "0") for r in fake_twilio.requests] == ["0", "1", "2"]


def test_messages_are_listed_the_latest_first_by_recipient_sender_and_day_sent(run, client, fake_twilio):
    other = "+14155550199"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = run(client.messages.create_async(to=CONSUMER, from_=BRAND, body="one"))
    to_other = run(client.messages.create_async(to=other, from_=BRAND, body="two"))
    latest = run(client.messages.create_async(to=CONSUMER, from_=BRAND, body="three"))
    fake_twilio.queue_seconds = 60
    waiting = run(client.messages.create_async(to=CONSUMER, from_=BRAND, body="still in the queue"))

    def sids(**filters: Any) -> list[str]:
        return [m.sid for m in run(client.messages.list_async(**filters))]

    assert sids(to=CONSUMER, from_=BRAND, date_sent_after=today) == [latest.sid, first.sid]
    assert sids(to=other) == [to_other.sid]
    assert sids(to=CONSUMER) == [waiting.sid, latest.sid, first.sid]  # not sent on yet: no DateSent to filter on
    assert sids(date_sent=today) == [latest.sid, to_other.sid, first.sid]
    assert sids(date_sent_before=today - timedelta(days=1)) == []
    assert sids(to=CONSUMER, date_sent_after=today + timedelta(days=1)) == []
    # The names Twilio documents, as the official client sends them.
    listed = [r for r in fake_twilio.requests if r.method == "GET"]
    assert dict(listed[0].query) == {"To": CONSUMER, "From": BRAND, "DateSent>": today.strftime("%Y-%m-%dT%H:%M:%SZ")}
    found = run(client.messages(first.sid).fetch_async())
    assert (found.status, found.date_sent is not None) == ("sent", True)
