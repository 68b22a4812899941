"""A stand-in OpenMarket on loopback, over real HTTP, for tests and benchmarks.

It serves the v4 MT endpoint (Basic auth, ``202 Accepted`` with the ticket in ``Location``, scripted errors
and stalls), records every request, and talks back to a host as OpenMarket does: MOs (a long one as hex
parts with a UDH each) and one delivery receipt per part, each POSTed with the Basic credentials
OpenMarket is provisioned with and its ``User-Agent``/``X-API-Version`` headers::

    with FakeOpenMarket() as fake:
        app = make_app(plugins={"openmarket": fake.plugin_config()})
        server = live_server(app)
        fake.post_mo(server.url, fake.mo_parts("a long text...", reference=7), order=[2, 1, 3])
        ...  # the host replies; fake.accepted[0] is the MT it sent
        fake.post_receipts(server.url, fake.accepted[0])

The shapes of MOs follow OpenMarket's documented example; the JSON nesting of receipts and of error bodies
is not documented and follows the v3 receipt's layout (see the plugin's README).
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector.plugin import segment, utcnow
from smsconnector.segments import split_for_concatenation
from smsconnector.testing.fake import FakeProvider

from .client import MT_PATH

ACCOUNT_ID = "000-000-000-00000"
PASSWORD = "fake-mt-password"
INBOUND_USERNAME = "openmarket"
INBOUND_PASSWORD = "fake-inbound-password"
#: Where the fake's Location headers point, as OpenMarket's do; only the last path segment matters.
TICKET_BASE = "https://smsc.openmarket.com/sms/v4/mt/"
#: Headers OpenMarket sends with its callbacks.
CALLBACK_HEADERS = {"User-Agent": "OpenMarket", "X-API-Version": "4", "Content-Type": "application/json; charset=UTF-8"}
#: Receipt codes and the SMPP state each comes with (from OpenMarket's receipt code table).
STATES = {0: "DELIVRD", 4: "DELIVRD", 341: "REJECTD", 345: "UNDELIV", 351: "UNDELIV", 607: "REJECTD"}
DESCRIPTIONS = {0: "Message sent", 4: "Message delivered", 341: "Value of mobileOperator does not exist",
                345: "Mobile operator not found for the destination address", 351: "Invalid destination address",
                607: "Message identified as spam"}


@dataclass
class Accepted:
    """An MT the fake accepted: its ticket, its request, and how many parts OpenMarket would send."""

    ticket: str
    body: dict[str, Any]
    parts: int

    @property
    def text(self) -> str:
        return str(self.body["mobileTerminate"]["message"]["content"])

    @property
    def receipt_url(self) -> str:
        return str(self.body["mobileTerminate"]["delivery"]["url"])


class FakeOpenMarket(FakeProvider):
    """OpenMarket's v4 HTTP API, as far as smsconnector uses it, on ``127.0.0.1``."""

    def __init__(self, *, account_id: str = ACCOUNT_ID, password: str = PASSWORD,
                 inbound_username: str = INBOUND_USERNAME, inbound_password: str = INBOUND_PASSWORD) -> None:
        self.account_id, self.password = account_id, password
        self.inbound_auth = (inbound_username, inbound_password)
        self.accepted: list[Accepted] = []
        self._tickets = itertools.count(1)
        self._mo_tickets = itertools.count(1)
        super().__init__()

    def endpoints(self) -> list[Route]:
        return [Route(MT_PATH, self._mobile_terminate, methods=["POST"])]

    def plugin_config(self, **overrides: Any) -> dict[str, Any]:
        """``[plugins.openmarket]`` for a host that sends to this fake and accepts its callbacks."""
        return {"account_id": self.account_id, "password": self.password, "api_base_url": self.url,
                "inbound_username": self.inbound_auth[0], "inbound_password": self.inbound_auth[1], **overrides}

    # -- the MT endpoint ---------------------------------------------------------------------------------

    def fail_next(self, status: int, code: int | None = None, description: str = "refused", *, times: int = 1,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` MT requests with ``status`` and an error body carrying ``code``."""
        body = {"error": {"code": code, "description": description}} if code is not None else None
        self.respond_next(status, json=body, headers=headers, times=times)

    def refuse(self, request: Request) -> Response | None:
        if self._authorized(request.headers.get("authorization", "")):
            return None
        return _error(401, 1001, "Authentication failed", {"WWW-Authenticate": 'Basic realm="OpenMarket"'})

    async def _mobile_terminate(self, request: Request, body: bytes) -> Response:
        try:
            data = json.loads(body)
            mt = data["mobileTerminate"]
            destination, message = mt["destination"]["address"], mt["message"]
            content, kind = message["content"], message["type"]
        except (ValueError, KeyError, TypeError):
            return _error(400, 1000, "The request body is not a valid mobileTerminate")
        if not isinstance(destination, str) or not destination.isdigit():
            return _error(400, 351, "Invalid destination address")  # digits only: international, no '+'
        if kind != "text" or not isinstance(content, str) or not content:
            return _error(400, 1000, "message.type must be text with content")
        ticket = f"{next(self._tickets):05d}-{uuid.uuid4().hex[:5].upper()}-MTFAK"
        self.accepted.append(Accepted(ticket, data, max(1, segment(content).count)))
        return Response(status_code=202, headers={"Location": TICKET_BASE + ticket,
                                                  "X-Request-Id": f"BAC={ticket}"})

    def _authorized(self, authorization: str) -> bool:
        expected = base64.b64encode(f"{self.account_id}:{self.password}".encode()).decode()
        return hmac.compare_digest(authorization.encode(), f"Basic {expected}".encode())

    # -- calling the host back ---------------------------------------------------------------------------

    def mo(self, text: str, *, source: str = "14155550123", destination: str = "15555550100",
           destination_ton: int = 1, ticket: str | None = None) -> dict[str, Any]:
        """A single-part MO as OpenMarket posts it: plain ``text``, or hex when it holds control characters."""
        plain = text.isprintable()
        message = ({"type": "text", "content": text} if plain else
                   {"type": "hexEncodedText", "content": text.encode("utf-8").hex(), "udh": False})
        return self._mo_body(message, source, destination, destination_ton, ticket)

    def mo_parts(self, text: str, *, reference: int, reference_bits: Literal[8, 16] = 8,
                 source: str = "14155550123", destination: str = "15555550100",
                 destination_ton: int = 1) -> list[dict[str, Any]]:
        """The MOs of a long message: one per part, hex-encoded, the UDH first, each with its own ticket."""
        return [self.mo_part(raw, source=source, destination=destination, destination_ton=destination_ton)
                for raw in split_for_concatenation(text, reference, reference_bits=reference_bits)]

    def mo_part(self, raw: bytes, *, source: str = "14155550123", destination: str = "15555550100",
                destination_ton: int = 1, ticket: str | None = None) -> dict[str, Any]:
        """One part: ``raw`` is the UDH and the part's bytes, as a handset sent them."""
        return self._mo_body({"type": "hexEncodedText", "content": raw.hex(), "udh": True}, source, destination,
                             destination_ton, ticket)

    def _mo_body(self, message: dict[str, Any], source: str, destination: str, destination_ton: int,
                 ticket: str | None) -> dict[str, Any]:
        return {"mobileOriginate": {
            "submittedDate": utcnow().isoformat(timespec="milliseconds"),
            "ticketId": ticket or f"{next(self._mo_tickets):05d}-{uuid.uuid4().hex[:5].upper()}-MOFAK",
            "source": {"ton": 1, "address": source, "mobileOperatorId": 383},
            "destination": {"ton": destination_ton, "address": destination},
            "message": message,
        }}

    def receipts(self, accepted: Accepted, *, code: int = 4, codes: dict[int, int] | None = None
                 ) -> list[dict[str, Any]]:
        """One receipt per part of ``accepted``, all with ``code`` unless ``codes`` names a part's own."""
        note = accepted.body["mobileTerminate"].get("options", {}).get("note1")
        return [self.receipt(accepted.ticket, (codes or {}).get(n, code), segment_number=n,
                             total_segments=accepted.parts, note1=note) for n in range(1, accepted.parts + 1)]

    @staticmethod
    def receipt(ticket: str, code: int = 4, *, segment_number: int | None = None,
                total_segments: int | None = None, note1: str | None = None) -> dict[str, Any]:
        """A delivery receipt (its JSON nesting follows the documented v3 receipt; see the README)."""
        receipt: dict[str, Any] = {
            "ticketId": ticket,
            "response": {"code": code, "description": DESCRIPTIONS.get(code, "Message failed")},
            "message": {"deliveryDate": utcnow().isoformat(timespec="milliseconds"),
                        "state": {"id": 2 if code in (0, 4) else 5, "description": STATES.get(code, "UNDELIV")}},
        }
        if segment_number is not None:
            receipt.update(segmentNumber=segment_number, totalSegments=total_segments)
        if note1 is not None:
            receipt["note1"] = note1
        return {"deliveryReceipt": receipt}

    def post_mo(self, host_url: str, bodies: dict[str, Any] | Sequence[dict[str, Any]], *,
                order: Iterable[int] | None = None, auth: tuple[str, str] | None = None) -> list[httpx.Response]:
        """POST MOs to ``host_url``'s inbound webhook, in ``order`` (1-based indexes, repeats allowed)."""
        items = [bodies] if isinstance(bodies, dict) else list(bodies)
        picked = [items[n - 1] for n in order] if order is not None else items
        return [self._post(f"{host_url}/webhooks/openmarket/inbound", body, auth) for body in picked]

    def post_receipts(self, host_url: str, receipts: dict[str, Any] | Sequence[dict[str, Any]] | Accepted, *,
                      order: Iterable[int] | None = None, auth: tuple[str, str] | None = None
                      ) -> list[httpx.Response]:
        """POST receipts as OpenMarket does, to the path the MT asked for (``delivery.url``) on ``host_url``."""
        path = "/webhooks/openmarket/status"
        if isinstance(receipts, Accepted):
            path = urlsplit(receipts.receipt_url).path
            receipts = self.receipts(receipts)
        items = [receipts] if isinstance(receipts, dict) else list(receipts)
        picked = [items[n - 1] for n in order] if order is not None else items
        return [self._post(host_url + path, body, auth) for body in picked]

    def _post(self, url: str, body: dict[str, Any], auth: tuple[str, str] | None) -> httpx.Response:
        return self.caller().post(url, content=json.dumps(body).encode(), headers=CALLBACK_HEADERS,
                                  auth=auth or self.inbound_auth)


def _error(status: int, code: int | None, description: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "description": description}} if code is not None else {}
    return JSONResponse(body, status_code=status, headers=headers)
