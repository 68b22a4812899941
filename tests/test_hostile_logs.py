"""What a running server logs of hostile input: why each request was refused, never a consumer's text or number.

The provider plugins' doors are driven too where they are installed (the integration environment).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from urllib.parse import urlencode

import httpx

from smsconnector.testing import eventually

from .processes import command_env, free_port, healthy, upgrade

ADMIN = "admin-log-token"
BRAND = "+15555550100"
SECRET_NUMBER = "+14155550142"
SECRET_TEXT = "my card number is 4111 1111 1111 1111"
DEEP = b"[" * 20_000 + b"]" * 20_000
TWILIO_NUMBER, TWILIO_SID, TWILIO_TOKEN = "+15555550111", "AC1234567890abcdef1234567890abcdef", "0" * 32
OPENMARKET_NUMBER, OPENMARKET_USER, OPENMARKET_PASSWORD = "+15555550122", "om-user", "om-password"
INSTALLED = {name for name in ("twilio", "openmarket") if importlib.util.find_spec(f"smsconnector_{name}")}

#: (status, the reason logged, or None for an accepted request)
Expected = tuple[int, str | None]


def _configuration(tmp_path, base: str) -> str:
    toml = f"""
database_url = "sqlite:///{tmp_path / 'sms.db'}"
public_url = "{base}"
log_level = "info"
[api]
admin_tokens = ["{ADMIN}"]
[plugins]
enabled = ["simulator"]
[plugins.compliance.consent]
conversational = "none"
[[numbers]]
number = "{BRAND}"
provider = "simulator"
skill = "support"
"""
    if "twilio" in INSTALLED:
        toml += f'[[numbers]]\nnumber = "{TWILIO_NUMBER}"\nprovider = "twilio"\nskill = "support"\n'
        toml += f'[plugins.twilio]\naccount_sid = "{TWILIO_SID}"\nauth_token = "{TWILIO_TOKEN}"\n'
    if "openmarket" in INSTALLED:
        toml += f'[[numbers]]\nnumber = "{OPENMARKET_NUMBER}"\nprovider = "openmarket"\nskill = "support"\n'
        toml += (f'[plugins.openmarket]\naccount_id = "000-000-000-00000"\npassword = "x"\n'
                 f'inbound_username = "{OPENMARKET_USER}"\ninbound_password = "{OPENMARKET_PASSWORD}"\n')
    return toml


def _host_requests(base: str) -> list[tuple[Callable[[], int], Expected]]:
    """The simulator's webhook and the API, each through a refusal hardened on this branch."""
    admin = {"authorization": f"Bearer {ADMIN}"}

    def webhook(raw: bytes) -> Callable[[], int]:
        return lambda: httpx.post(f"{base}/webhooks/simulator/inbound", content=raw).status_code

    def message(**fields: object) -> bytes:
        return json.dumps({"id": "sim-1", "from": SECRET_NUMBER, "to": BRAND, "text": SECRET_TEXT, **fields}).encode()

    agent: dict[str, str] = {}

    def as_agent(method: str, path: str, raw: bytes, **headers: str | bytes) -> Callable[[], int]:
        def send() -> int:
            if not agent:  # created once the first message waits, so that its conversation is assigned to them
                agent.update(httpx.post(f"{base}/api/agents", headers=admin, json={
                    "name": "Ana", "skills": ["support"], "status": "online"}).json())
            conversation = httpx.get(f"{base}/api/conversations", headers=admin).json()["items"][0]["id"]
            with httpx.stream(method, base + path.format(c=conversation), content=raw or None, headers={
                    "authorization": f"Bearer {agent['token']}", "content-type": "application/json", **headers}) as r:
                return r.status_code
        return send

    return [
        (webhook(message(text=SECRET_TEXT + "\u0000")), (200, None)),  # mended and routed
        (webhook(message(id="x" * 101)), (400, "the provider message id is longer than 100 characters")),
        (webhook(message(text="@").replace(b'"@"', b'"\\ud800 ' + SECRET_TEXT.encode() + b'"')),
         (400, "body.text: a lone surrogate (half of a UTF-16 pair) is not text")),
        (webhook(DEEP), (400, "the JSON nests deeper than 32 levels")),
        (webhook(message(id="sim-2", **{"from": SECRET_NUMBER + "0000000"})),
         (400, "simulator event: not a possible phone number: '…'")),  # the number masked
        (as_agent("POST", "/api/conversations/{c}/messages", json.dumps({"text": SECRET_TEXT + "\u0000"}).encode()),
         (400, "body.text: U+0000 (NUL) is not allowed in text")),
        (as_agent("POST", "/api/conversations/{c}/messages", b'{"text": "\\udc00' + SECRET_TEXT.encode() + b'"}'),
         (400, "body.text: a lone surrogate")),
        (as_agent("POST", "/api/conversations/{c}/messages", DEEP), (400, "the JSON nests deeper than 32 levels")),
        (as_agent("POST", "/api/conversations", json.dumps({"to": SECRET_NUMBER, "from": BRAND, "text": SECRET_TEXT,
                                                            "context": {"n": 10**20}}).encode()),
         (400, "body.context: an integer beyond 64 bits")),
        (as_agent("GET", "/api/events", b"", **{"last-event-id": "²".encode("latin-1")}),
         (400, "Last-Event-ID must be an event id")),
        (lambda: httpx.get(f"{base}/api/conversations", headers=admin, params={"skill": SECRET_NUMBER}).status_code,
         (200, None)),  # its access line keeps the path, not the query
    ]


def _twilio_requests(base: str) -> list[tuple[Callable[[], int], Expected]]:
    from twilio.request_validator import RequestValidator

    def signed(**changes: str) -> Callable[[], int]:
        fields = {"MessageSid": "SM" + "1" * 32, "AccountSid": TWILIO_SID, "From": SECRET_NUMBER, "To": TWILIO_NUMBER,
                  "Body": SECRET_TEXT, "NumMedia": "0", "NumSegments": "1", **changes}
        url = f"{base}/webhooks/twilio/inbound"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, fields)
        return lambda: httpx.post(url, content=urlencode(fields), headers={
            "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}).status_code

    return [
        (signed(Body=SECRET_TEXT + "\u0000"), (200, None)),
        (signed(MessageSid="SM" + "2" * 199), (400, "the provider message id is longer than 100 characters")),
        (signed(MessageSid="SM" + "3" * 32, NumSegments="²"), (400, "NumSegments is not a count")),
        (signed(MessageSid="SM" + "4" * 32, From=SECRET_NUMBER + "0000000"),
         (400, "From is not a phone number in E.164")),
    ]


def _openmarket_requests(base: str) -> list[tuple[Callable[[], int], Expected]]:
    basic = "Basic " + base64.b64encode(f"{OPENMARKET_USER}:{OPENMARKET_PASSWORD}".encode()).decode()

    def post(kind: str, raw: bytes) -> Callable[[], int]:
        return lambda: httpx.post(f"{base}/webhooks/openmarket/{kind}", content=raw, headers={
            "authorization": basic, "content-type": "application/json"}).status_code

    def mo(ticket: str, content: str = SECRET_TEXT) -> bytes:
        return json.dumps({"mobileOriginate": {"ticketId": ticket, "source": {"ton": 1, "address": SECRET_NUMBER[1:]},
                                               "destination": {"ton": 1, "address": OPENMARKET_NUMBER[1:]},
                                               "message": {"type": "text", "content": content}}}).encode()

    def receipt(**fields: object) -> bytes:
        return json.dumps({"deliveryReceipt": {"ticketId": "T-1", "response": {"code": 4}, **fields}}).encode()

    return [
        (post("inbound", mo("T-1", SECRET_TEXT + "\u0000").replace(b'"ton": 1', b'"ton": 1e999', 1)), (200, None)),
        (post("inbound", mo("T-2", "@").replace(b'"@"', b'"\\ud800 ' + SECRET_TEXT.encode() + b'"')),
         (400, "body.mobileOriginate: a lone surrogate")),
        (post("status", receipt(response={"code": 1}).replace(b'"code": 1', b'"code": 1e999')),
         (400, "deliveryReceipt.response.code must be a whole number")),
        (post("status", receipt(segmentNumber=1, totalSegments=10**20)), (400, "totalSegments must be from 1 to 255")),
    ]


def test_every_refusal_is_logged_with_its_reason_and_without_the_text_or_the_number(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "smsconnector.toml").write_text(_configuration(tmp_path, base))
    env = command_env()
    upgrade(env, cwd=tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(port)], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    requests = _host_requests(base)
    requests += _twilio_requests(base) if "twilio" in INSTALLED else []
    requests += _openmarket_requests(base) if "openmarket" in INSTALLED else []
    answered = []
    try:
        eventually(lambda: healthy(base), timeout=30)
        for send, _ in requests:
            answered.append(send())
    finally:
        server.send_signal(signal.SIGINT)
        _, logged = server.communicate(timeout=30)

    assert answered == [status for _, (status, _) in requests]
    for _, (_, reason) in requests:
        if reason is not None:
            assert f"refused with 400 malformed: {reason}" in logged, reason
    assert '"GET /api/conversations HTTP/1.1" 200' in logged  # the access line keeps the path, not the query
    assert SECRET_TEXT not in logged and "4111" not in logged
    assert SECRET_NUMBER not in logged and SECRET_NUMBER[1:] not in logged and "%2B1415" not in logged
