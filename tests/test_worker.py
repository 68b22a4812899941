"""``smsconnector serve --no-worker`` beside ``smsconnector worker``: the web process answers, the worker routes
and sends, each in its own process over the shared database."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from smsconnector.testing import Database, eventually

from .processes import command_env, free_port, healthy, upgrade

BRAND = "+15555550100"
CONSUMER = "+14155550123"
ADMIN = "admin-token-for-the-worker-test"


def _command(*args: str, cwd: Path, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "smsconnector.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def test_the_web_process_answers_and_the_worker_process_routes_and_sends(tmp_path):
    database = tmp_path / "sms.db"
    (tmp_path / "smsconnector.toml").write_text(f"""
database_url = "sqlite:///{database}"
[api]
admin_tokens = ["{ADMIN}"]
[plugins]
enabled = ["simulator"]
[[numbers]]
number = "{BRAND}"
provider = "simulator"
skill = "support"
rate_per_second = 0
[plugins.compliance.consent]
conversational = "none"
""")
    env = command_env()
    upgrade(env, cwd=tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = _command("serve", "--no-worker", "--port", str(port), cwd=tmp_path, env=env)
    worker: subprocess.Popen[str] | None = None
    db = Database(f"sqlite:///{database}")
    try:
        eventually(lambda: healthy(base), timeout=30)
        agent = httpx.post(f"{base}/api/agents", headers={"Authorization": f"Bearer {ADMIN}"},
                           json={"name": "Ada", "skills": ["support"], "status": "online"}).json()
        texted = httpx.post(f"{base}/webhooks/simulator/inbound",
                            json={"id": "sim-1", "from": CONSUMER, "to": BRAND, "text": "Is my order on its way?"})
        assert texted.status_code == 200

        # Stored and acknowledged, but nobody routes it: longer than a server's own processor would take.
        time.sleep(1.5)
        assert db.rows("SELECT processed_at FROM inbox") == [{"processed_at": None}]
        assert db.scalar("SELECT count(*) FROM messages") == 0

        metrics_port = free_port()
        worker = _command("worker", "--metrics-port", str(metrics_port), cwd=tmp_path, env=env)
        routed = eventually(lambda: db.rows("SELECT id, agent_id FROM conversations"), timeout=30)
        assert routed == [{"id": routed[0]["id"], "agent_id": agent["id"]}]

        reply = httpx.post(f"{base}/api/conversations/{routed[0]['id']}/messages",
                           headers={"Authorization": f"Bearer {agent['token']}"}, json={"text": "It ships today."})
        assert reply.status_code == 201
        sent = eventually(lambda: db.rows("SELECT provider_message_id, status FROM messages "
                                          "WHERE direction = 'outbound' AND status = 'delivered'"), timeout=15)
        assert sent[0]["provider_message_id"].startswith("SIM")
        assert db.scalar("SELECT count(*) FROM outbox") == 0

        # What the worker did is counted where it did it, and served for scraping.
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'smsconnector_sends_total{provider="simulator",result="sent"} 1.0' in metrics
        assert 'smsconnector_inbound_messages_total{outcome="stored",provider="simulator"} 1.0' in metrics
        assert CONSUMER not in metrics and "It ships today" not in metrics

        worker.send_signal(signal.SIGTERM)
        _, said = worker.communicate(timeout=30)
        assert worker.returncode == 0
        assert "smsconnector worker: routing the inbox, draining the outbox" in said
        assert said.rstrip().endswith("smsconnector worker: stopped")
        assert "It ships today" not in said and "order on its way" not in said
    finally:
        for process in (worker, web):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.communicate(timeout=30)
        db.close()


def test_a_worker_on_an_unmigrated_database_stops_with_what_to_run(tmp_path):
    env = command_env(SMSCONNECTOR_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")

    result = subprocess.run([sys.executable, "-m", "smsconnector.cli", "worker"], env=env, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 2
    assert "needs" in result.stderr and "run `smsconnector db upgrade`" in result.stderr


def test_a_worker_whose_metrics_port_is_taken_stops_with_the_reason(tmp_path):
    env = command_env(SMSCONNECTOR_DATABASE_URL=f"sqlite:///{tmp_path / 'sms.db'}")
    upgrade(env)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "smsconnector.cli", "worker", "--metrics-port", str(port)],
                                env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert f"error: cannot serve metrics at 127.0.0.1:{port}: Address already in use" in result.stderr
