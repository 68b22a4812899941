"""PostgreSQL scale-out: several web processes and several workers on one database, as a growing deployment
runs them. Every process is a real ``smsconnector`` command; the webhooks go over real HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from smsconnector.testing import Database, eventually
from smsconnector.testing.database import postgres_available, postgres_schema

from .processes import command_env, free_port, healthy, upgrade

pytestmark = pytest.mark.postgres

BRAND = "+15555550100"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    with postgres_schema() as url:
        yield url


@dataclass
class Deployment:
    """Processes of one deployment sharing a PostgreSQL schema."""

    folder: Path
    url: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def configure(self, **worker: float) -> None:
        settings = "".join(f"{key} = {value}\n" for key, value in worker.items())
        (self.folder / "smsconnector.toml").write_text(f"""
database_url = "{self.url}"
log_level = "warning"
[plugins]
enabled = ["simulator"]
[worker]
{settings}
[[numbers]]
number = "{BRAND}"
provider = "simulator"
skill = "support"
rate_per_second = 0
[plugins.compliance.consent]
conversational = "none"
""")
        upgrade(command_env(), cwd=self.folder)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start ``smsconnector *args``; what it says goes to a file (a pipe nobody reads would fill and stop it)."""
        with (self.folder / f"{len(self.processes)}-{args[0]}.log").open("w") as said:
            process = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", *args], cwd=self.folder,
                                       env=command_env(), text=True, stdout=said, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def said(self, process: subprocess.Popen[str]) -> str:
        """Everything ``process`` has logged so far."""
        return (self.folder / f"{self.processes.index(process)}-{process.args[3]}.log").read_text()

    def web(self) -> str:
        port = free_port()
        self.start("serve", "--no-worker", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        eventually(lambda: healthy(base), timeout=30)
        return base

    def worker(self) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        process = self.start("worker", "--metrics-port", str(port))
        metrics = f"http://127.0.0.1:{port}/metrics"
        eventually(lambda: _answers(metrics), timeout=30)
        return process, metrics

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def deployment(tmp_path: Path, postgres_url: str) -> Iterator[Deployment]:
    running = Deployment(tmp_path, postgres_url)
    yield running
    running.stop()


def routed_by(metrics: str) -> int:
    found = re.search(r'smsconnector_inbound_messages_total\{outcome="stored",provider="simulator"\} (\S+)',
                      httpx.get(metrics).text)
    return int(float(found.group(1))) if found else 0


def text(base: str, n: int, consumer: str, client: httpx.Client | None = None) -> None:
    posted = (client or httpx).post(f"{base}/webhooks/simulator/inbound",
                                    json={"id": f"sim-{n}", "from": consumer, "to": BRAND, "text": f"text {n}"})
    assert posted.status_code == 200


def texts(webs: list[str], total: int, consumers: list[str], *, twice: bool = False) -> dict[str, list[int]]:
    """``total`` texts from ``consumers`` in turn, each consumer's one after the other and the consumers at once,
    alternating between the web processes; ``twice``: each delivered again to the next web process, as a
    provider's retry. What each consumer sent, in order."""
    sent: dict[str, list[int]] = {c: [] for c in consumers}

    def consumer_texts(index: int) -> None:
        consumer = consumers[index]
        with httpx.Client() as client:
            for n in range(index, total, len(consumers)):
                text(webs[n % len(webs)], n, consumer, client)
                if twice:
                    text(webs[(n + 1) % len(webs)], n, consumer, client)
                sent[consumer].append(n)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(consumer_texts, range(len(consumers))))
    return sent


def assert_each_consumer_in_order(db: Database, sent: dict[str, list[int]]) -> None:
    for consumer, numbers in sent.items():
        bodies = [r["body"] for r in db.rows(
            "SELECT body FROM messages WHERE from_number = :consumer ORDER BY id", consumer=consumer)]
        assert bodies == [f"text {n}" for n in numbers], consumer
        assert db.count("conversations", "consumer_number = :consumer", consumer=consumer) == 1


def test_two_web_processes_and_two_workers_route_a_duplicate_storm_once_each_in_order(deployment):
    # The workers look on their own only every 30 s: routing within seconds is their being woken by NOTIFY.
    deployment.configure(poll_interval_seconds=30)
    webs = [deployment.web(), deployment.web()]
    (_, first), (_, second) = deployment.worker(), deployment.worker()
    sent = texts(webs, 600, [f"+1415555{n:04d}" for n in range(40)], twice=True)

    db = Database(deployment.url)
    try:
        eventually(lambda: db.count("inbox", "processed_at IS NULL") == 0, timeout=20)
        assert db.count("inbox") == 600
        assert db.count("messages") == 600
        assert db.scalar("SELECT count(DISTINCT provider_message_id) FROM messages") == 600
        assert_each_consumer_in_order(db, sent)
        assert routed_by(first) + routed_by(second) == 600
        assert routed_by(first) > 0 and routed_by(second) > 0  # the two shared the work
    finally:
        db.close()


def test_a_worker_killed_mid_burst_loses_nothing_and_routes_nothing_twice(deployment):
    deployment.configure(poll_interval_seconds=0.5)
    web = deployment.web()
    sent = texts([web], 1500, [f"+1415556{n:04d}" for n in range(50)])
    db = Database(deployment.url)
    try:
        doomed, _ = deployment.worker()
        eventually(lambda: db.count("messages") >= 150, timeout=30, interval=0.005)
        doomed.kill()  # kill -9, mid-batch: a batch is under way whenever it is routing
        doomed.wait()
        left = db.count("inbox", "processed_at IS NULL")
        assert left > 0  # it died with work to do...

        deployment.worker()  # ...which another worker takes over
        eventually(lambda: db.count("inbox", "processed_at IS NULL") == 0, timeout=30)
        assert db.count("messages") == 1500
        assert db.scalar("SELECT count(DISTINCT provider_message_id) FROM messages") == 1500
        assert_each_consumer_in_order(db, sent)
    finally:
        db.close()


def test_a_lost_notification_costs_time_not_messages(deployment):
    deployment.configure(poll_interval_seconds=2)
    web = deployment.web()
    worker, _ = deployment.worker()
    db = Database(deployment.url)
    try:
        text(web, 1, "+14155557000")
        eventually(lambda: db.count("messages") == 1, timeout=10)
        # The listeners' connections die (a restart of the server, a proxy's idle timeout): notifications sent
        # meanwhile reach nobody.
        listening = ("SELECT {} FROM pg_stat_activity WHERE query LIKE 'LISTEN %' "
                     "AND application_name = current_setting('application_name')")
        listeners = db.scalar(listening.format("count(*)"))
        assert listeners == 2  # the web process's (live events) and the worker's
        assert db.scalar(listening.format("count(pg_terminate_backend(pid))")) == listeners
        started = time.monotonic()
        text(web, 2, "+14155557001")
        eventually(lambda: db.count("messages") == 2, timeout=15)
        assert time.monotonic() - started < 10  # the worker's own look found it, or the listener came back
        eventually(lambda: db.scalar(listening.format("count(*)")) == listeners, timeout=15)
        text(web, 3, "+14155557002")  # listening again: woken, not polled
        eventually(lambda: db.count("messages") == 3, timeout=1.5)
    finally:
        db.close()
    worker.send_signal(signal.SIGINT)
    worker.wait(timeout=30)
    assert "LISTEN connection failed" in deployment.said(worker)
