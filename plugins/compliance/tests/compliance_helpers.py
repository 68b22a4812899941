"""Helpers for the compliance plugin's tests: an in-process driver of the host's real pipeline, and a spy provider."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from smsconnector import inbound, outbound
from smsconnector.app import App
from smsconnector.messages import InboundMessage, MessageClass, OutboundMessage, SendResult, utcnow
from smsconnector.plugins import hookimpl
from smsconnector.store.models import Message, OutboxEntry
from smsconnector.testing import BRAND_NUMBER

#: A Miami mobile: America/New_York, Florida's rules.
CONSUMER = "+13055550142"
ADMIN_TOKEN = "admintoken"
AGENT_TOKEN = "agenttoken-1"


class Spy:
    """A provider that records every message handed to it, and what ``observe`` said at that moment."""

    def __init__(self) -> None:
        self.sent: list[tuple[OutboundMessage, Any]] = []
        self.observe: Callable[[OutboundMessage], Any] = lambda message: None
        self._ids = itertools.count(1)

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage) -> Any:
        """Accept everything for provider ``spy``."""
        if provider != "spy":
            return None
        self.sent.append((message, self.observe(message)))
        return self._accept()

    async def _accept(self) -> SendResult:
        return SendResult(provider_message_id=f"SPY{next(self._ids)}")


class Pipeline:
    """Drives the host's own inbound and outbound code in-process, on the app's store."""

    def __init__(self, app: App, provider: str = "simulator") -> None:
        self.app = app
        self.provider = provider
        self._ids = itertools.count(1)

    @property
    def compliance(self) -> Any:
        return self.app.plugin("compliance")

    def at(self, when: datetime) -> None:
        """Fix the compliance plugin's clock."""
        self.compliance.clock = lambda: when

    async def receive(self, text: str, *, consumer: str = CONSUMER, to: str = BRAND_NUMBER,
                      keyword: str | None = None) -> Message:
        message = InboundMessage(provider=self.provider, provider_message_id=f"in-{time.time_ns()}-{next(self._ids)}",
                                 from_number=consumer, to_number=to, text=text, provider_keyword=keyword)
        async with self.app.store.transaction() as session:
            await inbound.accept(self.app, session, message)
        async with self.app.store.session() as session:
            row = (await session.exec(select(Message).where(
                Message.provider_message_id == message.provider_message_id))).scalars().one()
        return row

    async def queue(self, text: str, *, consumer: str = CONSUMER, message_class: MessageClass = "conversational",
                    frm: str = BRAND_NUMBER) -> int:
        async with self.app.store.transaction() as session:
            message = await outbound.queue(session, provider=self.provider, from_number=frm, to_number=consumer,
                                           text=text, message_class=message_class)
        assert message.id is not None
        return message.id

    async def drain(self, timeout: float = 10.0) -> None:
        """Run the sender until no due outbox row is left (deferred rows stay)."""
        deadline = time.monotonic() + timeout
        while True:
            await self.app.sender.drain_once()
            async with self.app.store.session() as session:
                due = (await session.exec(select(OutboxEntry.id).where(OutboxEntry.due_at <= utcnow()))).first()
            if due is None:
                return
            if time.monotonic() > deadline:
                raise AssertionError("the outbox did not drain")
            await asyncio.sleep(0.01)

    async def message(self, message_id: int) -> Message:
        async with self.app.store.session() as session:
            row = await session.get(Message, message_id)
        assert row is not None
        return row

    async def outbound(self, consumer: str = CONSUMER) -> list[Message]:
        async with self.app.store.session() as session:
            return list((await session.exec(select(Message).where(
                Message.direction == "outbound", Message.to_number == consumer).order_by(Message.id))).scalars().all())

    async def close(self) -> None:
        """As the host stops: sends still in flight finish and are recorded, and the plugins stop their own
        tasks (the simulator's delivery reports), before the store closes. A commit or rollback left to its
        thread after the event loop closed would fail there."""
        await self.app.sender.stop()
        await self.app.hooks.shutdown()
        await self.app.store.close()


def compliance_counts(db: Any) -> dict[str, int]:
    """Row counts of the host's tables and the plugin's."""
    return {**db.snapshot(), "compliance_ledger": db.count("compliance_ledger"),
            "compliance_sends": db.count("compliance_sends")}
