"""The plugin's Twilio client and the environment: proxies named at start-up carry the sends, later changes don't."""

from __future__ import annotations

import asyncio
import http.client
import threading
from base64 import b64encode
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from smsconnector_twilio.client import close_client, make_client
from smsconnector_twilio.settings import Settings

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN, BRAND, CONSUMER

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


class RecordingProxy(ThreadingHTTPServer):
    """A plain-HTTP forward proxy on loopback: notes each request's target URL, then relays it there."""

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
        hop_by_hop = ("connection", "proxy-connection", "proxy-authorization")
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
def proxy(monkeypatch) -> Iterator[RecordingProxy]:
    """A recording proxy, and an environment that names no proxy until the test sets one."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def send_one(fake_url: str, *, after_start_up: Callable[[], None] = lambda: None) -> str:
    """Make a client for the fake at ``fake_url`` as the plugin does at start-up, call ``after_start_up``, send
    one message; its sid."""

    async def run() -> str:
        client = make_client(Settings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=fake_url),
                             pool_size=1)
        try:
            after_start_up()
            return (await client.messages.create_async(to=CONSUMER, from_=BRAND, body="Hi")).sid
        finally:
            await close_client(client)

    return asyncio.run(run())


def test_a_proxy_named_in_the_environment_at_start_up_carries_the_sends(proxy, fake_twilio, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    sid = send_one(fake_twilio.url)

    assert proxy.seen == [f"{fake_twilio.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"]
    assert sid in fake_twilio.messages


def test_credentials_in_the_proxy_url_go_to_the_proxy(proxy, fake_twilio, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://nobody.invalid:1")  # the fake is plain HTTP: this one is not used
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://relay:s%40cret@"))

    sid = send_one(fake_twilio.url)

    assert proxy.credentials == ["Basic " + b64encode(b"relay:s@cret").decode()]
    assert sid in fake_twilio.messages


def test_no_proxy_at_start_up_exempts_the_api_host(proxy, fake_twilio, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    sid = send_one(fake_twilio.url)

    assert proxy.seen == []
    assert sid in fake_twilio.messages


def test_the_environment_is_read_when_the_client_is_made_not_on_each_call(proxy, fake_twilio, monkeypatch):
    # set after start-up: the running client does not look again
    sid = send_one(fake_twilio.url, after_start_up=lambda: monkeypatch.setenv("HTTP_PROXY", proxy.url))

    assert proxy.seen == []
    assert sid in fake_twilio.messages
