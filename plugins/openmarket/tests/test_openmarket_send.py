"""Sending through OpenMarket's v4 MT API, against the fake over real HTTP."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest

from smsconnector.errors import PermanentSendError, RetryableSendError, SendError
from smsconnector.messages import DeliveryStatus, Media, OutboundMessage, SendResult
from smsconnector.testing import BRAND_NUMBER
from smsconnector_openmarket.fake import ACCOUNT_ID, PASSWORD

CONSUMER = "+14155550123"


def outbound_message(text: str = "Your order ships today.", **fields: object) -> OutboundMessage:
    values: dict[str, object] = dict(id=42, provider="openmarket", from_number=BRAND_NUMBER, to_number=CONSUMER,
                                     text=text)
    return OutboundMessage(**{**values, **fields})  # type: ignore[arg-type]


def test_a_message_is_sent_as_one_mt_and_its_ticket_kept(openmarket_app, live_server, fake) -> None:
    app = openmarket_app(public_url="https://sms.example.com")
    server = live_server(app)
    text = "Your parcel is on its way. " * 15  # 405 GSM characters: three parts, which OpenMarket makes

    result = server.call(lambda: app.hooks.send("openmarket", outbound_message(text, validity_seconds=3600)))

    [accepted] = fake.accepted
    assert result == SendResult(provider_message_id=accepted.ticket, status=DeliveryStatus.SENT, segments=3)
    [request] = fake.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_ID}:{PASSWORD}".encode()).decode()
    assert request.headers["content-type"] == "application/json; charset=UTF-8"
    assert request.json() == {"mobileTerminate": {
        "destination": {"address": "14155550123"},
        "source": {"ton": 1, "address": "15555550100"},
        "message": {"type": "text", "content": text, "charset": "GSM", "mlc": "segment", "validityPeriod": 3600},
        "delivery": {"receiptRequested": "final", "url": "https://sms.example.com/webhooks/openmarket/status"},
        "options": {"note1": "42"},
    }}


@pytest.mark.parametrize(("text", "charset"), [
    ("Plain GSM with {extension} characters €", "GSM"),
    ("Thanks \U0001f600", "UTF-16"),
    ("Curly \u201cquotes\u201d", "UTF-16"),
])
def test_the_charset_follows_the_text(openmarket_app, live_server, fake, text: str, charset: str) -> None:
    app = openmarket_app()
    server = live_server(app)

    server.call(lambda: app.hooks.send("openmarket", outbound_message(text)))

    assert fake.requests[0].json()["mobileTerminate"]["message"]["charset"] == charset


@pytest.mark.parametrize(("sender", "source"), [
    (BRAND_NUMBER, {"ton": 1, "address": "15555550100"}),
    ("222111", {"ton": 3, "address": "222111"}),
    ("ACME", {"ton": 5, "address": "ACME"}),
])
def test_the_source_carries_its_type_of_number(openmarket_app, live_server, fake, sender: str,
                                               source: dict[str, object]) -> None:
    app = openmarket_app(openmarket={"program_id": "ABC"})
    server = live_server(app)

    server.call(lambda: app.hooks.send("openmarket", outbound_message(from_number=sender, validity_seconds=999_999)))

    mt = fake.requests[0].json()["mobileTerminate"]
    assert mt["source"] == source
    assert mt["options"] == {"note1": "42", "programId": "ABC"}
    assert mt["message"]["validityPeriod"] == 259_200  # OpenMarket's longest


@dataclass(frozen=True)
class Refusal:
    label: str
    script: dict[str, object]
    error: type[SendError]
    code: str
    retry_after: float | None = None
    reason: str = ""
    config: dict[str, object] = field(default_factory=dict)


REFUSALS = [
    Refusal("invalid destination", {"status": 400, "code": 351, "description": "Invalid destination address"},
            PermanentSendError, "351", reason="Invalid destination address"),
    Refusal("spam filtered", {"status": 403, "code": 607}, PermanentSendError, "607"),
    Refusal("a 4xx without a body", {"status": 404}, PermanentSendError, "404"),
    Refusal("rate limited", {"status": 429, "code": 1010, "headers": {"Retry-After": "7"}}, RetryableSendError, "1010",
            retry_after=7.0),
    Refusal("server error", {"status": 500, "code": 1500}, RetryableSendError, "1500"),
    Refusal("unavailable", {"status": 503}, RetryableSendError, "503"),
    Refusal("unavailable for a while", {"status": 503, "headers": {"Retry-After": "30"}}, RetryableSendError, "503",
            retry_after=30.0),
    Refusal("timed out at OpenMarket", {"status": 408, "code": 1408}, RetryableSendError, "1408"),
    Refusal("too early", {"status": 425}, RetryableSendError, "425"),
    Refusal("a Retry-After that is not seconds", {"status": 429, "headers": {"Retry-After": "soon"}},
            RetryableSendError, "429"),
    Refusal("accepted without a ticket", {"status": 200}, PermanentSendError, "no_ticket"),
]


def test_refusals_are_permanent_or_retryable_with_the_code_kept(openmarket_app, live_server, fake) -> None:
    app = openmarket_app()
    server = live_server(app)
    outcomes = {}

    for case in REFUSALS:
        script = dict(case.script)
        fake.fail_next(int(script.pop("status")), **script)  # type: ignore[arg-type]
        with pytest.raises(SendError) as caught:
            server.call(lambda: app.hooks.send("openmarket", outbound_message()))
        error = caught.value
        retry_after = getattr(error, "retry_after", None)
        outcomes[case.label] = (type(error), error.code, retry_after, case.reason in error.reason)

    assert outcomes == {c.label: (c.error, c.code, c.retry_after, True) for c in REFUSALS}
    assert fake.accepted == []


def test_wrong_account_credentials_are_a_permanent_refusal(openmarket_app, live_server, fake) -> None:
    app = openmarket_app(openmarket={"password": "not-the-password"})
    server = live_server(app)

    with pytest.raises(PermanentSendError) as caught:
        server.call(lambda: app.hooks.send("openmarket", outbound_message()))

    assert (caught.value.code, "HTTP 401" in caught.value.reason) == ("1001", True)


def test_a_timeout_is_retryable(openmarket_app, live_server, fake) -> None:
    app = openmarket_app(openmarket={"timeout_seconds": 0.2})
    server = live_server(app)
    fake.stall_next(1.0)

    with pytest.raises(RetryableSendError) as caught:
        server.call(lambda: app.hooks.send("openmarket", outbound_message()))

    assert caught.value.code == "timeout"


def test_a_connection_error_is_retryable(openmarket_app, live_server, fake) -> None:
    app = openmarket_app(openmarket={"api_base_url": "http://127.0.0.1:9"})  # discard port: nothing listens
    server = live_server(app)

    with pytest.raises(RetryableSendError) as caught:
        server.call(lambda: app.hooks.send("openmarket", outbound_message()))

    assert caught.value.code == "connection"


@pytest.mark.parametrize(("config", "message", "code"), [
    ({"account_id": None, "password": None}, outbound_message(), "not_configured"),
    ({}, outbound_message(media=(Media("https://example.com/a.jpg", "image/jpeg"),)), "media_unsupported"),
])
def test_what_cannot_be_sent_is_refused_before_any_request(openmarket_app, live_server, fake, config, message,
                                                           code) -> None:
    app = openmarket_app(openmarket=config)
    server = live_server(app)

    with pytest.raises(PermanentSendError) as caught:
        server.call(lambda: app.hooks.send("openmarket", message))

    assert caught.value.code == code
    assert fake.requests == []
