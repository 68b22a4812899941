"""A provider that gives each part of a long message its own id and reports on each part under it, as Vonage
does, described for the contract suite's per-part tests; and a copy that forgets to keep the parts' ids.

Only the per-part tests are run on it (tests/test_contract_part_ids.py): the adapter's other methods say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from smsconnector.plugin import (
    DeliveryStatus,
    OutboundMessage,
    Received,
    SendResult,
    StatusUpdate,
    WebhookRequest,
    hookimpl,
    segment,
)
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.contract import (
    CONSUMER,
    ProviderContract,
    ProviderContractTests,
    SendFailure,
    SentPart,
    Webhook,
)

NAME = "pieces"
STATUSES = {"delivered": DeliveryStatus.DELIVERED, "expired": DeliveryStatus.UNDELIVERED}


class Pieces:
    """Accepts a message as one id per part (``<message id>-<part>``); a receipt is JSON ``{"id", "status"}``."""

    def __init__(self, *, keeps_part_ids: bool = True) -> None:
        self.keeps_part_ids = keeps_part_ids

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest) -> Received | None:
        if provider != NAME:
            return None
        return Received(events=[request.json()])

    @hookimpl
    def smsconnector_normalize(self, provider: str, event: Any) -> StatusUpdate | None:
        if provider != NAME:
            return None
        status = STATUSES[event["status"]]
        code = "E-EXPIRED" if status is DeliveryStatus.UNDELIVERED else None
        return StatusUpdate(provider=NAME, provider_message_id=event["id"], status=status, error_code=code)

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage) -> Any:
        if provider != NAME:
            return None
        return self._send(message)

    async def _send(self, message: OutboundMessage) -> SendResult:
        ids = [f"{message.id}-{n}" for n in range(1, segment(message.text).count + 1)]
        return SendResult.of_parts(ids) if self.keeps_part_ids else SendResult(ids[0], segments=len(ids))


class PiecesContract(ProviderContract):
    name = NAME
    brand_number = BRAND_NUMBER
    status_table = STATUSES
    send_errors: Mapping[str, SendFailure] = {}
    part_receipts = "part_ids"
    keeps_part_ids = True

    def register(self) -> list[tuple[str, Any]]:
        return [(NAME, Pieces(keeps_part_ids=self.keeps_part_ids))]

    def start_fake(self) -> None:
        return None

    def stop_fake(self, fake: None) -> None:
        return None

    def plugin_config(self, fake: None) -> dict[str, Any]:
        return {}

    def receipt(self, provider_message_id: str, status: str) -> Webhook:
        body = json.dumps({"id": provider_message_id, "status": status}).encode()
        return Webhook("status", body, {"Content-Type": "application/json"})

    def part_receipt(self, part: SentPart, status: str) -> Webhook:
        assert part.part_id is not None
        return self.receipt(part.part_id, status)

    def fail_next_send(self, fake: None, error: str, *, to: str) -> None:
        raise NotImplementedError("only the per-part tests run on this provider")

    def send_attempts(self, fake: None) -> int:
        raise NotImplementedError("only the per-part tests run on this provider")

    def signed_inbound(self, *, message_id: str, text: str, consumer: str = CONSUMER) -> Webhook:
        raise NotImplementedError("only the per-part tests run on this provider")

    def forgeries(self, webhook: Webhook) -> Mapping[str, Webhook]:
        raise NotImplementedError("only the per-part tests run on this provider")

    def hostile_webhooks(self) -> st.SearchStrategy[Webhook]:
        raise NotImplementedError("only the per-part tests run on this provider")


class ForgetfulPiecesContract(PiecesContract):
    keeps_part_ids = False


class TestPieces(ProviderContractTests):
    contract = PiecesContract()


class TestForgetfulPieces(ProviderContractTests):
    contract = ForgetfulPiecesContract()
