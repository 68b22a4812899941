"""The ``live_server`` fixture plugin authors start their app with: on a free port, or on the one they name."""

from __future__ import annotations

import socket

import httpx
import pytest

from smsconnector.testing import LiveServer

from .processes import free_port


def test_an_app_is_served_on_a_free_loopback_port_by_default(make_app, live_server):
    server = live_server(make_app())

    assert server.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}


def test_an_app_is_served_on_the_port_it_is_given(make_app, live_server):
    port = free_port()

    server = live_server(make_app(), port=port)

    assert server.url == f"http://127.0.0.1:{port}"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_a_port_in_use_stops_the_server_naming_the_port(make_app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(RuntimeError, match=f"did not start on 127.0.0.1:{port}"):
            LiveServer(make_app(), port=port).start()
