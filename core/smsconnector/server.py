"""Serving the app under uvicorn, held to ``[server]``: what a server facing the internet without a proxy needs.

uvicorn caps the connections (``limit_concurrency``: 503 past it) and closes idle kept-alive ones, but with the
httptools parser it picks itself it waits for a request's headers and body as long as the client likes, and
takes any number of headers of any size (its own limit, ``h11_max_incomplete_event_size``, is the h11 parser's
alone). A few clients trickling a byte now and then would hold their connections for ever, and every connection
counts towards the cap. :class:`LimitedHttpToolsProtocol` adds the missing limits to uvicorn's httptools protocol.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from .app import App
    from .config import ServerSettings

log = logging.getLogger(__name__)
#: how long a stopping server waits for open requests; live event streams never end on their own
SHUTDOWN_GRACE_SECONDS = 5


def serve(app: App, **options: Any) -> None:
    """Run ``app`` under uvicorn, held to its ``[server]`` limits, until a signal stops it (``options`` are
    uvicorn's).

    On shutdown uvicorn waits for open responses before the application's own shutdown, so the agents' live
    event streams, which never end on their own, would hold it for the whole grace period and then be cancelled
    mid-write: they are ended first.
    """

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            app.live.end_streams()
            await super().shutdown(sockets)

    limits = app.config.server
    protocol = limited_protocol(limits, lambda code: app.metrics.rejected.labels("unmatched", code).inc())
    Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
                          http=protocol, limit_concurrency=limits.max_connections,
                          timeout_keep_alive=limits.keep_alive_seconds, **options)).run()


def limited_protocol(limits: ServerSettings, count_refusal: Callable[[str], None]) -> type[LimitedHttpToolsProtocol]:
    """The protocol class to give uvicorn (``http=``): one connection held to ``limits``; ``count_refusal(code)``
    is called for each request it refuses."""

    class Protocol(LimitedHttpToolsProtocol):
        pass

    Protocol.limits = limits
    Protocol.count_refusal = staticmethod(count_refusal)
    return Protocol


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with deadlines and limits on what a client sends.

    - The request line and headers must arrive within ``header_timeout_seconds`` of the connection (or, on a
      kept-alive one, of the request's first byte), the body within ``body_timeout_seconds`` of the headers:
      otherwise 408 (or, once the app has begun its answer, the connection is closed without one).
    - More than ``max_headers`` fields, or more than ``max_header_bytes`` of line and headers, get 431; the bytes
      of headers still coming are counted as they arrive, so a header that never ends is refused too.

    A refused connection is closed. A request refused for its headers never reaches the app; one cut off in its
    body reaches it as a client that went away.
    """

    limits: ClassVar[ServerSettings]
    count_refusal: ClassVar[Callable[[str], None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._due: tuple[float, str, float] | None = None  #: when, the part awaited, and its allowance
        self._reading_head = False
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._due = None
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        # Only a chunk that began inside a head counts: one that ended a request and began the next is bounded by
        # the transport's read size anyway.
        inside_head = self._reading_head
        super().data_received(data)
        if inside_head and self._reading_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431, "headers_too_large",
                             f"the request line and headers exceed {self.limits.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:  # the next request on a kept-alive connection
            self._await_head()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._set_deadline(None)
        if self._refused:
            return
        if len(self.headers) > self.limits.max_headers:
            self._refuse(431, "headers_too_large", f"more than {self.limits.max_headers} header fields")
            return
        if len(self.url) + sum(len(name) + len(value) for name, value in self.headers) > self.limits.max_header_bytes:
            self._refuse(431, "headers_too_large",
                         f"the request line and headers exceed {self.limits.max_header_bytes} bytes")
            return
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):  # a WebSocket has no body to wait for
            self._set_deadline(self.limits.body_timeout_seconds, "body")

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._set_deadline(None)
        if not self._refused:
            super().on_message_complete()

    def _await_head(self) -> None:
        self._reading_head, self._head_bytes = True, 0
        self._set_deadline(self.limits.header_timeout_seconds, "headers")

    def _set_deadline(self, seconds: float | None, part: str = "") -> None:
        """Cut the connection off in ``seconds`` unless the request's ``part`` is in by then (``None``: no deadline).

        One timer a connection at most, looked at when it fires: a request moves its deadline two or three times,
        and a timer made and cancelled each time cost every webhook more than the rest of these limits.
        """
        self._due = None if seconds is None else (self.loop.time() + seconds, part, seconds)
        if self._due is not None and self._deadline is None:
            self._deadline = self.loop.call_later(seconds, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline = None
        if self._due is None:
            return
        due, part, seconds = self._due
        if (left := due - self.loop.time()) > 0:
            self._deadline = self.loop.call_later(left, self._check_deadline)
            return
        self._refuse(408, "request_timeout", f"the request's {part} took longer than {seconds:g} s")

    def _refuse(self, status: int, code: str, reason: str) -> None:
        """Answer ``status`` with the host's JSON error shape and close the connection; close it without an
        answer when one has begun (or an earlier request's is due), since this one would cut into it."""
        self._refused = True
        self._set_deadline(None)
        self.count_refusal(code)
        if self._answer_under_way():
            log.warning("%s: closed the connection: %s", self._peer(), reason)
            self.transport.close()
            return
        log.warning("%s: refused with %d: %s", self._peer(), status, reason)
        body = json.dumps({"error": code, "detail": reason}).encode()
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _answer_under_way(self) -> bool:
        cycle = self.cycle
        if cycle is None:
            return False
        if cycle.scope is self.scope:  # this request's own: the app has begun answering it
            return cycle.response_started
        return not cycle.response_complete  # an earlier request's, on the same connection

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
