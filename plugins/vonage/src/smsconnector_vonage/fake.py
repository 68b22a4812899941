"""A stand-in Vonage on loopback, over real HTTP, for tests.

It serves the SMS API's send endpoint (``POST /sms/json``: the account's key and secret in the form, one entry
per part in the answer, each with its own ``message-id``; scripted errors and stalls), records every request,
and talks back to a host as Vonage does: inbound messages (a long one as parts with ``concat-ref``,
``concat-total``, ``concat-part``) and one delivery receipt per part, signed with the account's signature
secret and sent as GET, form-encoded POST or JSON POST::

    with FakeVonage() as fake:
        app = make_app(plugins={"vonage": fake.plugin_config()})
        server = live_server(app)
        fake.post(server.url, "inbound", fake.inbound("Where is my parcel?"), how="json")
        ...  # the host replies; fake.accepted[0] is the send it made
        fake.post_receipts(server.url, fake.accepted[0], errors={2: "6"})

Shapes follow Vonage's documented webhook fields and its SDKs' recorded send answers; see the README for what
the documentation leaves open.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector.plugin import is_gsm, segment
from smsconnector.testing.fake import FakeProvider

from .client import SEND_PATH
from .settings import SignatureMethod
from .signature import SIGNATURE_PARAM, signature

API_KEY = "a1b2c3d4"
API_SECRET = "fake-api-secret"
SIGNATURE_SECRET = "fake-signature-secret"
#: the brand's virtual number and a consumer, as Vonage writes numbers: international digits without '+'
VIRTUAL_NUMBER = "15555550100"
CONSUMER = "14155550123"
#: Vonage's send statuses and their error texts (from its SMS API error table).
ERROR_TEXTS = {
    "1": "Throttled",
    "2": "Missing Parameters",
    "3": "Invalid Parameters",
    "4": "Invalid Credentials",
    "5": "Internal Error",
    "6": "Invalid Message",
    "7": "Number Barred",
    "8": "Partner Account Barred",
    "9": "Partner Quota Violation",
    "10": "Too Many Existing Binds",
    "15": "Invalid Sender Address",
    "29": "Non-Whitelisted Destination",
}
How = Literal["get", "form", "json"]


@dataclass
class Accepted:
    """A send the fake accepted: the parameters it got and the id it gave each part."""

    params: dict[str, str]
    ids: list[str]

    @property
    def callback(self) -> str:
        return self.params["callback"]


class FakeVonage(FakeProvider):
    """Vonage's SMS API, as far as smsconnector uses it, on ``127.0.0.1``."""

    def __init__(
        self, *, signature_secret: str = SIGNATURE_SECRET, signature_method: SignatureMethod = "md5hash"
    ) -> None:
        self.signature_secret, self.signature_method = signature_secret, signature_method
        self.accepted: list[Accepted] = []
        self._ids = itertools.count(0x0C000000217B7F02)
        super().__init__()

    def endpoints(self) -> list[Route]:
        return [Route(SEND_PATH, self._send, methods=["POST"])]

    def plugin_config(self, **overrides: Any) -> dict[str, Any]:
        """``[plugins.vonage]`` for a host that sends to this fake and accepts its signed callbacks."""
        return {
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "api_base_url": self.url,
            "signature_secret": self.signature_secret,
            "signature_method": self.signature_method,
            **overrides,
        }

    # -- the send endpoint ---------------------------------------------------------------------------------

    def fail_next(self, status: str, *, parts: int = 1, accepted: int = 0, times: int = 1) -> None:
        """Answer the next ``times`` sends with ``accepted`` parts accepted, then ``parts - accepted`` refused with
        Vonage's ``status`` (``"1"`` throttled, ``"7"`` number barred...), all in an HTTP 200 as Vonage does."""
        messages: list[dict[str, str]] = [self._part(CONSUMER, self._new_id()) for _ in range(accepted)]
        messages += [{"status": status, "error-text": ERROR_TEXTS.get(status, "Error")}] * (parts - accepted)
        self.respond_next(200, json={"message-count": str(parts), "messages": messages}, times=times)

    async def _send(self, request: Request, body: bytes) -> Response:
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if (params.get("api_key"), params.get("api_secret")) != (API_KEY, API_SECRET):
            return _refused("4")
        if not all(params.get(name) for name in ("from", "to", "text")):
            return _refused("2")
        if not params["to"].isdigit() or params.get("type", "text") not in ("text", "unicode"):
            return _refused("3")
        count = max(1, segment(params["text"]).count)
        ids = [self._new_id() for _ in range(count)]
        self.accepted.append(Accepted({k: v for k, v in params.items() if k != "api_secret"}, ids))
        return JSONResponse({"message-count": str(count), "messages": [self._part(params["to"], i) for i in ids]})

    def _new_id(self) -> str:
        return f"{next(self._ids):016X}"

    @staticmethod
    def _part(to: str, message_id: str) -> dict[str, str]:
        return {
            "to": to,
            "message-id": message_id,
            "status": "0",
            "remaining-balance": "15.53590000",
            "message-price": "0.03330000",
            "network": "23410",
        }

    # -- calling the host back -------------------------------------------------------------------------------

    def sign(self, params: Mapping[str, str], *, timestamp: int | None = None) -> dict[str, str]:
        """``params`` with the ``timestamp``, ``nonce`` and ``sig`` of a signed Vonage webhook."""
        signed = {
            **params,
            "timestamp": str(int(time.time()) if timestamp is None else timestamp),
            "nonce": secrets.token_hex(8),
        }
        signed[SIGNATURE_PARAM] = signature(signed, self.signature_secret, self.signature_method)
        return signed

    def inbound(
        self,
        text: str,
        *,
        message_id: str | None = None,
        msisdn: str = CONSUMER,
        to: str = VIRTUAL_NUMBER,
        concat: tuple[int, int, int] | None = None,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """A signed inbound SMS; ``concat`` is a part's (reference, total, part)."""
        params = {
            "msisdn": msisdn,
            "to": to,
            "messageId": message_id or self._new_id(),
            "text": text,
            "type": "text" if is_gsm(text) else "unicode",
            "keyword": text.split()[0].upper() if text.split() else "",
            "message-timestamp": _now(),
            "api-key": API_KEY,
        }
        if concat is not None:
            reference, total, part = concat
            params |= {
                "concat": "true",
                "concat-ref": str(reference),
                "concat-total": str(total),
                "concat-part": str(part),
            }
        return self.sign(params, timestamp=timestamp)

    def inbound_parts(
        self, text: str, *, reference: int, msisdn: str = CONSUMER, to: str = VIRTUAL_NUMBER
    ) -> list[dict[str, str]]:
        """The signed parts of a long inbound message, in order, each with its own ``messageId``."""
        texts = segment(text).segments
        return [
            self.inbound(part, msisdn=msisdn, to=to, concat=(reference, len(texts), n))
            for n, part in enumerate(texts, start=1)
        ]

    def receipt(
        self,
        message_id: str,
        status: str = "delivered",
        *,
        err_code: str = "0",
        to: str = VIRTUAL_NUMBER,
        msisdn: str = CONSUMER,
        client_ref: str | None = None,
    ) -> dict[str, str]:
        """A signed delivery receipt for the part ``message_id``."""
        params = {
            "msisdn": msisdn,
            "to": to,
            "network-code": "23410",
            "messageId": message_id,
            "price": "0.03330000",
            "status": status,
            "scts": datetime.now(UTC).strftime("%y%m%d%H%M"),
            "err-code": err_code,
            "api-key": API_KEY,
            "message-timestamp": _now(),
        }
        if client_ref is not None:
            params["client-ref"] = client_ref
        return self.sign(params)

    def receipts(
        self, accepted: Accepted, status: str = "delivered", *, failures: Mapping[int, tuple[str, str]] | None = None
    ) -> list[dict[str, str]]:
        """One receipt per part of ``accepted``; ``failures`` gives a part (1-based) its own status and err-code."""
        return [
            self.receipt(
                message_id,
                (failures or {}).get(n, (status, "0"))[0],
                err_code=(failures or {}).get(n, (status, "0"))[1],
                to=accepted.params["from"],
                msisdn=accepted.params["to"],
                client_ref=accepted.params.get("client-ref"),
            )
            for n, message_id in enumerate(accepted.ids, start=1)
        ]

    def post(self, url: str, params: Mapping[str, str], *, how: How = "form") -> httpx.Response:
        """Call ``url`` with ``params`` as Vonage does, by GET, form-encoded POST or JSON POST."""
        return self.caller().request(**request_args(url, params, how))

    def post_all(self, url: str, items: Iterable[Mapping[str, str]], *, how: How = "form") -> list[httpx.Response]:
        """:meth:`post` each of ``items`` in turn."""
        return [self.post(url, params, how=how) for params in items]

    def post_receipts(self, host_url: str, accepted: Accepted, **receipts: Any) -> list[httpx.Response]:
        """POST :meth:`receipts` to the callback the send named, on ``host_url``."""
        url = host_url + urlsplit(accepted.callback).path
        return self.post_all(url, self.receipts(accepted, **receipts), how="json")


def request_args(url: str, params: Mapping[str, str], how: How) -> dict[str, Any]:
    """The method, URL, body and headers of a Vonage webhook carrying ``params``."""
    if how == "get":
        return {"method": "GET", "url": f"{url}?{urlencode(params)}"}
    if how == "json":
        return {
            "method": "POST",
            "url": url,
            "content": json.dumps(params).encode(),
            "headers": {"Content-Type": "application/json"},
        }
    return {
        "method": "POST",
        "url": url,
        "content": urlencode(params).encode(),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _refused(status: str) -> Response:
    return JSONResponse({"message-count": "1", "messages": [{"status": status, "error-text": ERROR_TEXTS[status]}]})
