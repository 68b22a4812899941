"""Over real HTTP: STOP -> one confirmation -> the agent is refused, visibly -> START -> the agent gets through."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, TypeVar

import httpx
import pytest

from smsconnector import outbound
from smsconnector.testing import BRAND_NUMBER, eventually

CONSUMER = "+13055550142"
ADMIN = {"authorization": "Bearer admintoken"}
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
T = TypeVar("T")



def text(server: Any, sid: str, body: str) -> None:
    reply = httpx.post(f"{server.url}/webhooks/simulator/inbound",
                       json={"id": sid, "from": CONSUMER, "to": BRAND_NUMBER, "text": body})
    assert reply.status_code == 200, reply.text


@both_databases
def test_stop_confirms_once_blocks_the_agent_visibly_and_start_lets_the_agent_write_again(
        make_app: Any, live_server: Any, db: Any, make_agent: Any) -> None:
    app = make_app(api={"admin_tokens": ["admintoken"]},
                   plugins={"compliance": {"numbers": {BRAND_NUMBER: {"brand_name": "Acme",
                                                                      "contact": "acme.example/help"}}}})
    agent_id, token = make_agent()
    server = live_server(app)
    sent = app.plugin("simulator").sent

    text(server, "sim-1", "Hi, where is my order?")
    [conversation] = db.rows("SELECT * FROM conversations")

    text(server, "sim-2", "Stop.")
    [confirmation] = eventually(lambda: list(sent))
    assert confirmation["text"] == ("Acme: You are unsubscribed and will receive no more messages. "
                                    "Reply START to resubscribe.")
    assert confirmation["message_class"] == "compliance"
    stop = db.rows("SELECT * FROM messages WHERE provider_message_id = 'sim-2'")[0]
    assert stop["conversation_id"] == conversation["id"] and stop["handled_by"] == "compliance"
    notes = json.loads(stop["notes"]) if isinstance(stop["notes"], str) else stop["notes"]
    assert notes == ["Opted out: the consumer texted 'Stop.'. One confirmation was sent. Nothing more can be sent "
                     "to them until they text START."]

    ledger = list(csv.DictReader(io.StringIO(httpx.get(f"{server.url}/api/compliance/ledger.csv",
                                                       headers=ADMIN).text)))
    assert [(r["action"], r["method"], r["raw_text"]) for r in ledger][:1] == [("opt_out", "keyword", "Stop.")]
    assert ledger[0]["inbound_message_id"] == str(stop["id"])
    assert ledger[0]["consumer_number"] == CONSUMER and ledger[0]["brand_number"] == BRAND_NUMBER
    eventually(lambda: len(db.rows("SELECT * FROM compliance_ledger WHERE action = 'confirmation'")) == 1)
    [claim] = db.rows("SELECT * FROM compliance_ledger WHERE action = 'confirmation'")
    assert claim["message_id"] == confirmation["message_id"] and claim["confirms_event_id"] == int(ledger[0]["id"])

    async def reply(body: str) -> int:
        async with app.store.transaction() as session:
            message = await outbound.queue(session, provider="simulator", from_number=BRAND_NUMBER,
                                           to_number=CONSUMER, text=body, conversation_id=conversation["id"],
                                           agent_id=agent_id)
        assert message.id is not None
        return message.id

    refused_id = server.call(lambda: reply("Sorry to see you go! Here is 10% off."))
    refused = eventually(lambda: [r for r in db.rows("SELECT * FROM messages WHERE id = :id", id=refused_id)
                                  if r["status"] == "refused"])[0]
    assert refused["error_code"] == "opted_out"
    assert refused["error_message"].startswith(f"{CONSUMER} opted out of messages from Acme on ")
    assert "by texting 'Stop.'" in refused["error_message"] and "text START" in refused["error_message"]
    assert len(sent) == 1  # nothing reached the provider

    preview = httpx.post(f"{server.url}/api/compliance/preview", headers={"authorization": f"Bearer {token}"},
                         json={"to": CONSUMER, "from": BRAND_NUMBER, "text": "Are you there?"}).json()
    assert (preview["verdict"]["action"], preview["verdict"]["code"]) == ("refuse", "opted_out")

    text(server, "sim-3", "START")
    eventually(lambda: len(sent) == 2)
    assert sent[1]["text"].startswith("Acme: You are resubscribed. For help: acme.example/help.")

    delivered_id = server.call(lambda: reply("Welcome back! Your order ships today."))
    eventually(lambda: db.scalar("SELECT status FROM messages WHERE id = :id", id=delivered_id) == "delivered")
    assert [s["text"] for s in sent][2] == "Welcome back! Your order ships today."
    assert [r["action"] for r in db.rows("SELECT action FROM compliance_ledger ORDER BY id")] == [
        "opt_out", "confirmation", "opt_in"]
