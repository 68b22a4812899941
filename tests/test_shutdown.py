"""Stopping ``smsconnector serve`` while agents are connected to the live event stream."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx

from smsconnector.testing import eventually

from .processes import command_env, free_port, healthy, upgrade

ADMIN = "admin-token-for-the-shutdown-test"


def test_serve_stops_at_once_with_live_event_streams_open_and_the_clients_see_the_stream_end(tmp_path):
    (tmp_path / "smsconnector.toml").write_text(f"""
database_url = "sqlite:///{tmp_path / 'sms.db'}"
[api]
admin_tokens = ["{ADMIN}"]
""")
    env = command_env()
    upgrade(env, cwd=tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ended: list[str] = []

    def listen() -> None:
        with httpx.stream("GET", f"{base}/api/events", headers={"Authorization": f"Bearer {ADMIN}"},
                          timeout=30) as stream:
            ended.append("".join(stream.iter_text()))  # returns when the server ends the stream

    try:
        eventually(lambda: healthy(base), timeout=30)
        clients = [threading.Thread(target=listen) for _ in range(3)]
        for client in clients:
            client.start()
        eventually(lambda: "smsconnector_" in httpx.get(f"{base}/metrics").text)
        time.sleep(0.5)  # the streams are open
    finally:
        asked = time.monotonic()
        server.send_signal(signal.SIGTERM)
        _, logged = server.communicate(timeout=30)
        took = time.monotonic() - asked
    for client in clients:
        client.join(timeout=5)

    assert took < 3  # not the 5 s grace period that open streams used to hold it for
    assert len(ended) == 3 and all(": connected" in said for said in ended)  # each client saw its stream end
    assert "Traceback" not in logged and "CancelledError" not in logged and "graceful shutdown exceeded" not in logged
