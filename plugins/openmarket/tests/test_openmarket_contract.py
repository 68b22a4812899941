"""OpenMarket runs the provider contract suite: Basic-authenticated MOs and receipts, long MOs in parts, its codes."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Mapping
from typing import Any

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
from smsconnector.testing.hostile import json_bodies
from smsconnector_openmarket.fake import INBOUND_PASSWORD, INBOUND_USERNAME, FakeOpenMarket

JSON = "application/json; charset=UTF-8"
#: builds MOs and receipts; never started (the suite starts a fake of its own for each test)
BODIES = FakeOpenMarket()
_tickets = itertools.count(1)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


AUTHENTIC = {"Content-Type": JSON, "Authorization": basic(INBOUND_USERNAME, INBOUND_PASSWORD)}


def webhook(kind: str, body: dict[str, Any] | bytes) -> Webhook:
    """``body`` posted to ``kind`` with the credentials OpenMarket is provisioned with."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Webhook(kind, raw, AUTHENTIC)  # type: ignore[arg-type]


def receipt(ticket: str, status: str, **part: int) -> dict[str, Any]:
    """A receipt for the whole message ``ticket``: ``status`` is the code and the SMPP state, ``"4/DELIVRD"``."""
    code, _, state = status.partition("/")
    body = FakeOpenMarket.receipt(ticket, int(code), **part)
    body["deliveryReceipt"]["message"]["state"]["description"] = state
    return body


class OpenMarketContract(ProviderContract):
    """OpenMarket, as the contract suite drives it: the fake MT API, Basic-authenticated callbacks, its codes."""

    name = "openmarket"
    brand_number = BRAND_NUMBER
    #: receipt code and SMPP state: 0 is "sent to the carrier", 4 "delivered"; REJECTD refused, the rest undelivered
    status_table = {
        "0/DELIVRD": DeliveryStatus.SENT,
        "3/ENROUTE": DeliveryStatus.SENT,
        "3/ACCEPTD": DeliveryStatus.SENT,
        "4/DELIVRD": DeliveryStatus.DELIVERED,
        "341/REJECTD": DeliveryStatus.FAILED,
        "607/REJECTD": DeliveryStatus.FAILED,
        "345/UNDELIV": DeliveryStatus.UNDELIVERED,
        "351/EXPIRED": DeliveryStatus.UNDELIVERED,
    }
    #: HTTP status and OpenMarket's code
    send_errors = {
        "408/1408": SendFailure("retried", "1408"),
        "429/1010": SendFailure("retried", "1010"),
        "500/1500": SendFailure("retried", "1500"),
        "503": SendFailure("retried", "503"),
        "400/351": SendFailure("permanent", "351"),
        "403/607": SendFailure("permanent", "607"),
        "404": SendFailure("permanent", "404"),
    }
    loggers = ("smsconnector_openmarket",)
    #: one receipt per part, each under the MT's one ticket with its segmentNumber and totalSegments
    part_receipts = "segments"

    def start_fake(self) -> FakeOpenMarket:
        return FakeOpenMarket().start()

    def stop_fake(self, fake: FakeOpenMarket) -> None:
        fake.stop()

    def plugin_config(self, fake: FakeOpenMarket) -> dict[str, Any]:
        return fake.plugin_config()

    def fail_next_send(self, fake: FakeOpenMarket, error: str, *, to: str) -> None:
        status, _, code = error.partition("/")
        fake.fail_next(int(status), int(code) if code else None)

    def send_attempts(self, fake: FakeOpenMarket) -> int:
        return len(fake.requests)

    def signed_inbound(self, *, message_id: str, text: str, consumer: str = CONSUMER) -> Webhook:
        return webhook("inbound", BODIES.mo(text, source=consumer[1:], ticket=message_id))

    def forgeries(self, webhook: Webhook) -> Mapping[str, Webhook]:
        def posted(authorization: str | None) -> Webhook:
            headers = {"Content-Type": JSON} | ({"Authorization": authorization} if authorization else {})
            return Webhook(webhook.kind, webhook.body, headers)

        return {
            "no credentials": posted(None),
            "wrong password": posted(basic(INBOUND_USERNAME, "guess")),
            "wrong user": posted(basic("someone", INBOUND_PASSWORD)),
            "the password alone": posted(basic("", INBOUND_PASSWORD)),
            "a bearer token": posted("Bearer " + INBOUND_PASSWORD),
            "Basic that is not base64": posted("Basic !!!"),
        }

    def receipt(self, provider_message_id: str, status: str) -> Webhook:
        return webhook("status", receipt(provider_message_id, status))

    def part_receipt(self, part: SentPart, status: str) -> Webhook:
        return webhook(
            "status", receipt(part.message_id, status, segment_number=part.sequence, total_segments=part.total)
        )

    def hostile_webhooks(self) -> st.SearchStrategy[Webhook]:
        def valid(kind: str) -> dict[str, Any]:
            ticket = f"T-{next(_tickets)}"  # a new message each time, not a retry
            if kind == "text":
                return BODIES.mo("Where is my order?", ticket=ticket)
            if kind == "part":
                return BODIES.mo_part(bytes([5, 0, 3, 8, 2, 2]) + b" thinking about it.", ticket=ticket)
            if kind == "hex":
                return BODIES.mo("Order 34\r\nNot arrived", ticket=ticket)
            return (
                receipt(ticket, "4/DELIVRD", segment_number=2, total_segments=3)
                if kind == "part receipt"
                else (receipt(ticket, "345/UNDELIV"))
            )

        return st.sampled_from(["text", "part", "hex", "part receipt", "receipt"]).flatmap(
            lambda kind: json_bodies(valid(kind)).map(
                lambda raw: webhook("status" if kind.endswith("receipt") else "inbound", raw)
            )
        )

    def long_message_parts(self, *, text: str, reference: int, consumer: str = CONSUMER) -> list[Webhook]:
        return [webhook("inbound", part) for part in BODIES.mo_parts(text, reference=reference, source=consumer[1:])]


class TestOpenMarketContract(ProviderContractTests):
    contract = OpenMarketContract()
