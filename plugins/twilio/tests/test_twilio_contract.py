"""Twilio runs the provider contract suite: signed webhooks, forgeries, receipts and send errors, on both databases."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

from smsconnector.testing.contract import (
    CONSUMER,
    PUBLIC_URL,
    ProviderContract,
    ProviderContractTests,
    SendFailure,
    Webhook,
)
from smsconnector.testing.hostile import form_bodies
from smsconnector.webhooks import parse_form
from smsconnector_twilio.fake import (
    INVALID_TO,
    NOT_MOBILE,
    OPTED_OUT,
    REGION_NOT_ENABLED,
    SERVER_ERROR,
    TOO_MANY_REQUESTS,
    Failure,
    FakeTwilio,
)
from smsconnector_twilio.webhook import STATUSES

ACCOUNT_SID = "AC1234567890abcdef1234567890abcdef"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
FORM = "application/x-www-form-urlencoded"
#: what the plugin reads of a webhook: the hostile bodies break these half of the time
READ = (
    "MessageSid",
    "From",
    "To",
    "Body",
    "NumSegments",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "OptOutType",
    "FromCity",
    "MessagingServiceSid",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ErrorMessage",
)
FAILURES: dict[str, Failure] = {
    str(f.code): f for f in (TOO_MANY_REQUESTS, SERVER_ERROR, INVALID_TO, REGION_NOT_ENABLED, NOT_MOBILE, OPTED_OUT)
}
#: what a forger changes after Twilio signed: the text of a message, the status of a receipt
CHANGED = {"Body": "Send me a refund", "MessageStatus": "delivered", "SmsStatus": "delivered"}
_sids = itertools.count(1)


def sign(url: str, fields: list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """Twilio's signature of form ``fields`` posted to ``url``."""
    params: dict[str, list[str]] = {}
    for key, value in fields:
        params.setdefault(key, []).append(value)
    return str(RequestValidator(token).compute_signature(url, _Multi(params)))


class _Multi(dict[str, list[str]]):
    """Form fields as the validator reads a multi-dict."""

    def getlist(self, key: str) -> list[str]:
        return self[key]


def signed(
    kind: str,
    fields: list[tuple[str, str]],
    *,
    token: str = AUTH_TOKEN,
    sign_path: str | None = None,
    body: bytes | None = None,
) -> Webhook:
    """A form webhook to ``kind``, signed over the public URL (or ``sign_path``) with ``token``."""
    url = f"{PUBLIC_URL}{sign_path or f'/webhooks/twilio/{kind}'}"
    return Webhook(
        kind,
        urlencode(fields).encode() if body is None else body,  # type: ignore[arg-type]
        {"Content-Type": FORM, SIGNATURE_HEADER: sign(url, fields, token)},
    )


def inbound_fields(sid: str, text: str, consumer: str) -> list[tuple[str, str]]:
    """An inbound SMS's parameters, as Twilio posts them."""
    return [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", "94105"),
        ("SmsSid", sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", text),
        ("FromCountry", "US"),
        ("To", TwilioContract.brand_number),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", consumer),
        ("ApiVersion", "2010-04-01"),
    ]


def status_fields(sid: str, status: str) -> list[tuple[str, str]]:
    """A status callback's parameters, with Twilio's error code where it gives one."""
    fields = [
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", CONSUMER),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", TwilioContract.brand_number),
        ("ApiVersion", "2010-04-01"),
    ]
    if status in ("failed", "undelivered"):
        fields += [("ErrorCode", "30003"), ("ErrorMessage", "Unreachable destination handset")]
    return fields


class TwilioContract(ProviderContract):
    """Twilio, as the contract suite drives it: the fake account, signed form webhooks, its codes."""

    name = "twilio"
    brand_number = "+14155550100"
    status_table = STATUSES
    send_errors = {
        "20429": SendFailure("retried", "20429"),
        "20500": SendFailure("retried", "20500"),
        "21211": SendFailure("permanent", "21211"),
        "21408": SendFailure("permanent", "21408"),
        "21614": SendFailure("permanent", "21614"),
        "21610": SendFailure("opted_out", "21610"),
    }
    loggers = ("smsconnector_twilio", "twilio")

    def start_fake(self) -> FakeTwilio:
        return FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()

    def stop_fake(self, fake: FakeTwilio) -> None:
        fake.stop()

    def plugin_config(self, fake: FakeTwilio) -> dict[str, Any]:
        return {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": fake.url}

    def fail_next_send(self, fake: FakeTwilio, error: str, *, to: str) -> None:
        fake.fail(FAILURES[error], to=to)

    def send_attempts(self, fake: FakeTwilio) -> int:
        return len(fake.message_requests())

    def new_message_id(self) -> str:
        return "SM" + uuid.uuid4().hex

    def signed_inbound(self, *, message_id: str, text: str, consumer: str = CONSUMER) -> Webhook:
        return signed("inbound", inbound_fields(message_id, text, consumer))

    def forgeries(self, webhook: Webhook) -> Mapping[str, Webhook]:
        body, fields = webhook.body, _pairs(webhook.body)
        signature = {"Content-Type": FORM, SIGNATURE_HEADER: webhook.headers[SIGNATURE_HEADER]}
        changed = [(key, CHANGED.get(key, value)) for key, value in fields]
        other = (
            self.signed_inbound(message_id=self.new_message_id(), text="Hello")
            if webhook.kind == "inbound"
            else (self.receipt(self.new_message_id(), "delivered"))
        )
        return {
            "unsigned": Webhook(webhook.kind, body, {"Content-Type": FORM}),
            "a value changed after signing": Webhook(webhook.kind, urlencode(changed).encode(), signature),
            "a field added after signing": Webhook(webhook.kind, body + b"&OptOutType=STOP", signature),
            "signed with another token": signed(webhook.kind, fields, token="f" * 32),
            "signed for the other webhook": signed(
                webhook.kind,
                fields,
                sign_path="/webhooks/twilio/" + ("status" if webhook.kind == "inbound" else "inbound"),
            ),
            "another message's signature": Webhook(
                webhook.kind, body, {"Content-Type": FORM, SIGNATURE_HEADER: other.headers[SIGNATURE_HEADER]}
            ),
        }

    def receipt(self, provider_message_id: str, status: str) -> Webhook:
        return signed("status", status_fields(provider_message_id, status))

    def hostile_webhooks(self) -> st.SearchStrategy[Webhook]:
        def valid(kind: str) -> list[tuple[str, str]]:
            sid = f"SM{next(_sids):032d}"  # a new message each time, not a retry
            if kind == "inbound":
                return inbound_fields(sid, "Hi, is my order on its way?", CONSUMER)
            return status_fields(sid, "failed")

        def sign_raw(kind: str, pairs: list[tuple[str, str]]) -> Webhook:
            raw = "&".join(f"{name}={value}" for name, value in pairs).encode()
            return signed(kind, list(_pairs(raw)), body=raw)

        return st.sampled_from(["inbound", "status"]).flatmap(
            lambda kind: form_bodies(valid(kind), read=READ).map(lambda pairs: sign_raw(kind, pairs))
        )


def _pairs(body: bytes) -> list[tuple[str, str]]:
    """The fields of a form body as the host reads them, and Twilio signs them; none when it is no form."""
    try:
        return parse_form(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []


class TestTwilioContract(ProviderContractTests):
    contract = TwilioContract()
