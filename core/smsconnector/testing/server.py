"""Serving an app over real HTTP on loopback, in a thread, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")


class LiveServer:
    """uvicorn on ``host`` (loopback by default), on ``port`` or else a free one; ``url`` is where it listens.

    A fixed port is for what must know the address before the server starts: a provider's fake configured
    with the webhook URL to call, a ``public_url`` the signatures are computed over.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="on",
                                                     log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-server")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    def _run(self) -> None:
        # uvicorn exits when it cannot listen (the port is taken); start() reports that, naming the port.
        with contextlib.suppress(SystemExit):
            asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve()

    def start(self, timeout: float = 15.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                config = self._server.config
                raise RuntimeError(f"the server did not start on {config.host}:{config.port}")
            time.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return self

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's event loop (where the app's store lives) and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
