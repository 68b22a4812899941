"""A base for a provider's fake API: served over real HTTP on loopback, every request recorded, failures scripted.

A provider plugin's tests send through the plugin's real client to a fake of the provider's API, so that
requests cross a real socket. The base does what every such fake needs; a subclass adds the provider's
endpoints and what they answer::

    class FakeAcme(FakeProvider):
        def endpoints(self):
            return [Route("/v1/messages", self.send_message, methods=["POST"])]

        async def send_message(self, request: Request, body: bytes) -> Response:
            return JSONResponse({"id": "AC1"}, status_code=201)

    with FakeAcme() as fake:
        fake.respond_next(429, json={"error": "slow down"}, headers={"Retry-After": "1"})
        fake.stall_next(5.0)  # the request after that times out on the client's side
        ...  # the plugin sends to fake.url
        assert [r.status for r in fake.requests] == [429, 201]

Scripted answers are given to the requests that pass :meth:`FakeProvider.refuse` (a provider checks
credentials before anything else), in the order they were scripted, on any endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .server import LiveServer

#: an endpoint of a fake: the request and its body, already read, to the response
Endpoint = Callable[[Request, bytes], Awaitable[Response]]
T = TypeVar("T")


@dataclass(frozen=True)
class Recorded:
    """One request the fake received, whatever it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    #: the URL's query parameters, in order
    query: tuple[tuple[str, str], ...] = ()
    #: when the request arrived, on the ``time.monotonic()`` clock
    arrived: float = 0.0

    def json(self) -> Any:
        """The body, parsed as JSON."""
        return jsonlib.loads(self.body)


@dataclass(frozen=True)
class _Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0


class FakeProvider:
    """A provider's API on ``host`` and ``port`` (a free one by default); ``url`` is where it listens once started.

    Subclasses implement :meth:`endpoints`, and :meth:`refuse` when the provider checks credentials; they may
    override :meth:`lifespan` to hold something while serving (a client to call the host back with), and
    :attr:`recorded_as` to keep requests as a subclass of :class:`Recorded` with the provider's views of them.
    """

    #: what each request is kept as in :attr:`requests`
    recorded_as: ClassVar[type[Recorded]] = Recorded

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.requests: list[Recorded] = []
        self._script: deque[_Scripted] = deque()
        routes: list[BaseRoute] = [
            Route(r.path, self._recording(r.endpoint), methods=r.methods) for r in self.endpoints()
        ]
        self.app = Starlette(routes=routes, lifespan=self.lifespan)
        self.url = ""
        self._server: LiveServer | None = None
        self._caller: httpx.Client | None = None
        self._caller_lock = threading.Lock()  # tests call the host back from many threads at once

    def endpoints(self) -> Sequence[Route]:
        """The provider's endpoints, each a ``Route`` whose endpoint is an :data:`Endpoint`."""
        raise NotImplementedError

    def refuse(self, request: Request) -> Response | None:
        """The answer to a request refused before anything else (wrong credentials), or ``None`` to go on."""
        return None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """What the fake holds while it serves, in its event loop; nothing by default."""
        yield

    def reset(self) -> None:
        """Forget every request received and every answer scripted and not yet given."""
        self.requests = []
        self._script.clear()

    # -- scripting -----------------------------------------------------------------------------------------

    def respond_next(
        self, status: int, *, json: Any = None, body: bytes = b"", headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (a 429, a 5xx, a redirect) and ``json`` or ``body``."""
        content = jsonlib.dumps(json).encode() if json is not None else body
        sent = {"Content-Type": "application/json", **(headers or {})} if json is not None else dict(headers or {})
        for _ in range(times):
            self._script.append(_Scripted(status, content, sent))

    def stall_next(self, seconds: float) -> None:
        """Hold the next request ``seconds`` before answering it as usual: the client's timeout, if it is shorter."""
        self._script.append(_Scripted(stall=seconds))

    def _recording(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            arrived = time.monotonic()
            body = await request.body()
            response = await self._answer(request, body, endpoint)
            self.requests.append(
                self.recorded_as(
                    request.method,
                    request.url.path,
                    dict(request.headers),
                    body,
                    response.status_code,
                    tuple(request.query_params.multi_items()),
                    arrived,
                )
            )
            return response

        return handle

    async def _answer(self, request: Request, body: bytes, endpoint: Endpoint) -> Response:
        refused = self.refuse(request)
        if refused is not None:
            return refused
        scripted = self._script.popleft() if self._script else None
        if scripted is None:
            return await endpoint(request, body)
        if scripted.stall:
            await asyncio.sleep(scripted.stall)
            return await endpoint(request, body)
        return Response(scripted.body, status_code=scripted.status, headers=scripted.headers)

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve in a background thread; :attr:`url` is then where the fake listens."""
        self._server = LiveServer(self.app, host=self.host, port=self.port).start()
        self.url = self._server.url
        return self

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine in the fake's event loop (where its lifespan's clients live) and return its result."""
        if self._server is None:
            raise RuntimeError("the fake is not serving: start() it first")
        return self._server.call(make)

    def caller(self) -> httpx.Client:
        """One pooled client for calling the host back from a test (an inbound message, a receipt), as the provider
        would; made on first use (a new client a call costs about 25 ms), closed by :meth:`stop`."""
        with self._caller_lock:
            if self._caller is None:
                self._caller = httpx.Client(timeout=30)
            return self._caller

    def stop(self) -> None:
        """Stop serving (the lifespan ends first) and close the client of :meth:`caller`."""
        with self._caller_lock:
            if self._caller is not None:
                self._caller.close()
                self._caller = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
