"""A message waiting for a retry as the agent sees it, and ``POST /api/messages/{id}/retry``: an administrator
sends a failed outbound message again; every other message is refused with 409 and nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from smsconnector import OutboundMessage, PermanentSendError, RetryableSendError, SendResult, Verdict, hookimpl
from smsconnector.testing import BRAND_NUMBER, eventually
from smsconnector.testing.fixtures import FAST_SENDER

from .api_support import ADMIN_TOKEN, BILLING_NUMBER, CONSUMERS, Desk

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
#: the support line sends through the scripted provider; the billing line takes consumers' texts (simulator)
NUMBERS = [{"number": BRAND_NUMBER, "provider": "scripted", "skill": "support"},
           {"number": BILLING_NUMBER, "provider": "simulator", "skill": "billing"}]


class ScriptedProvider:
    """Answers each send with the next outcome scripted for its text (then accepts), and refuses the texts in
    ``refused`` at the send checks."""

    def __init__(self, script: dict[str, list[Exception]] | None = None) -> None:
        self.script = script or {}
        self.refused: set[str] = set()
        self.attempts: list[str] = []
        self.accepted: list[str] = []

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage):
        return self._send(message) if provider == "scripted" else None

    async def _send(self, message: OutboundMessage) -> SendResult:
        self.attempts.append(message.text)
        outcomes = self.script.get(message.text, [])
        if outcomes:
            raise outcomes.pop(0)
        self.accepted.append(message.text)
        return SendResult(provider_message_id=f"scripted-{message.id}-{len(self.attempts)}")

    @hookimpl
    def smsconnector_check_outbound(self, message: OutboundMessage) -> Verdict | None:
        return Verdict.refuse("opted_out", "the consumer opted out") if message.text in self.refused else None


@pytest.fixture
def open_desk(make_app: Any, live_server: Any) -> Iterator[Callable[..., Desk]]:
    """``open_desk(provider, **sender)``: the API served with the support line sending through ``provider``, and
    agent Ana (support and billing); closed after the test."""
    desks: list[Desk] = []

    def open_(provider: ScriptedProvider, **sender: Any) -> Desk:
        # Follow-ups are informational: with the compliance plugin installed, they need no recorded consent here.
        consent = {"compliance": {"consent": {"conversational": "none", "informational": "none"}}}
        app = make_app(api={"admin_tokens": [ADMIN_TOKEN]}, numbers=NUMBERS, register=[("scripted", provider)],
                       sender={**FAST_SENDER, **sender}, plugins=consent)
        desk = Desk(live_server(app))
        desks.append(desk)
        desk.agent("Ana", skills=("support", "billing"))
        return desk

    yield open_
    for desk in desks:
        desk.close()


def follow_up(desk: Desk, text: str, consumer: str = "c1") -> tuple[int, int]:
    """Ana writes to a consumer from the support line; the conversation's and the message's ids."""
    response = desk.as_agent("Ana", "POST", "/api/conversations",
                             json={"to": CONSUMERS[consumer], "from": BRAND_NUMBER, "text": text})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["messages"][-1]["id"]


def shown(desk: Desk, conversation_id: int, message_id: int) -> dict[str, Any]:
    """The message as its agent sees it in the conversation."""
    messages = desk.as_agent("Ana", "GET", f"/api/conversations/{conversation_id}").json()["messages"]
    [message] = [m for m in messages if m["id"] == message_id]
    return message


def status_events(db: Any, message_id: int) -> list[str]:
    """The statuses the ``message.status`` events of ``message_id`` announced, in order."""
    events = [row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
              for row in db.rows("SELECT data FROM events WHERE kind = 'message.status' ORDER BY id")]
    return [event["status"] for event in events if event["message_id"] == message_id]


@both_databases
def test_the_agent_sees_a_retrying_message_with_its_last_error_and_next_attempt(open_desk, db):
    provider = ScriptedProvider({"hi": [RetryableSendError("service unavailable", code="503")] * 2})
    desk = open_desk(provider, backoff_base_seconds=0.5, backoff_max_seconds=0.5)

    conversation_id, message_id = follow_up(desk, "hi")

    waiting = eventually(lambda: (m := shown(desk, conversation_id, message_id))["status"] == "retrying" and m)
    assert (waiting["error_code"], waiting["error_message"]) == ("503", "service unavailable")
    assert datetime.fromisoformat(waiting["next_attempt_at"]) > datetime.fromisoformat(waiting["updated_at"])
    sent = eventually(lambda: (m := shown(desk, conversation_id, message_id))["status"] == "sent" and m)
    assert (sent["error_code"], sent["error_message"], sent["next_attempt_at"]) == (None, None, None)
    assert provider.accepted == ["hi"]


@both_databases
def test_an_administrator_sends_a_failed_message_again_once(open_desk, db):
    provider = ScriptedProvider({"hi": [PermanentSendError("unreachable handset", code="30003")]})
    desk = open_desk(provider)
    conversation_id, message_id = follow_up(desk, "hi")
    assert eventually(lambda: shown(desk, conversation_id, message_id)["status"] == "failed")

    response = desk.admin("POST", f"/api/messages/{message_id}/retry")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["error_code"], body["error_message"]) == (message_id, "queued", None, None)
    assert body["notes"] == ["sent again by an administrator after it failed (30003)"]
    assert eventually(lambda: shown(desk, conversation_id, message_id)["status"] == "sent")
    assert (provider.attempts, provider.accepted) == (["hi", "hi"], ["hi"])
    assert status_events(db, message_id) == ["failed", "queued", "sent"]
    assert db.count("outbox") == 0
    # Sent once: a second retry of a message that did not fail is refused.
    assert desk.admin("POST", f"/api/messages/{message_id}/retry").json()["error"] == "not_failed"


def test_a_retried_message_goes_through_the_send_checks_again(open_desk, db):
    provider = ScriptedProvider({"hi": [PermanentSendError("unreachable handset", code="30003")]})
    desk = open_desk(provider)
    conversation_id, message_id = follow_up(desk, "hi")
    assert eventually(lambda: shown(desk, conversation_id, message_id)["status"] == "failed")
    provider.refused.add("hi")  # the consumer opted out since

    assert desk.admin("POST", f"/api/messages/{message_id}/retry").status_code == 200

    refused = eventually(lambda: (m := shown(desk, conversation_id, message_id))["status"] == "refused" and m)
    assert refused["error_code"] == "opted_out" and provider.accepted == []


def state(db: Any) -> tuple[Any, ...]:
    """Everything a retry could change: the row counts, every message and every outbox row."""
    return (db.snapshot(), db.rows("SELECT * FROM messages ORDER BY id"), db.rows("SELECT * FROM outbox ORDER BY id"))


@both_databases
def test_a_retry_of_anything_but_a_failed_outbound_message_is_refused_and_changes_nothing(open_desk, db):
    provider = ScriptedProvider({"waits": [RetryableSendError("service unavailable", code="503")]})
    provider.refused.add("refused")
    desk = open_desk(provider, backoff_base_seconds=600, backoff_max_seconds=600)
    conversation_id, sent = follow_up(desk, "sent")
    _, refused = follow_up(desk, "refused", consumer="c2")
    _, waiting = follow_up(desk, "waits", consumer="c3")
    desk.text("c4", to=BILLING_NUMBER)
    inbound = db.scalar("SELECT id FROM messages WHERE direction = 'inbound'")
    assert eventually(lambda: [shown(desk, conversation_id, sent)["status"], db.count("outbox", "attempts = 1"),
                               db.count("messages", "status = 'refused'")] == ["sent", 1, 1])
    before = state(db)
    agent = {"authorization": f"Bearer {desk.tokens['Ana']}"}

    refusals = {
        "inbound": desk.admin("POST", f"/api/messages/{inbound}/retry"),
        "sent": desk.admin("POST", f"/api/messages/{sent}/retry"),
        "refused by a send check": desk.admin("POST", f"/api/messages/{refused}/retry"),
        "retrying": desk.admin("POST", f"/api/messages/{waiting}/retry"),
        "no such message": desk.admin("POST", "/api/messages/999999/retry"),
        "an agent": desk.http.post(f"/api/messages/{sent}/retry", headers=agent),
        "no token": httpx.post(f"{desk.server.url}/api/messages/{sent}/retry"),
    }

    assert {what: (r.status_code, r.json()["error"]) for what, r in refusals.items()} == {
        "inbound": (409, "not_outbound"), "sent": (409, "not_failed"), "refused by a send check": (409, "refused"),
        "retrying": (409, "not_failed"), "no such message": (404, "not_found"), "an agent": (403, "forbidden"),
        "no token": (401, "unauthenticated")}
    assert "opted_out" in refusals["refused by a send check"].json()["detail"]
    assert state(db) == before
    assert provider.accepted == ["sent"]
