"""Inbound webhooks over real HTTP: recorded payloads are stored as sent; forgeries and bad input store nothing."""

from __future__ import annotations

import concurrent.futures
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from smsconnector.decisions import SegmentPolicy
from smsconnector.errors import Malformed
from smsconnector.messages import DeliveryStatus, InboundMessage
from smsconnector_twilio.webhook import EMPTY_TWIML, TwilioEvent, normalize

from .twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BRAND,
    CONSUMER,
    FORM,
    INBOUND,
    PUBLIC_URL,
    STATUS,
    fields,
    get_signed,
    payload,
    post_signed,
    sign,
)

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
MMS_BASE = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM2c3d4e5f60718293a4b5c6d7e8f90a1b/Media"
GEO = {"FromCity": "SAN FRANCISCO", "FromState": "CA", "FromZip": "94105", "FromCountry": "US", "ToState": "CA",
       "ToCountry": "US"}


@dataclass(frozen=True)
class Case:
    """A recorded inbound webhook and what the host must store from it."""

    label: str
    sid: str
    text: str
    num_segments: int = 1
    media: list[dict[str, Any]] = field(default_factory=list)
    keyword: str | None = None
    details: dict[str, str] = field(default_factory=lambda: dict(GEO))


CASES = [
    Case("sms_with_geo", "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9", "Hi, is my order on its way?"),
    Case("sms_long_unicode", "SM1b2c3d4e5f60718293a4b5c6d7e8f90a",
         "Bonjour ! J'ai commandé le 12 mai et je n'ai toujours rien reçu 😕 Pouvez-vous vérifier où en est la "
         "livraison ? Merci d'avance — c'est un cadeau d'anniversaire 🎁", num_segments=3),
    Case("mms_three_media", "MM2c3d4e5f60718293a4b5c6d7e8f90a1b", "", media=[
        {"url": f"{MMS_BASE}/ME3d4e5f60718293a4b5c6d7e8f90a1b2c", "content_type": "image/jpeg"},
        {"url": f"{MMS_BASE}/ME4e5f60718293a4b5c6d7e8f90a1b2c3d", "content_type": "image/png"},
        {"url": f"{MMS_BASE}/ME5f60718293a4b5c6d7e8f90a1b2c3d4e", "content_type": "video/mp4"}]),
    Case("optout_stop", "SM60718293a4b5c6d7e8f90a1b2c3d4e5f", "STOP", keyword="STOP",
         details={**GEO, "MessagingServiceSid": "MG9f8e7d6c5b4a39281706f5e4d3c2b1a0"}),
    Case("repeated_key", "SM718293a4b5c6d7e8f90a1b2c3d4e5f60", "Can I change the delivery address?"),
]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def forge(body: bytes) -> bytes:
    """The same webhook with its text changed after Twilio signed it."""
    return body.replace(b"&Body=", b"&Body=Send+me+a+refund+", 1)


def refused(response: httpx.Response, status: int, error: str, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert detail in response.json()["detail"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_a_signed_webhook_is_stored_as_the_consumer_sent_it(case, twilio_app, serve, db):
    server = serve(twilio_app())

    response = post_signed(server.url, INBOUND, payload(case.label))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content == EMPTY_TWIML
    [row] = db.rows("SELECT * FROM messages")
    assert (row["provider"], row["provider_message_id"], row["direction"]) == ("twilio", case.sid, "inbound")
    assert (row["from_number"], row["to_number"], row["body"]) == (CONSUMER, BRAND, case.text)
    assert (row["num_segments"], _json(row["media"]), _json(row["details"])) == (
        case.num_segments, case.media, case.details)
    [conversation] = db.rows("SELECT * FROM conversations")
    # Queued for an agent -- or, where the compliance plugin is installed, answered by it (a STOP).
    assert (conversation["id"], conversation["skill"]) == (row["conversation_id"], "support")
    assert conversation["status"] in ("queued", "automated")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_its_forged_twin_is_refused_and_stores_nothing(case, twilio_app, serve, db, caplog):
    server = serve(twilio_app())
    body = payload(case.label)
    signature = sign(PUBLIC_URL + INBOUND, body)
    before = db.snapshot()

    with caplog.at_level(logging.DEBUG):
        response = httpx.post(server.url + INBOUND, content=forge(body),
                              headers={"Content-Type": FORM, "X-Twilio-Signature": signature})

    refused(response, 403, "forbidden", "does not match")
    assert db.snapshot() == before
    assert "refund" not in caplog.text  # a refused message's text stays out of the logs


def test_the_provider_keyword_reaches_the_canonical_message():
    event = TwilioEvent("inbound", FormData(fields(payload("optout_stop"))))

    message = normalize(event)

    assert isinstance(message, InboundMessage)
    assert (message.provider_keyword, message.text) == ("STOP", "STOP")


def test_twilio_messages_are_delivered_as_is(twilio_app):
    app = twilio_app()
    message = normalize(TwilioEvent("inbound", FormData(fields(payload("sms_with_geo")))))
    assert isinstance(message, InboundMessage)

    assert app.hooks.segment_policy("twilio", message) is SegmentPolicy.AS_IS
    assert app.hooks.segment_policy("simulator", message) is None


# -- behind a proxy --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trust", "forwarded_host", "signed_for", "status"),
    [
        pytest.param(True, "sms.example.com", "https://sms.example.com", 200, id="trusted, signed for that URL"),
        pytest.param(True, "evil.example.com", "https://sms.example.com", 403, id="trusted, host swapped"),
        pytest.param(False, "sms.example.com", "https://sms.example.com", 403, id="not trusted"),
    ],
)
def test_behind_a_proxy_the_url_is_rebuilt_only_when_trusted(trust, forwarded_host, signed_for, status, twilio_app,
                                                              serve, db):
    server = serve(twilio_app(public_url=None, trust_forwarded_headers=trust))
    before = db.snapshot()

    response = post_signed(server.url, INBOUND, payload("sms_with_geo"), public_url=signed_for,
                           headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": forwarded_host})

    assert response.status_code == status, response.text
    assert db.count("messages") == (1 if status == 200 else before["messages"])


def test_without_a_proxy_the_socket_url_is_what_twilio_signed(twilio_app, serve, db):
    server = serve(twilio_app(public_url=None))

    response = post_signed(server.url, INBOUND, payload("sms_with_geo"), public_url=server.url)

    assert response.status_code == 200, response.text
    assert db.count("messages") == 1


def test_a_configured_public_url_wins_over_forwarded_headers(twilio_app, serve, db):
    server = serve(twilio_app(public_url="https://sms.example.com", trust_forwarded_headers=True))

    response = post_signed(server.url, INBOUND, payload("sms_with_geo"), public_url="https://sms.example.com",
                           headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "elsewhere.example.com"})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("public_url", ["https://sms.example.com", None], ids=["public_url", "socket URL"])
def test_a_webhook_url_with_a_query_is_signed_with_its_query(public_url, twilio_app, serve, db):
    # A number's webhook may be configured as .../inbound?brand=acme; Twilio signs the URL with that query.
    server = serve(twilio_app(public_url=public_url))
    signed_for = public_url or server.url
    path = INBOUND + "?brand=acme&campaign=spring%20sale"

    without_query = post_signed(server.url, path, payload("sms_with_geo"), public_url=signed_for,
                                sign_path=INBOUND)
    assert without_query.status_code == 403, without_query.text
    assert db.count("messages") == 0

    response = post_signed(server.url, path, payload("sms_with_geo"), public_url=signed_for)
    assert response.status_code == 200, response.text
    assert db.count("messages") == 1


# -- duplicates ------------------------------------------------------------------------------------------------


@both_databases
def test_a_retried_webhook_is_answered_and_stored_once(twilio_app, serve, db, caplog):
    server = serve(twilio_app())
    token = "c3f2a1b0-retry-token"

    with caplog.at_level(logging.DEBUG, logger="smsconnector.app"):
        answers = [post_signed(server.url, INBOUND, payload("sms_with_geo"),
                               headers={"I-Twilio-Idempotency-Token": token}).status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert (db.count("messages"), db.count("conversations")) == (1, 1)
    # Each delivery is logged with Twilio's own id for it, and whether it was new; never with the message.
    stored = [r.getMessage() for r in caplog.records if "webhook stored" in r.getMessage()]
    assert stored == [f"twilio inbound webhook stored: 1 event(s), {before} of them sent before (delivery {token})"
                      for before in (0, 1, 1)]
    assert "is my order" not in caplog.text and CONSUMER not in caplog.text


@both_databases
def test_concurrent_deliveries_of_one_message_store_it_once(twilio_app, serve, db):
    server = serve(twilio_app())
    body = payload("mms_three_media")

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: post_signed(server.url, INBOUND, body).status_code, range(32)))

    assert answers == [200] * 32
    assert (db.count("messages"), db.count("conversations")) == (1, 1)


@both_databases
def test_a_signed_get_webhook_is_stored_once_as_the_consumer_sent_it(twilio_app, serve, db):
    server = serve(twilio_app())
    case = CASES[1]  # unicode, escaped in the query string

    answers = [get_signed(server.url, INBOUND, payload(case.label)) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].content == EMPTY_TWIML
    [row] = db.rows("SELECT * FROM messages")
    assert (row["provider_message_id"], row["from_number"], row["to_number"]) == (case.sid, CONSUMER, BRAND)
    assert (row["body"], row["num_segments"], _json(row["details"])) == (case.text, case.num_segments, case.details)
    assert db.count("conversations") == 1


def test_a_forged_get_webhook_is_refused_and_stores_nothing(twilio_app, serve, db, caplog):
    server = serve(twilio_app())
    body = payload("sms_with_geo")
    url = server.url + INBOUND + "?"
    signed_as_get = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + INBOUND + "?" + body.decode(), {})
    before = db.snapshot()

    with caplog.at_level(logging.DEBUG):
        forged = httpx.get(url + forge(body).decode(), headers={"X-Twilio-Signature": signed_as_get})
        # A POST's signature covers the URL and the fields after it; the same fields as a GET's query are another
        # string, so it does not pass for them.
        as_post = httpx.get(url + body.decode(), headers={"X-Twilio-Signature": sign(PUBLIC_URL + INBOUND, body)})

    refused(forged, 403, "forbidden", "does not match")
    refused(as_post, 403, "forbidden", "does not match")
    assert db.snapshot() == before
    # The host's and its server's logs never carry the text, though it is in the URL (the test's client logs it).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("smsconnector", "uvicorn"))]
    assert ours and not [line for line in ours if "refund" in line]


def test_a_twilio_webhook_in_another_method_is_405_naming_get_and_post(twilio_app, serve, db):
    server = serve(twilio_app())
    before = db.snapshot()

    response = httpx.put(server.url + INBOUND, content=payload("sms_with_geo"), headers={"Content-Type": FORM})

    assert (response.status_code, response.headers["allow"]) == (405, "GET, POST")
    assert db.snapshot() == before


# -- bad input -------------------------------------------------------------------------------------------------


def edit(body: bytes, drop: str | None = None, add: str | None = None) -> bytes:
    """A recorded body with the field ``drop`` removed and the raw pair ``add`` appended."""
    pairs = [pair for pair in body.split(b"&") if drop is None or not pair.startswith(drop.encode() + b"=")]
    return b"&".join(pairs + ([add.encode()] if add else []))


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(edit(payload("sms_with_geo"), drop="From"), "missing From", id="no From"),
        pytest.param(edit(payload("sms_with_geo"), drop="To"), "missing To", id="no To"),
        pytest.param(edit(payload("sms_with_geo"), drop="MessageSid"), "missing MessageSid", id="no MessageSid"),
        pytest.param(edit(payload("sms_with_geo"), drop="From", add="From=whatsapp%3A%2B14155550123"),
                     "not a phone number", id="a WhatsApp sender"),
        pytest.param(edit(payload("sms_with_geo"), add="MessageSid=SM00000000000000000000000000000000"),
                     "MessageSid is given 2 different values", id="two MessageSids"),
        pytest.param(edit(payload("mms_three_media"), drop="MediaUrl2"), "missing MediaUrl2", id="a media URL short"),
        pytest.param(edit(payload("sms_with_geo"), drop="NumMedia", add="NumMedia=two"), "not a count",
                     id="NumMedia not a number"),
    ],
)
def test_a_signed_webhook_missing_what_a_message_needs_is_400(body, detail, twilio_app, serve, db):
    server = serve(twilio_app())
    before = db.snapshot()

    response = post_signed(server.url, INBOUND, body)

    refused(response, 400, "malformed", detail)
    assert db.snapshot() == before


@pytest.mark.parametrize(
    ("content_type", "body", "signed", "status", "error", "detail"),
    [
        pytest.param(FORM, payload("sms_with_geo"), False, 403, "forbidden", "missing X-Twilio-Signature",
                     id="unsigned"),
        pytest.param("application/json", b'{"MessageSid": "SM1", "Body": "hi"}', True, 400, "malformed",
                     "expected a application/x-www-form-urlencoded body", id="JSON body"),
        pytest.param(FORM, b"this is not a form", True, 400, "malformed", "not form-encoded", id="not a form"),
        pytest.param(FORM, b"x" * 70_000, False, 413, "too_large", "exceeds the limit", id="over the size limit"),
    ],
)
def test_bad_requests_are_refused_and_store_nothing(content_type, body, signed, status, error, detail, twilio_app,
                                                    serve, db):
    server = serve(twilio_app())
    before = db.snapshot()
    headers = {"Content-Type": content_type}
    if signed:
        headers["X-Twilio-Signature"] = sign(PUBLIC_URL + INBOUND, b"")

    response = httpx.post(server.url + INBOUND, content=body, headers=headers)

    refused(response, status, error, detail)
    assert db.snapshot() == before


def test_a_webhook_signed_with_another_token_is_403(twilio_app, serve, db):
    server = serve(twilio_app())

    response = post_signed(server.url, INBOUND, payload("sms_with_geo"), token="f" * 32)

    refused(response, 403, "forbidden", "does not match")
    assert db.count("messages") == 0


def test_a_webhook_signed_with_a_shared_key_is_stored(twilio_app, serve, db):
    server = serve(twilio_app(twilio={"shared_key": "shared-key-secret"}))

    response = post_signed(server.url, INBOUND, payload("sms_with_geo"), token="shared-key-secret",
                           shared_key_algorithm="HMAC_SHA256")

    assert response.status_code == 200, response.text
    assert db.count("messages") == 1


def test_an_unconfigured_plugin_receives_nothing(make_app, serve, db):
    server = serve(make_app())

    response = post_signed(server.url, INBOUND, payload("sms_with_geo"))

    refused(response, 404, "unknown_provider", "twilio")
    assert db.count("messages") == 0


# -- status callbacks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("status_sent", DeliveryStatus.SENT, None),
        ("status_delivered", DeliveryStatus.DELIVERED, None),
        ("status_undelivered", DeliveryStatus.UNDELIVERED, "30003"),
        ("status_failed", DeliveryStatus.FAILED, "30007"),
    ],
)
def test_a_recorded_status_callback_becomes_a_status_update(name, status, code):
    update = normalize(TwilioEvent("status", FormData(fields(payload(name)))))

    assert (update.provider_message_id, update.status, update.error_code) == (
        "SM8293a4b5c6d7e8f90a1b2c3d4e5f6071", status, code)


def test_a_status_callback_without_a_status_is_malformed():
    with pytest.raises(Malformed, match="missing MessageStatus"):
        normalize(TwilioEvent("status", FormData(fields(edit(edit(payload("status_sent"), drop="MessageStatus"),
                                                             drop="SmsStatus")))))


def test_a_status_callback_for_an_unknown_message_or_status_is_acknowledged_and_changes_nothing(twilio_app, serve,
                                                                                                  db):
    server = serve(twilio_app())
    before = db.snapshot()
    new_status = edit(edit(payload("status_sent"), drop="MessageStatus", add="MessageStatus=partially_delivered"),
                      drop="SmsStatus")

    unknown_message = post_signed(server.url, STATUS, payload("status_delivered"))
    unknown_status = post_signed(server.url, STATUS, new_status)

    assert (unknown_message.status_code, unknown_status.status_code) == (200, 200)
    # The report on an unknown message is held in case its send is recorded a moment later (its inbox entry
    # recognises a retry); the unknown status is ignored; no message changes.
    assert db.snapshot() == {**before, "held_statuses": 1, "inbox": 1}


def test_a_signed_get_status_callback_is_taken_as_a_post_one_is(twilio_app, serve, db):
    server = serve(twilio_app())
    before = db.snapshot()

    response = get_signed(server.url, STATUS, payload("status_delivered"))

    assert response.status_code == 200, response.text
    # Its message is not known here, so the report is held for it, exactly as the POSTed one is above.
    assert db.snapshot() == {**before, "held_statuses": 1, "inbox": 1}
    assert db.scalar("SELECT status FROM held_statuses") == "delivered"


def test_a_forged_status_callback_is_403(twilio_app, serve, db):
    server = serve(twilio_app())

    response = post_signed(server.url, STATUS, payload("status_delivered"), token="0" * 32)

    refused(response, 403, "forbidden", "does not match")
