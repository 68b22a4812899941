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


def test_the_demo_prints_a_workspace_link_whose_code_signs_in_once_and_the_phone_page(tmp_path, monkeypatch, capsys,
                                                                                      live_server):
    started = []
    monkeypatch.setattr(serving, "serve", lambda app, **options: started.append(app))
    assert cli.main(["demo", "--database", str(tmp_path / "demo.db"), "--port", "8765"]) == 0
    output = capsys.readouterr().out
    link = re.search(r"http://127\.0\.0\.1:8765/workspace#code=(\S+)", output)
    assert link is not None
    token = re.search(r"authorization: Bearer (\S+)'", output).group(1)
    assert token not in link.group(0)  # the long-lived token is never in a URL
    assert "http://127.0.0.1:8765/simulator/phone" in output

    server = live_server(started[-1])
    sign_in = {"authorization": f"Bearer {link.group(1)}"}
    session = httpx.post(f"{server.url}/api/sessions", headers=sign_in)
    assert session.status_code == 201
    me = httpx.get(f"{server.url}/api/me", headers={"authorization": f"Bearer {session.json()['token']}"}).json()
    assert me["agent"]["name"] == cli.DEMO_AGENT
    assert httpx.post(f"{server.url}/api/sessions", headers=sign_in).status_code == 401  # good once
    assert httpx.get(f"{server.url}/simulator/phone").status_code == 200


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch, tmp_path):
    """The demo reads ./smsconnector.toml when there is one: run where there is none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMSCONNECTOR_CONFIG", raising=False)
