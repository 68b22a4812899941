"""The default router and skill queues, as a table of cases driven over HTTP, on both databases.

Each case creates agents through the API, then plays steps: a consumer texts (through the simulator's
webhook), an agent's status changes, a conversation is closed, transferred or left idle; ``expect`` checks
who serves each consumer's latest conversation (an agent's name, ``queued`` or ``closed``) and ``queue``
checks a skill's queue, head first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from smsconnector.messages import utcnow
from smsconnector.store.models import Conversation

from .api_support import BILLING_NUMBER, Desk, api_app

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

Step = tuple[Any, ...]


@dataclass(frozen=True)
class Case:
    label: str
    agents: tuple[tuple[str, tuple[str, ...], int, str], ...]  #: name, skills, max concurrent, status
    steps: tuple[Step, ...]


CASES = [
    Case("capacity full: the next consumers wait, first come first served",
         agents=(("A", ("support",), 1, "online"),),
         steps=(("text", "c1"), ("text", "c2"), ("text", "c3"),
                ("expect", {"c1": "A", "c2": "queued", "c3": "queued"}), ("queue", "support", ["c2", "c3"]))),
    Case("queue order is preserved as slots free up",
         agents=(("A", ("support",), 1, "online"),),
         steps=(("text", "c1"), ("text", "c2"), ("text", "c3"), ("close", "c1"),
                ("expect", {"c1": "closed", "c2": "A", "c3": "queued"}), ("close", "c2"),
                ("expect", {"c2": "closed", "c3": "A"}), ("queue", "support", []))),
    Case("agent goes offline mid-conversation: it is requeued at the front, ahead of later arrivals",
         agents=(("A", ("support",), 1, "online"), ("B", ("support",), 1, "offline")),
         steps=(("text", "c1"), ("text", "c2"), ("expect", {"c1": "A", "c2": "queued"}),
                ("status", "A", "offline"), ("expect", {"c1": "queued"}), ("queue", "support", ["c1", "c2"]),
                ("status", "B", "online"), ("expect", {"c1": "B", "c2": "queued"}),
                ("text", "c1"), ("expect", {"c1": "B"}), ("conversations", "c1", 1))),
    Case("two skills: each number's consumers wait for agents with its skill",
         agents=(("A", ("support",), 3, "online"), ("B", ("billing",), 1, "online")),
         steps=(("text", "c1"), ("text", "c2", BILLING_NUMBER), ("text", "c3", BILLING_NUMBER),
                ("expect", {"c1": "A", "c2": "B", "c3": "queued"}), ("queue", "billing", ["c3"]),
                ("queue", "support", []))),
    Case("an agent with two skills frees a slot: the consumer who waited longest goes first, not the skill first "
         "in the alphabet",
         agents=(("A", ("support", "billing"), 1, "online"),),
         steps=(("text", "c1"), ("text", "c2"), ("text", "c3", BILLING_NUMBER),
                ("expect", {"c1": "A", "c2": "queued", "c3": "queued"}), ("close", "c1"),
                ("expect", {"c2": "A", "c3": "queued"}), ("close", "c2"), ("expect", {"c3": "A"}))),
    Case("transfer to a skill: another agent takes it, the freed slot goes to the next in line",
         agents=(("A", ("support",), 1, "online"), ("B", ("billing",), 1, "online")),
         steps=(("text", "c1"), ("text", "c2"), ("expect", {"c1": "A", "c2": "queued"}),
                ("transfer", "c1", {"skill": "billing"}), ("expect", {"c1": "B", "c2": "A"}),
                ("conversations", "c1", 1))),
    Case("transfer to an agent, even past their capacity; the freed slot is refilled",
         agents=(("A", ("support",), 1, "online"), ("B", ("support",), 1, "online")),
         steps=(("text", "c1"), ("text", "c2"), ("text", "c3"), ("expect", {"c1": "A", "c2": "B", "c3": "queued"}),
                ("transfer", "c1", {"agent": "B"}), ("expect", {"c1": "B", "c2": "B", "c3": "A"}))),
    Case("a closed conversation: the consumer's next text starts a new one",
         agents=(("A", ("support",), 1, "online"),),
         steps=(("text", "c1"), ("close", "c1"), ("expect", {"c1": "closed"}), ("text", "c1"),
                ("expect", {"c1": "A"}), ("conversations", "c1", 2))),
    Case("an idle conversation is closed and frees its agent; a later text starts anew",
         agents=(("A", ("support",), 1, "online"),),
         steps=(("text", "c1"), ("text", "c2"), ("expect", {"c1": "A", "c2": "queued"}), ("idle", "c1"),
                ("expect", {"c1": "closed", "c2": "A"}), ("text", "c1"), ("expect", {"c1": "queued"}),
                ("conversations", "c1", 2))),
    Case("a text after the idle timeout starts anew even before the idle sweep ran",
         agents=(("A", ("support",), 2, "online"),),
         steps=(("text", "c1"), ("backdate", "c1"), ("text", "c1"), ("conversations", "c1", 2),
                ("expect", {"c1": "A"}))),
    Case("the agent who has waited longest since their last assignment goes first; ties by id",
         agents=(("A", ("support",), 2, "online"), ("B", ("support",), 2, "online")),
         steps=(("text", "c1"), ("text", "c2"), ("text", "c3"), ("text", "c4"),
                ("expect", {"c1": "A", "c2": "B", "c3": "A", "c4": "B"}))),
    Case("an open conversation stays with its agent",
         agents=(("A", ("support",), 2, "online"), ("B", ("support",), 2, "online")),
         steps=(("text", "c1"), ("text", "c1"), ("text", "c1"), ("expect", {"c1": "A"}),
                ("conversations", "c1", 1))),
    Case("agent away: keeps quiet conversations, takes nothing new; a consumer who writes again is requeued",
         agents=(("A", ("support",), 1, "online"), ("B", ("support",), 1, "online")),
         steps=(("text", "c1"), ("status", "A", "away"), ("expect", {"c1": "A"}), ("text", "c2"),
                ("expect", {"c2": "B"}), ("text", "c1"), ("expect", {"c1": "queued"}),
                ("status", "A", "online"), ("expect", {"c1": "A"}))),
    Case("an agent coming online takes the queue in order, up to capacity",
         agents=(("A", ("support",), 2, "offline"),),
         steps=(("text", "c1"), ("text", "c2"), ("text", "c3"), ("queue", "support", ["c1", "c2", "c3"]),
                ("status", "A", "online"), ("expect", {"c1": "A", "c2": "A", "c3": "queued"}))),
]


@both_databases
@pytest.mark.parametrize("case", CASES, ids=[c.label.split(":")[0] for c in CASES])
def test_routing(case: Case, make_app, live_server):
    app = api_app(make_app)
    server = live_server(app)
    desk = Desk(server)
    try:
        assert desk.admin("POST", "/api/skills", json={"name": "billing"}).status_code in (201, 409)
        for name, skills, max_concurrent, status in case.agents:
            desk.agent(name, skills, max_concurrent, status)
        for number, step in enumerate(case.steps, start=1):
            _play(desk, app, server, step, f"step {number} {step}")
    finally:
        desk.close()


def _play(desk: Desk, app: Any, server: Any, step: Step, where: str) -> None:
    action, *args = step
    if action == "text":
        desk.text(*args)
    elif action == "status":
        name, status = args
        response = desk.admin("PUT", f"/api/agents/{desk.agents[name]}/status", json={"status": status})
        assert response.status_code == 200, where
    elif action == "close":
        response = desk.admin("POST", f"/api/conversations/{desk.current(args[0])['id']}/close")
        assert response.status_code == 200, where
    elif action == "transfer":
        consumer, target = args
        body = {"skill": target["skill"]} if "skill" in target else {"agent_id": desk.agents[target["agent"]]}
        response = desk.admin("POST", f"/api/conversations/{desk.current(consumer)['id']}/transfer", json=body)
        assert response.status_code == 200, (where, response.text)
    elif action in ("idle", "backdate"):
        conversation_id = desk.current(args[0])["id"]
        server.call(lambda: _backdate(app, conversation_id))
        if action == "idle":
            assert server.call(lambda: app.plugin("router").close_idle(app)) == 1, where
    elif action == "expect":
        assert {consumer: desk.where(consumer) for consumer in args[0]} == args[0], where
    elif action == "queue":
        skill, expected = args
        assert desk.queue(skill) == expected, where
    elif action == "conversations":
        consumer, count = args
        assert len(desk.conversations(consumer)) == count, where
    else:
        raise AssertionError(f"unknown step {step}")


async def _backdate(app: Any, conversation_id: int) -> None:
    """Make a conversation look silent for two days (the router's default idle timeout is one)."""
    async with app.store.transaction() as session:
        await session.exec(update(Conversation).where(Conversation.id == conversation_id)
                           .values(last_message_at=utcnow() - timedelta(days=2)))
