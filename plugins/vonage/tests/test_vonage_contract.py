"""Vonage runs the provider contract suite: signed webhooks (form and JSON), long messages in parts, its codes."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from smsconnector.messages import DeliveryStatus
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.contract import (
    CONSUMER,
    ProviderContract,
    ProviderContractTests,
    SendFailure,
    SentPart,
    Webhook,
)
from smsconnector.testing.hostile import form_bodies, json_bodies
from smsconnector.webhooks import parse_form
from smsconnector_vonage.fake import FakeVonage
from smsconnector_vonage.signature import signature

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
#: signs the suite's webhooks; never started (the suite starts a fake of its own for each test)
SIGNER = FakeVonage()
#: the inbound parameters a normalizer reads, for the hostile forms to break half of the time
READ = (
    "msisdn",
    "to",
    "messageId",
    "text",
    "type",
    "concat",
    "concat-ref",
    "concat-total",
    "concat-part",
    "timestamp",
    "sig",
)


def form(kind: str, params: Mapping[str, str]) -> Webhook:
    return Webhook(kind, urlencode(params).encode(), FORM)  # type: ignore[arg-type]


def params_of(webhook: Webhook) -> dict[str, str]:
    """The parameters a suite webhook carries, form or JSON."""
    if webhook.headers.get("Content-Type") == JSON["Content-Type"]:
        return dict(json.loads(webhook.body))
    return dict(parse_form(webhook.body.decode()))


def resigned(webhook: Webhook, params: Mapping[str, str]) -> Webhook:
    """``webhook`` carrying ``params`` instead, in the same encoding."""
    if webhook.headers.get("Content-Type") == JSON["Content-Type"]:
        return Webhook(webhook.kind, json.dumps(params).encode(), JSON)
    return form(webhook.kind, params)


class VonageContract(ProviderContract):
    """Vonage, as the contract suite drives it: the fake SMS API, signed callbacks, its send statuses."""

    name = "vonage"
    brand_number = BRAND_NUMBER
    status_table = {
        "accepted": DeliveryStatus.SENT,
        "buffered": DeliveryStatus.SENT,
        "unknown": DeliveryStatus.SENT,
        "delivered": DeliveryStatus.DELIVERED,
        "expired": DeliveryStatus.UNDELIVERED,
        "failed": DeliveryStatus.FAILED,
        "rejected": DeliveryStatus.FAILED,
    }
    #: Vonage's send status in the answer's messages, or an HTTP status
    send_errors = {
        "1": SendFailure("retried", "1"),
        "5": SendFailure("retried", "5"),
        "10": SendFailure("retried", "10"),
        "HTTP 429": SendFailure("retried", "429"),
        "HTTP 503": SendFailure("retried", "503"),
        "3": SendFailure("permanent", "3"),
        "6": SendFailure("permanent", "6"),
        "7": SendFailure("permanent", "7"),
        "8": SendFailure("permanent", "8"),
        "9": SendFailure("permanent", "9"),
        "15": SendFailure("permanent", "15"),
        "29": SendFailure("permanent", "29"),
    }
    loggers = ("smsconnector_vonage",)
    #: Vonage gives each part of a long message its own message-id, and a receipt for each
    part_receipts = "part_ids"

    def start_fake(self) -> FakeVonage:
        return FakeVonage().start()

    def stop_fake(self, fake: FakeVonage) -> None:
        fake.stop()

    def plugin_config(self, fake: FakeVonage) -> dict[str, Any]:
        return fake.plugin_config()

    def fail_next_send(self, fake: FakeVonage, error: str, *, to: str) -> None:
        if error.startswith("HTTP "):
            fake.respond_next(int(error.removeprefix("HTTP ")), body=b"Service unavailable")
        else:
            fake.fail_next(error)

    def send_attempts(self, fake: FakeVonage) -> int:
        return len(fake.requests)

    def signed_inbound(self, *, message_id: str, text: str, consumer: str = CONSUMER) -> Webhook:
        return form("inbound", SIGNER.inbound(text, message_id=message_id, msisdn=consumer[1:]))

    def forgeries(self, webhook: Webhook) -> Mapping[str, Webhook]:
        params = params_of(webhook)
        unsigned = {k: v for k, v in params.items() if k != "sig"}
        changed = next(k for k in ("text", "status") if k in params)
        stale = {**unsigned, "timestamp": str(int(time.time()) - 3600)}
        return {
            "unsigned": resigned(webhook, unsigned),
            "a signed field changed": resigned(webhook, {**params, changed: params[changed] + "!"}),
            "signed with another secret": resigned(webhook, {**params, "sig": signature(unsigned, "guess", "md5hash")}),
            "signed by another method": resigned(
                webhook, {**params, "sig": signature(unsigned, SIGNER.signature_secret, "sha256")}
            ),
            "stale, signed again": resigned(
                webhook, {**stale, "sig": signature(stale, SIGNER.signature_secret, "md5hash")}
            ),
            "sig alone": resigned(webhook, {"sig": params["sig"]}),
        }

    def receipt(self, provider_message_id: str, status: str) -> Webhook:
        err_code = "0" if self.status_table[status] in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED) else "6"
        body = SIGNER.receipt(provider_message_id, status, err_code=err_code)
        return Webhook("status", json.dumps(body).encode(), JSON)

    def part_receipt(self, part: SentPart, status: str) -> Webhook:
        assert part.part_id is not None
        return self.receipt(part.part_id, status)

    def hostile_webhooks(self) -> st.SearchStrategy[Webhook]:
        def valid(kind: str) -> dict[str, str]:
            if kind == "receipt":
                params = SIGNER.receipt(SIGNER.inbound("")["messageId"], "failed", err_code="6")
            else:
                params = SIGNER.inbound("Hi, is my order on its way?", concat=(9, 3, 2) if kind == "part" else None)
            return {k: v for k, v in params.items() if k != "sig"}

        def signed_form(kind: str, pairs: list[tuple[str, str]]) -> Webhook:
            raw = "&".join(f"{name}={value}" for name, value in pairs if name != "sig").encode()
            try:
                params = dict(parse_form(raw.decode("utf-8")))
            except (UnicodeDecodeError, ValueError):
                return Webhook(kind, raw, FORM)  # type: ignore[arg-type]  # no form: refused before any signature
            sig = signature(params, SIGNER.signature_secret, SIGNER.signature_method)
            return Webhook(kind, raw + f"&sig={sig}".encode(), FORM)  # type: ignore[arg-type]

        def signed_json(raw: bytes) -> Webhook:
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):  # not JSON, or nested past Python's parser: refused unsigned
                data = None
            if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
                data["sig"] = signature(data, SIGNER.signature_secret, SIGNER.signature_method)
                raw = json.dumps(data).encode()
            return Webhook("status", raw, JSON)

        inbound = st.sampled_from(["inbound", "part"]).flatmap(
            lambda kind: form_bodies(list(valid(kind).items()), read=READ).map(lambda p: signed_form("inbound", p))
        )
        receipts = st.builds(lambda: valid("receipt")).flatmap(lambda v: json_bodies(v).map(signed_json))
        return st.one_of(inbound, receipts)

    def long_message_parts(self, *, text: str, reference: int, consumer: str = CONSUMER) -> list[Webhook]:
        return [form("inbound", part) for part in SIGNER.inbound_parts(text, reference=reference, msisdn=consumer[1:])]


class TestVonageContract(ProviderContractTests):
    contract = VonageContract()
