"""What a running server logs of hostile input: why each request was refused, never a consumer's text or number."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx

from smsconnector.testing import eventually

from .processes import command_env, free_port, healthy, upgrade

ADMIN = "admin-log-token"
BRAND = "+15555550100"
SECRET_NUMBER = "+14155550142"
SECRET_TEXT = "my card number is 4111 1111 1111 1111"
DEEP = b"[" * 20_000 + b"]" * 20_000


def test_every_refusal_is_logged_with_its_reason_and_without_the_text_or_the_number(tmp_path):
    (tmp_path / "smsconnector.toml").write_text(f"""
database_url = "sqlite:///{tmp_path / 'sms.db'}"
log_level = "info"
[api]
admin_tokens = ["{ADMIN}"]
[[numbers]]
number = "{BRAND}"
provider = "simulator"
skill = "support"
[plugins.compliance.consent]
conversational = "none"
""")
    env = command_env()
    upgrade(env, cwd=tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(port)], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    statuses: list[int] = []
    try:
        eventually(lambda: healthy(base), timeout=30)
        admin = httpx.Client(base_url=base, headers={"authorization": f"Bearer {ADMIN}"}, timeout=15)
        agent = admin.post("/api/agents", json={"name": "Ana", "skills": ["support"], "status": "online"}).json()
        as_agent = {"authorization": f"Bearer {agent['token']}", "content-type": "application/json"}

        def webhook(raw: bytes) -> None:
            statuses.append(httpx.post(f"{base}/webhooks/simulator/inbound", content=raw).status_code)

        def message(**fields: object) -> bytes:
            return json.dumps({"id": "sim-1", "from": SECRET_NUMBER, "to": BRAND, "text": SECRET_TEXT,
                               **fields}).encode()

        webhook(message(text=SECRET_TEXT + "\u0000"))  # accepted, mended, routed
        eventually(lambda: admin.get("/api/conversations").json()["items"])
        conversation = admin.get("/api/conversations").json()["items"][0]["id"]
        webhook(message(id="x" * 101))
        webhook(message(text="@").replace(b'"@"', b'"\\ud800 ' + SECRET_TEXT.encode() + b'"'))
        webhook(DEEP)
        webhook(message(id="sim-2", **{"from": SECRET_NUMBER + "0000000"}))  # too long for a number
        reply = f"{base}/api/conversations/{conversation}/messages"
        for raw in (json.dumps({"text": SECRET_TEXT + "\u0000"}).encode(),
                    b'{"text": "\\udc00' + SECRET_TEXT.encode() + b'"}', DEEP):
            statuses.append(httpx.post(reply, content=raw, headers=as_agent).status_code)
        statuses.append(httpx.post(f"{base}/api/conversations", headers=as_agent, content=json.dumps(
            {"to": SECRET_NUMBER, "from": BRAND, "text": SECRET_TEXT, "context": {"n": 10**20}})).status_code)
        with httpx.stream("GET", f"{base}/api/events", headers={**as_agent, "last-event-id": "²".encode("latin-1")}
                          ) as events:
            statuses.append(events.status_code)
        statuses.append(admin.get("/api/conversations", params={"skill": SECRET_NUMBER}).status_code)
        admin.close()
    finally:
        server.send_signal(signal.SIGINT)
        _, logged = server.communicate(timeout=30)

    assert statuses == [200, 400, 400, 400, 400, 400, 400, 400, 400, 400, 200]
    for reason in ("the provider message id is longer than 100 characters",
                   "body.text: a lone surrogate (half of a UTF-16 pair) is not text",
                   "the JSON nests deeper than 32 levels",
                   "simulator event: not a possible phone number: '…'",  # the number masked
                   "body.text: U+0000 (NUL) is not allowed in text",
                   "body.context: an integer beyond 64 bits",
                   "Last-Event-ID must be an event id"):
        assert f"refused with 400 malformed: {reason}" in logged, reason
    assert '"GET /api/conversations HTTP/1.1" 200' in logged  # the access line keeps the path, not the query
    assert SECRET_TEXT not in logged and "4111" not in logged
    assert SECRET_NUMBER not in logged and SECRET_NUMBER[1:] not in logged and "%2B1415" not in logged
