"""The plugins' fake providers, each served alone (``uvicorn fakes:twilio``) so it never shares the host's GIL.

``FAKE_LATENCY`` adds seconds before each answer, as a provider's API takes time to reply. Each app also
answers ``GET /bench/arrivals``: when each send arrived, by sender number, for the throttling check.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qsl

from harness import ACCOUNT_SID, AUTH_TOKEN, OPENMARKET
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsconnector_openmarket.fake import FakeOpenMarket
from smsconnector_twilio.fake import FakeTwilio

LATENCY = float(os.environ.get("FAKE_LATENCY", "0"))


class Arrivals:
    """Wraps a fake: notes the arrival time and sender of every send, and serves them at /bench/arrivals."""

    def __init__(self, app: ASGIApp, send_path: str, sender: Any) -> None:
        self.app, self.send_path, self.sender = app, send_path, sender
        self.by_sender: defaultdict[str, list[float]] = defaultdict(list)
        self.in_flight = self.max_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(self.send_path):
            if scope["type"] == "http" and scope["path"] == "/bench/arrivals":
                body = json.dumps({"by_sender": self.by_sender, "max_in_flight": self.max_in_flight}).encode()
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
            await self.app(scope, receive, send)
            return
        arrived = time.time()
        chunks: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if LATENCY:
                await asyncio.sleep(LATENCY)
            await self.app(scope, recording_receive, send)
        finally:
            self.in_flight -= 1
        with_sender = self.sender(b"".join(chunks))
        if with_sender:
            self.by_sender[with_sender].append(arrived)


def _twilio_from(body: bytes) -> str | None:
    return dict(parse_qsl(body.decode())).get("From")


def _openmarket_from(body: bytes) -> str | None:
    try:
        return str(json.loads(body)["mobileTerminate"]["source"]["address"])
    except (ValueError, KeyError, TypeError):
        return None


twilio = Arrivals(FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).app, "/Messages.json", _twilio_from)
openmarket = Arrivals(FakeOpenMarket(account_id=OPENMARKET["account_id"], password=OPENMARKET["password"]).app,
                      "/sms/v4/mt", _openmarket_from)
