"""A small Server-Sent Events reader over httpx streaming, as an agent client would use it."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import httpx
import pytest

from smsconnector.api import events as events_api


@dataclass(frozen=True)
class ServerEvent:
    kind: str
    data: dict[str, Any]
    id: str | None


def parse(lines: Iterator[str]) -> Iterator[ServerEvent | None]:
    """Events from SSE lines; ``None`` for a comment (the connection is live)."""
    kind, data, event_id = "message", [], None
    for line in lines:
        if line == "":
            if data:
                yield ServerEvent(kind, json.loads("\n".join(data)), event_id)
            kind, data, event_id = "message", [], None
        elif line.startswith(":"):
            yield None
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


@pytest.fixture
def quick_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep-alive comments every 0.1 s, so a reader thread notices promptly that it should stop."""
    monkeypatch.setattr(events_api, "KEEPALIVE_SECONDS", 0.1)


class EventStream:
    """``GET /api/events`` read in a thread; events land in ``events``. Use as a context manager.

    The reader stops at the next line after ``__exit__`` (use ``quick_keepalive`` so one comes soon).
    """

    def __init__(self, url: str, token: str, last_event_id: str | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._request = self._client.build_request("GET", url + "/api/events", headers=headers)
        self.events: queue.Queue[ServerEvent] = queue.Queue()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self.status_code: int | None = None
        self.content_type: str | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._connected.wait(10):
            raise AssertionError("the event stream did not open")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def _read(self) -> None:
        try:
            response = self._client.send(self._request, stream=True)
        except httpx.HTTPError:
            self._connected.set()
            return
        self.status_code, self.content_type = response.status_code, response.headers.get("content-type")
        if response.status_code != 200:
            self._connected.set()
            return
        try:
            for item in parse(response.iter_lines()):
                if self._stop.is_set():
                    break
                if item is None:
                    self._connected.set()
                else:
                    self.events.put(item)
        finally:
            response.close()  # the server sees the disconnect and ends the stream
            self._connected.set()

    def next(self, kind: str | None = None, timeout: float = 10.0) -> ServerEvent:
        """The next event (of ``kind``, skipping others) within ``timeout`` seconds."""
        while True:
            try:
                item = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kind or 'event'} within {timeout}s") from None
            if kind is None or item.kind == kind:
                return item
