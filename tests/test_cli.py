"""The ``smsconnector`` command, as a user runs it."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from smsconnector.cli import main
from smsconnector.testing import Database, eventually

from .processes import command_env, free_port, healthy, upgrade


def test_segments_reports_encoding_count_and_the_characters_forcing_ucs2(capsys):
    assert main(["segments", "Café “quoted” 😀"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["encoding: UCS-2", "segments: 1"]
    assert out[2] == "forces UCS-2: '“' (U+201C) '”' (U+201D) '😀' (U+1F600)"
    assert out[3] == "[1] Café “quoted” 😀"


def test_segments_json_for_scripts(capsys):
    assert main(["segments", "a" * 161, "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert (report["encoding"], report["count"], report["units"]) == ("GSM-7", 2, 161)
    assert [len(s) for s in report["segments"]] == [153, 8]


def test_segments_smart_encoding_turns_curly_quotes_into_gsm(capsys):
    assert main(["segments", "“Hi” — it’s here…", "--smart", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert (report["encoding"], report["text"]) == ("GSM-7", '"Hi" - it\'s here...')


def test_plugins_lists_name_distribution_version_enabled_and_hooks(capsys, monkeypatch):
    monkeypatch.setenv("SMSCONNECTOR_PLUGINS__DISABLED", "simulator")
    assert main(["plugins", "--json"]) == 0

    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["router"]["distribution"] == "smsconnector" and listed["router"]["enabled"] is True
    assert "smsconnector_route" in listed["router"]["hooks"]
    assert listed["simulator"]["enabled"] is False


def test_db_upgrade_then_send_queues_into_the_outbox(tmp_path, capsys, monkeypatch):
    database = tmp_path / "sms.db"
    monkeypatch.setenv("SMSCONNECTOR_DATABASE_URL", f"sqlite:///{database}")

    assert main(["db", "upgrade"]) == 0
    assert main(["send", "--to", "+14155550123", "--text", "Your table is ready"]) == 0

    db = Database(f"sqlite:///{database}")
    assert db.rows("SELECT to_number, body, status FROM messages") == [
        {"to_number": "+14155550123", "body": "Your table is ready", "status": "queued"}]
    assert db.count("outbox") == 1
    db.close()


def test_send_refuses_an_agent_message_over_the_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SMSCONNECTOR_DATABASE_URL", f"sqlite:///{tmp_path / 'sms.db'}")
    main(["db", "upgrade"])

    assert main(["send", "--to", "+14155550123", "--text", "x" * 1601]) == 2
    assert "the limit is 1600 characters" in capsys.readouterr().err


def test_bad_configuration_stops_with_the_key(capsys, monkeypatch):
    monkeypatch.setenv("SMSCONNECTOR_SENDER__RETRY_FOR_SECONDS", "0")

    assert main(["db", "upgrade"]) == 2
    assert capsys.readouterr().err.startswith("error: configuration sender.retry_for_seconds:")


def test_a_plugins_bad_setting_stops_the_command_naming_the_plugin_and_the_setting(tmp_path, capsys, monkeypatch):
    pytest.importorskip("smsconnector_twilio", reason="needs the Twilio plugin, whose setting is the wrong one here")
    database = tmp_path / "sms.db"
    monkeypatch.setenv("SMSCONNECTOR_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("SMSCONNECTOR_PLUGINS__TWILIO__ACCOUNT_SID", "AC123")
    monkeypatch.setenv("SMSCONNECTOR_PLUGINS__TWILIO__AUTH_TOKEN", "0123456789abcdef0123456789abcdef")

    assert main(["db", "upgrade"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: plugin 'twilio': configuration plugins.twilio.account_sid: "), err
    assert "0123456789abcdef" not in err  # a secret beside the wrong setting is not echoed
    assert not database.exists()  # stopped before anything was written


def test_demo_runs_end_to_end_as_the_readme_says(tmp_path):
    port = free_port()
    env = command_env()
    demo = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", "demo", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: healthy(base), timeout=30)
        text = {"id": "demo-1", "from": "+14155550123", "to": "+15555550100", "text": "Hi"}
        assert httpx.post(f"{base}/webhooks/simulator/inbound", json=text).status_code == 200
        subprocess.run([sys.executable, "-m", "smsconnector.cli", "send", "--database", "smsconnector-demo.db",
                        "--to", "+14155550123", "--text", "Hello from the demo"], cwd=tmp_path, env=env, check=True)
        sent = eventually(lambda: httpx.get(f"{base}/simulator/outbox").json(), timeout=15)
        assert sent[0]["text"] == "Hello from the demo"
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    assert "smsconnector demo" in output and "/webhooks/simulator/inbound" in output


def test_serving_an_unmigrated_database_stops_with_what_to_run(tmp_path):
    env = command_env(SMSCONNECTOR_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")

    result = subprocess.run([sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert "needs" in result.stderr and "run `smsconnector db upgrade`" in result.stderr


def test_serve_logs_the_host_in_one_format_and_never_a_message_body(tmp_path):
    database = tmp_path / "sms.db"
    (tmp_path / "smsconnector.toml").write_text(f"""
database_url = "sqlite:///{database}"
log_level = "debug"
[plugins]
enabled = ["simulator"]
[[numbers]]
number = "+15555550100"
provider = "simulator"
""")
    env = command_env()
    upgrade(env, cwd=tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(port)], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: healthy(base), timeout=30)
        # Another process holds the write lock for a moment, so the webhook's insert waits for it in the
        # driver's thread: the path on which the driver logs a statement with its parameters at debug.
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            texted = pool.submit(httpx.post, f"{base}/webhooks/simulator/inbound", timeout=30, json={
                "id": "sim-1", "from": "+14155550123", "to": "+15555550100", "text": "Is my order on its way?"})
            time.sleep(0.3)
            other.execute("COMMIT")
            assert texted.result().status_code == 200
        other.close()
        assert httpx.post(f"{base}/webhooks/simulator/inbound", json={"text": "no sender"}).status_code == 400
    finally:
        server.send_signal(signal.SIGINT)
        _, logged = server.communicate(timeout=30)

    assert "INFO uvicorn.error: Application startup complete." in logged
    assert "WARNING smsconnector.app: POST /webhooks/simulator/inbound refused with 400" in logged
    # the level applies: each stored webhook is logged at debug...
    assert "DEBUG smsconnector.app: simulator inbound webhook stored: 1 event(s), 0 of them sent before" in logged
    assert "order on its way" not in logged and "+14155550123" not in logged  # ...but no body, no number
