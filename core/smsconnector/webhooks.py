"""What a provider plugin's ``smsconnector_receive`` gets and returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, unquote_to_bytes

from starlette.datastructures import FormData, Headers, QueryParams

from .errors import Malformed
from .untrusted import loads

WebhookKind = Literal["inbound", "status"]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A provider's HTTP request, already size-checked, with the URL the provider called.

    ``url`` is the public URL (scheme, host, path, query) rebuilt from the configured ``public_url``,
    never the socket's: signatures such as Twilio's are computed over it. ``method`` is one of those the
    provider's plugin accepts (``smsconnector_webhook_methods``; ``POST`` by default): a ``GET`` carries its
    parameters in :attr:`query` and has no body.
    """

    provider: str
    kind: WebhookKind
    method: str
    url: str
    headers: Headers
    body: bytes
    client: str | None = None

    @property
    def query(self) -> QueryParams:
        """The URL's query parameters (a ``GET`` webhook's parameters), keeping blank values and repeated keys."""
        return QueryParams(self.url.partition("?")[2])

    def form(self) -> FormData:
        """The body parsed as ``application/x-www-form-urlencoded``, keeping blank values and repeated keys."""
        try:
            return _Form(parse_form(self.body.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Malformed(f"body is not form-encoded: {exc}") from None

    def json(self) -> Any:
        """The body parsed as JSON; :class:`Malformed` (400) for one that is not, that nests deeper than 32 levels,
        or that holds a lone surrogate (``"\\ud800"``: not text, and no database stores it). A NUL is kept: the host
        mends a message's text (:mod:`smsconnector.untrusted`)."""
        return loads(self.body, strict=False)


def parse_form(text: str) -> list[tuple[str, str]]:
    """The pairs of a form-encoded body, as ``parse_qsl(text, keep_blank_values=True, strict_parsing=True)``
    gives them (an empty body has none), in half its time: a name or value is only decoded when it holds a
    ``+`` or a ``%``, and most of a webhook's do not.

    :raises ValueError: a field has no ``=`` (an empty field included).
    """
    if not text:
        return []
    pairs = []
    for pair in text.split("&"):
        name, equals, value = pair.partition("=")
        if not equals:
            raise ValueError(f"bad query field: {pair!r}")
        if "+" in name or "%" in name:
            name = _unquote(name.replace("+", " "))
        if "+" in value or "%" in value:
            value = _unquote(value.replace("+", " "))
        pairs.append((name, value))
    return pairs


def _unquote(text: str) -> str:
    """``unquote(text)``; for ASCII text (a form-encoded field always is) by its faster byte-level half."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "replace") if text.isascii() else unquote(text)


class _Form(FormData):
    """Form data whose ``getlist`` looks the key up instead of scanning every pair: a provider's webhook is
    read key by key (Twilio's signature check and normalizing ask for some forty keys of twenty pairs)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__(items)
        self._lists: dict[str, list[Any]] = {}
        for key, value in items:
            self._lists.setdefault(key, []).append(value)

    def getlist(self, key: Any) -> list[Any]:
        return list(self._lists.get(key, ()))


@dataclass(frozen=True, slots=True)
class Received:
    """An authenticated webhook: the raw events it carried and what to answer the provider.

    The host answers with ``reply_*`` only after every event is committed.
    """

    events: Sequence[Any]
    reply_body: bytes = b""
    reply_media_type: str = "text/plain"
    reply_status: int = 200
    #: the provider's idempotency or retry key, when it sends one; logged, never trusted alone
    delivery_id: str | None = field(default=None)
