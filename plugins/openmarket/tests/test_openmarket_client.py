"""The MT client and the network: proxies and CA certificates named at start-up, dropped connections, redirects,
the connection cap."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from smsconnector.errors import PermanentSendError, RetryableSendError
from smsconnector_openmarket import client

from .test_openmarket_send import outbound_message


def test_credentials_in_the_proxy_url_go_to_the_proxy(openmarket_app, live_server, fake, recording_proxy,
                                                      monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://nobody.invalid:1")  # the fake is plain HTTP: this one is not used
    monkeypatch.setenv("HTTP_PROXY", recording_proxy.url.replace("http://", "http://relay:s%40cret@"))
    app = openmarket_app()
    server = live_server(app)

    server.call(lambda: app.hooks.send("openmarket", outbound_message()))

    assert recording_proxy.credentials == ["Basic " + b64encode(b"relay:s@cret").decode()]
    assert len(fake.accepted) == 1


def test_the_environment_is_read_at_start_up_not_on_each_send(openmarket_app, live_server, fake, recording_proxy,
                                                              monkeypatch) -> None:
    app = openmarket_app()
    server = live_server(app)
    monkeypatch.setenv("HTTP_PROXY", recording_proxy.url)  # after start-up: the running client does not look again

    server.call(lambda: app.hooks.send("openmarket", outbound_message()))

    assert recording_proxy.seen == []
    assert len(fake.accepted) == 1


@pytest.fixture
def hang_up() -> Iterator[str]:
    """A server on loopback that reads each request and closes the connection without answering; its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stopping.set()
    thread.join(timeout=5)
    listener.close()


def test_a_connection_dropped_before_the_answer_is_retryable(openmarket_app, live_server, hang_up) -> None:
    app = openmarket_app(openmarket={"api_base_url": hang_up})
    server = live_server(app)

    with pytest.raises(RetryableSendError) as caught:
        server.call(lambda: app.hooks.send("openmarket", outbound_message()))

    assert caught.value.code == "connection"


def test_a_redirect_is_not_followed(openmarket_app, live_server, fake) -> None:
    app = openmarket_app()
    server = live_server(app)
    fake.fail_next(307, headers={"Location": f"{fake.url}/sms/v4/mt"})

    with pytest.raises(PermanentSendError) as caught:
        server.call(lambda: app.hooks.send("openmarket", outbound_message()))

    assert caught.value.code == "307"
    assert [r.status for r in fake.requests] == [307]


def test_max_connections_caps_the_requests_open_at_once(openmarket_app, live_server, fake) -> None:
    app = openmarket_app(openmarket={"max_connections": 1})
    server = live_server(app)
    fake.stall_next(0.3)
    fake.stall_next(0.3)

    async def two_at_once() -> float:
        start = time.monotonic()
        await asyncio.gather(*(app.hooks.send("openmarket", outbound_message()) for _ in range(2)))
        return time.monotonic() - start

    elapsed = server.call(two_at_once)

    assert elapsed >= 0.6  # one connection: the second send waited for the first's answer
    assert len(fake.accepted) == 2


def test_the_ca_certificates_come_from_ssl_cert_file_else_certifi(monkeypatch, tmp_path) -> None:
    bundle = Path(certifi.where()).read_text()
    first = bundle[bundle.index("-----BEGIN CERTIFICATE-----"):bundle.index("-----END CERTIFICATE-----") + 25]
    (tmp_path / "one.pem").write_text(first + "\n")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "one.pem"))
    named = client._ssl_context().get_ca_certs()
    monkeypatch.delenv("SSL_CERT_FILE")
    default = client._ssl_context().get_ca_certs()

    assert len(named) == 1
    assert named[0] in default
    assert len(default) == bundle.count("-----BEGIN CERTIFICATE-----")
