"""``smsconnector serve`` processes sending through the fake Twilio over real HTTP: two replicas on one database,
and a replica killed mid-drain. What counts is what reached the fake."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from smsconnector import outbound
from smsconnector.store import Store
from smsconnector.testing import eventually

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN, BRAND, CONSUMER

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


class Replica:
    """One ``smsconnector serve`` process, HTTP and sender, its output in a file. ``api_key``: the Twilio API
    key it sends with, so the fake tells the replicas' requests apart."""

    def __init__(self, directory: Path, name: str, *, api_key: str | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.output: IO[str] = (directory / f"{name}.log").open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSCONNECTOR_")}
        if api_key is not None:
            env.update(SMSCONNECTOR_PLUGINS__TWILIO__API_KEY=api_key, SMSCONNECTOR_PLUGINS__TWILIO__API_SECRET="s")
        self.process = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(port)],
                                        cwd=directory, env=env, stdout=self.output, stderr=subprocess.STDOUT)

    def healthy(self) -> bool:
        """Whether it answers ``/healthz`` yet; fails at once, with what it said, if it exited."""
        if self.process.poll() is not None:
            said = Path(self.output.name).read_text()[-2000:]
            raise AssertionError(f"the replica exited with {self.process.returncode}:\n{said}")
        try:
            return httpx.get(f"{self.url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """kill -9: no shutdown, no in-flight send recorded."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop it as an operator would (SIGINT), or kill it if it does not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.output.close()


@pytest.fixture
def replicas(tmp_path, make_app, database_url, fake_twilio):
    """Start replicas: ``replicas(rate=5, lease=2, ...)`` writes the configuration (once), migrates, starts one
    more ``serve`` and waits until it answers. All are stopped after the test."""
    started: list[Replica] = []

    def start(*, rate: float = 0, lease: float = 60, concurrency: int = 64, batch: int = 100,
              api_key: str | None = None) -> Replica:
        config = tmp_path / "smsconnector.toml"
        if not config.exists():
            config.write_text(f"""
database_url = "{database_url}"
[sender]
lease_seconds = {lease}
poll_interval_seconds = 0.05
backoff_base_seconds = 0.05
backoff_max_seconds = 0.5
concurrency = {concurrency}
batch_size = {batch}
[[numbers]]
number = "{BRAND}"
provider = "twilio"
skill = "support"
rate_per_second = {rate}
[plugins.twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
api_base_url = "{fake_twilio.url}"
[plugins.compliance.consent]
conversational = "none"
""")
            make_app()  # migrated once, as `smsconnector db upgrade` would
        replica = Replica(tmp_path, f"replica-{len(started)}", api_key=api_key)
        started.append(replica)
        eventually(replica.healthy, timeout=30)
        return replica

    yield start
    for replica in started:
        replica.stop()


def queue_replies(database_url: str, replies: list[tuple[str, str]]) -> None:
    """Queue ``(recipient, text)`` replies from the brand number, in that order, in one transaction (as an
    agent's burst through the API lands)."""

    async def run() -> None:
        store = Store(database_url)
        try:
            async with store.transaction() as session:
                await outbound.queue_all(session, [outbound.draft(provider="twilio", from_number=BRAND, to_number=to,
                                                                  text=text) for to, text in replies])
        finally:
            await store.close()

    asyncio.run(run())


def sent_bodies(fake_twilio: Any, to: str | None = None) -> list[str]:
    """The bodies of the messages the fake accepted (to ``to``), in the order they arrived."""
    return [r.params["Body"] for r in fake_twilio.message_requests(to) if r.status == 201]


@pytest.mark.postgres
@on_postgres
def test_two_replicas_send_a_consumers_replies_once_each_in_queue_order(replicas, database_url, fake_twilio, db):
    # 80 sends at 20 a second take four seconds: twice the lease a sender holds a claimed row for.
    for key in ("SK" + "a1" * 16, "SK" + "b2" * 16):
        fake_twilio.api_keys[key] = "s"
        replicas(rate=20, lease=2, api_key=key)
    texts = [f"reply {n:02d}" for n in range(80)]

    queue_replies(database_url, [(CONSUMER, text) for text in texts])

    eventually(lambda: db.count("outbox") == 0, timeout=60)
    assert sent_bodies(fake_twilio) == texts
    assert len(fake_twilio.message_requests()) == 80
    stored = db.rows("SELECT body, provider_message_id FROM messages ORDER BY id")
    assert {row["provider_message_id"] for row in stored} == set(fake_twilio.messages)


@pytest.mark.postgres
@on_postgres
def test_two_replicas_keep_a_numbers_rate_between_them(replicas, database_url, fake_twilio, db):
    rate, count = 5, 30
    keys = ("SK" + "c3" * 16, "SK" + "d4" * 16)
    for key in keys:
        fake_twilio.api_keys[key] = "s"
        replicas(rate=rate, concurrency=3, batch=3, api_key=key)  # a few sends each, so both take part

    queue_replies(database_url, [(f"+1415555{n:04d}", f"hello {n}") for n in range(count)])

    eventually(lambda: db.count("outbox") == 0, timeout=60)
    requests = fake_twilio.message_requests()
    assert len(requests) == count
    assert {r.username for r in requests} == set(keys), "both replicas sent"
    arrived = sorted(r.arrived for r in requests)
    # However the sends fell between the replicas, no second held more than the rate (a little jitter aside).
    assert min(later - earlier for earlier, later in zip(arrived, arrived[rate:], strict=False)) >= 0.9
    assert (count - 1) / (arrived[-1] - arrived[0]) <= rate * 1.05


@both_databases
def test_a_replica_killed_mid_drain_leaves_nothing_sent_twice_or_lost(replicas, database_url, fake_twilio, db):
    fake_twilio.latency = 0.5  # each send in flight for half a second
    first = replicas(lease=2)
    consumers = [f"+1415555{n:04d}" for n in range(20)]
    replies = [(to, f"reply {n} to {to}") for n in range(5) for to in consumers]

    queue_replies(database_url, replies)
    eventually(lambda: len(fake_twilio.messages) >= 30 and fake_twilio.in_flight >= 10, timeout=30, interval=0.005)
    in_flight = fake_twilio.in_flight
    first.kill()
    replicas(lease=2)

    eventually(lambda: db.count("outbox") == 0, timeout=60)
    sent = collections.Counter(sent_bodies(fake_twilio))
    assert sent == collections.Counter(text for _, text in replies), f"{in_flight} sends were in flight at the kill"
    for to in consumers:
        assert sent_bodies(fake_twilio, to) == [text for recipient, text in replies if recipient == to]
    # The sends the kill interrupted were looked up, and found, rather than sent again.
    assert any(r.method == "GET" for r in fake_twilio.requests)
    by_body = {m["body"]: m["sid"] for m in fake_twilio.messages.values()}
    stored = db.rows("SELECT body, provider_message_id FROM messages")
    assert {row["body"]: row["provider_message_id"] for row in stored} == by_body
