"""A forward proxy on loopback that records what passes through it, for testing a plugin's proxy settings."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

#: the environment variables that name proxies (and exemptions from them), in both cases
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


class RecordingProxy(ThreadingHTTPServer):
    """A plain-HTTP forward proxy: notes each request's target URL and ``Proxy-Authorization``, then relays the
    request there without the proxy's own headers."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.seen: list[str] = []
        self.credentials: list[str | None] = []  #: each request's Proxy-Authorization
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Relay(BaseHTTPRequestHandler):
    server: RecordingProxy

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        self.server.credentials.append(self.headers.get("Proxy-Authorization"))
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        hop_by_hop = ("connection", "proxy-connection", "proxy-authorization", "keep-alive")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
        upstream = http.client.HTTPConnection(target.netloc, timeout=10)
        upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- the base class's name
        pass


@pytest.fixture
def recording_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    """A recording proxy, and an environment that names no proxy until the test sets one."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
