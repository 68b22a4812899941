"""What the Twilio plugin's tests share: the test account, recorded payloads, signing, polling."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx
from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator

ACCOUNT_SID = "AC1234567890abcdef1234567890abcdef"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
BRAND = "+14155550100"
CONSUMER = "+14155550123"
PUBLIC_URL = "http://testserver"
INBOUND = "/webhooks/twilio/inbound"
STATUS = "/webhooks/twilio/status"
PAYLOADS = Path(__file__).parent / "payloads"
FORM = "application/x-www-form-urlencoded"

T = TypeVar("T")


def payload(name: str) -> bytes:
    """A recorded webhook body, byte for byte (an editor's final newline is not Twilio's)."""
    return (PAYLOADS / f"{name}.form").read_bytes().rstrip(b"\n")


def fields(body: bytes) -> list[tuple[str, str]]:
    """The form fields of a body, blank values and repeated keys kept, as Twilio signs them."""
    return parse_qsl(body.decode(), keep_blank_values=True)


class Multi(dict[str, list[str]]):
    """Form fields as ``RequestValidator`` reads a multi-dict (``getlist``)."""

    def getlist(self, key: str) -> list[str]:
        return self[key]


def sign(url: str, body: bytes, *, token: str = AUTH_TOKEN, algorithm: str | None = None) -> str:
    """Twilio's signature of a form body posted to ``url``."""
    multi = Multi()
    for key, value in fields(body):
        multi.setdefault(key, []).append(value)
    return RequestValidator(token).compute_signature(url, multi, algorithm)  # type: ignore[no-any-return]


def get_signed(server_url: str, path: str, body: bytes, *, public_url: str = PUBLIC_URL,
               token: str = AUTH_TOKEN) -> httpx.Response:
    """GET ``path`` with ``body``'s fields as its query string, as Twilio calls a webhook configured as GET:
    signed over the public URL with that query string, and nothing appended."""
    query = "?" + body.decode()
    signature = RequestValidator(token).compute_signature(public_url + path + query, {})
    return httpx.get(server_url + path + query, headers={SIGNATURE_HEADER: signature})


def post_signed(server_url: str, path: str, body: bytes, *, public_url: str = PUBLIC_URL, token: str = AUTH_TOKEN,
                headers: Mapping[str, str] | None = None, shared_key_algorithm: str | None = None,
                sign_path: str | None = None) -> httpx.Response:
    """POST ``body`` to the host as Twilio would: signed over the public URL, sent to where it really listens.
    ``sign_path``: sign for another path than the one posted to (a forgery)."""
    signature = sign(public_url + (sign_path or path), body, token=token, algorithm=shared_key_algorithm)
    sent = {"Content-Type": FORM, SIGNATURE_HEADER: signature, **(headers or {})}
    if shared_key_algorithm is not None:
        sent[SIGNATURE_SETTINGS_HEADER] = f"key=webhooks_sharedkey_test,algorithm={shared_key_algorithm}"
    return httpx.post(server_url + path, content=body, headers=sent)



def queue_reply(server: Any, app: Any, *, to: str = CONSUMER, text: str = "It ships today.",
                media: tuple[Any, ...] = ()) -> int:
    """Queue an agent's reply from the brand number as the agent API will, on the server's loop; its message id."""
    from smsconnector import outbound

    async def queue() -> int:
        async with app.store.transaction() as session:
            message = await outbound.queue(session, provider="twilio", from_number=BRAND, to_number=to, text=text,
                                           media=media)
        assert message.id is not None
        return message.id

    return int(server.call(queue))
