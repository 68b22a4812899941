"""``smsconnector serve`` facing clients that are slow or send too much, over raw sockets on loopback."""

from __future__ import annotations

import json
import select
import socket
import threading
import time

import httpx

from smsconnector.testing import Database

from .processes import serving

BRAND = "+15555550100"
#: how long the slow clients keep trickling, far past the deadlines the server is given
TRICKLE_FOR = 30.0
WEBHOOK = b"POST /webhooks/simulator/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def _configuration(database: str, **server: float) -> str:
    settings = "".join(f"{key} = {value}\n" for key, value in server.items())
    return f"""
database_url = "{database}"
[server]
{settings}
[plugins]
enabled = ["simulator"]
[[numbers]]
number = "{BRAND}"
provider = "simulator"
"""


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _text(message_id: str) -> bytes:
    return json.dumps({"id": message_id, "from": "+14155550123", "to": BRAND, "text": "Hi"}).encode()


class SlowClient(threading.Thread):
    """Connects, sends ``opening``, then ``trickle`` a byte every 0.2 s until the server closes the connection or
    :data:`TRICKLE_FOR` seconds pass; ``cut_off`` says whether the server closed it, ``answer`` what it said."""

    def __init__(self, port: int, opening: bytes, trickle: bytes) -> None:
        super().__init__(daemon=True)
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.opening, self.trickle = opening, trickle
        self.cut_off = False
        self.answer = b""

    def run(self) -> None:
        try:
            self.socket.sendall(self.opening)
            sent, deadline = 0, time.monotonic() + TRICKLE_FOR
            while not select.select([self.socket], [], [], 0.2)[0]:
                if time.monotonic() > deadline:
                    return
                if sent < len(self.trickle):
                    self.socket.sendall(self.trickle[sent:sent + 1])
                    sent += 1
            self.socket.settimeout(5)
            while chunk := self.socket.recv(65536):
                self.answer += chunk
            self.cut_off = True
        except (ConnectionResetError, BrokenPipeError):
            self.cut_off = True
        finally:
            self.socket.close()


def test_sixty_slow_clients_are_cut_off_and_starve_neither_health_nor_a_webhook(tmp_path):
    database = f"sqlite:///{tmp_path / 'sms.db'}"
    with serving(tmp_path, _configuration(database, header_timeout_seconds=3, body_timeout_seconds=3)) as server:
        port = _port(server.url)
        clients = [SlowClient(port, b"", b"") for _ in range(20)]  # connect and say nothing
        clients += [SlowClient(port, WEBHOOK + b"X-Slow: ", b"a" * 1000) for _ in range(20)]
        clients += [SlowClient(port, WEBHOOK + b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
                               b" " * 5000) for _ in range(20)]
        for client in clients:
            client.start()
        time.sleep(0.5)  # every opening is sent

        health = httpx.get(f"{server.url}/healthz")
        webhook = httpx.post(f"{server.url}/webhooks/simulator/inbound", content=_text("good-1"),
                             headers={"content-type": "application/json"})
        open_meanwhile = sum(not client.cut_off for client in clients)
        for client in clients:
            client.join(TRICKLE_FOR + 10)

    assert (health.status_code, webhook.status_code, open_meanwhile) == (200, 200, 60)
    assert all(client.cut_off for client in clients)  # long before they would have finished
    answers = {client.answer.split(b"\r\n", 1)[0] for client in clients if client.answer}
    assert answers <= {b"HTTP/1.1 408 Request Timeout"}, answers
    db = Database(database)
    assert db.rows("SELECT key FROM inbox") == [{"key": db.scalar("SELECT key FROM inbox")}]  # the good one alone
    db.close()
    logged = server.logged()
    assert "refused with 408: the request's headers took longer than 3 s" in logged
    assert "refused with 408: the request's body took longer than 3 s" in logged
    assert "Traceback" not in logged


def _exchange(port: int, *parts: bytes) -> bytes:
    """Send ``parts`` a moment apart on a fresh connection and read the answer until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        for part in parts:
            connection.sendall(part)
            time.sleep(0.2)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_too_many_or_too_large_headers_get_431_and_store_nothing(tmp_path):
    database = f"sqlite:///{tmp_path / 'sms.db'}"
    body = _text("big-1")
    ending = b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    with serving(tmp_path, _configuration(database)) as server:
        port = _port(server.url)
        large = _exchange(port, WEBHOOK + b"X-Padding: " + b"a" * 20_000 + b"\r\n" + ending)
        many = _exchange(port, WEBHOOK + b"".join(b"X-Field-%d: 1\r\n" % n for n in range(150)) + ending)
        endless = _exchange(port, WEBHOOK + b"X-Padding: " + b"a" * 10_000, b"a" * 7_000)  # never ends
        db = Database(database)
        stored_by_refusals = db.count("inbox")
        control = _exchange(port, WEBHOOK + ending)
        metrics = httpx.get(f"{server.url}/metrics").text

    for answer in (large, many, endless):
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:100]
    assert json.loads(many.partition(b"\r\n\r\n")[2]) == {"error": "headers_too_large",
                                                         "detail": "more than 100 header fields"}
    assert stored_by_refusals == 0
    assert control.startswith(b"HTTP/1.1 200 OK\r\n") and db.count("inbox") == 1  # the same webhook, in bounds
    assert 'smsconnector_requests_rejected_total{code="headers_too_large",path="unmatched"} 3.0' in metrics
    db.close()


def test_past_max_connections_a_webhook_gets_503_and_is_taken_once_the_slow_clients_are_cut_off(tmp_path):
    database = f"sqlite:///{tmp_path / 'sms.db'}"
    configuration = _configuration(database, max_connections=5, header_timeout_seconds=2)
    with serving(tmp_path, configuration) as server:
        slow = [SlowClient(_port(server.url), WEBHOOK + b"X-Slow: ", b"a" * 1000) for _ in range(5)]
        for client in slow:
            client.start()
        time.sleep(0.5)  # every opening is sent
        refused = httpx.post(f"{server.url}/webhooks/simulator/inbound", content=_text("capped-1"))
        db = Database(database)
        stored_meanwhile = db.count("inbox")
        for client in slow:
            client.join(TRICKLE_FOR + 10)
        taken = httpx.post(f"{server.url}/webhooks/simulator/inbound", content=_text("capped-1"))

    assert (refused.status_code, stored_meanwhile) == (503, 0)
    assert all(client.cut_off for client in slow)
    assert taken.status_code == 200 and db.count("inbox") == 1  # the provider's retry
    db.close()
