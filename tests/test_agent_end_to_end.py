"""A consumer texts, an agent's client hears of it live, the agent replies, the consumer's phone gets it.

All over real HTTP: the simulator's webhook, the agent API, the SSE stream read with httpx streaming.
"""

from __future__ import annotations

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER, eventually

from .api_support import CONSUMERS, Desk, api_app, bearer
from .sse_client import EventStream, quick_keepalive  # noqa: F401  (fixture)

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
pytestmark = pytest.mark.usefixtures("quick_keepalive")  # stream readers stop promptly


@both_databases
def test_consumer_reaches_an_agent_who_replies_live(make_app, live_server):
    app = api_app(make_app)
    server = live_server(app)
    desk = Desk(server)
    desk.agent("Ana")
    desk.agent("Ben")

    with EventStream(server.url, desk.tokens["Ana"]) as ana_events, \
            EventStream(server.url, desk.tokens["Ben"]) as ben_events:
        assert (ana_events.status_code, ana_events.content_type) == (200, "text/event-stream; charset=utf-8")
        desk.text("c1", text="Hi, is my order on its way?")

        assigned = ana_events.next("conversation.assigned")
        conversation_id = assigned.data["conversation_id"]
        received = ana_events.next("message.received")
        assert (received.data["conversation_id"], received.data["text"]) == (conversation_id,
                                                                             "Hi, is my order on its way?")

        reply = desk.as_agent("Ana", "POST", f"/api/conversations/{conversation_id}/messages",
                              json={"text": "It ships today."})
        assert reply.status_code == 201, reply.text
        sent = eventually(lambda: app.plugin("simulator").sent)
        assert [(s["to"], s["from"], s["text"]) for s in sent] == [(CONSUMERS["c1"], BRAND_NUMBER,
                                                                     "It ships today.")]
        outbox = httpx.get(f"{server.url}/simulator/outbox").json()
        assert [o["message_id"] for o in outbox] == [reply.json()["id"]]
        assert ana_events.next("message.status").data["status"] == "sent"
        assert ana_events.next("message.status").data["status"] == "delivered"
        assert ben_events.events.empty()  # nothing of Ana's reached Ben

    refused = httpx.get(f"{server.url}/api/conversations/{conversation_id}", headers=bearer(desk.tokens["Ben"]))
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    read = desk.as_agent("Ana", "GET", f"/api/conversations/{conversation_id}").json()
    assert [(m["direction"], m["text"], m["status"]) for m in read["messages"]] == [
        ("inbound", "Hi, is my order on its way?", "received"), ("outbound", "It ships today.", "delivered")]
    desk.close()
