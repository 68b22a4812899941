"""The demo a new user runs first: it prints an agent token and the commands that try the whole loop."""

from __future__ import annotations

import re
import shlex

import httpx
import pytest

from smsconnector import cli
from smsconnector import server as serving
from smsconnector.testing import eventually


def _curl_paths(output: str) -> dict[str, tuple[str, dict[str, str], str | None]]:
    """The demo's curl commands by their label: (path, headers, body)."""
    commands = {}
    for label, command in re.findall(r"^\s*(Your conversations|Read one|Reply):\s+(curl .*(?:\n\s+-H.*)?)$", output,
                                     re.MULTILINE):
        words = shlex.split(command.replace("\\\n", " "))
        url = next(w for w in words if w.startswith("http"))
        headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
        body = words[words.index("-d") + 1] if "-d" in words else None
        commands[label] = (url.split("8765", 1)[1], headers, body)
    return commands


def test_the_demo_prints_an_agent_token_and_commands_that_work(tmp_path, monkeypatch, capsys, live_server):
    started = []
    monkeypatch.setattr(serving, "serve", lambda app, **options: started.append(app))
    database = tmp_path / "demo.db"

    for _ in range(2):  # started twice: still one demo agent, with a new token
        assert cli.main(["demo", "--database", str(database), "--port", "8765"]) == 0
    first, second = [_curl_paths(chunk) for chunk in capsys.readouterr().out.split("smsconnector demo:")[1:]]
    assert set(second) == {"Your conversations", "Read one", "Reply"}

    server = live_server(started[-1])
    consumer = {"id": "demo-1", "from": "+14155550123", "to": cli.DEMO_NUMBER, "text": "Hi, is my order on its way?"}
    assert httpx.post(f"{server.url}/webhooks/simulator/inbound", json=consumer).status_code == 200

    path, headers, _ = first["Your conversations"]
    assert httpx.get(server.url + path, headers=headers).status_code == 401  # the first run's token was replaced
    path, headers, _ = second["Your conversations"]
    listed = httpx.get(server.url + path, headers=headers).json()["items"]
    assert [(c["id"], c["status"]) for c in listed] == [(1, "assigned")]
    path, headers, _ = second["Read one"]
    read = httpx.get(server.url + path, headers=headers).json()
    assert [m["text"] for m in read["messages"]] == ["Hi, is my order on its way?"]
    path, headers, body = second["Reply"]
    assert httpx.post(server.url + path, headers=headers, content=body).status_code == 201
    outbox = eventually(lambda: httpx.get(f"{server.url}/simulator/outbox").json())
    assert [(o["to"], o["text"]) for o in outbox] == [("+14155550123", "It ships today.")]
    agents = httpx.get(f"{server.url}/api/me", headers=headers).json()["agent"]
    assert (agents["name"], agents["skills"], agents["status"]) == (cli.DEMO_AGENT, ["support"], "online")


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch, tmp_path):
    """The demo reads ./smsconnector.toml when there is one: run where there is none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMSCONNECTOR_CONFIG", raising=False)
