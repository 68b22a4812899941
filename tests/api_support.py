"""Driving the agent API and the simulator over real HTTP, for the routing and API tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import httpx

from smsconnector.app import App
from smsconnector.testing import BRAND_NUMBER, LiveServer

ADMIN_TOKEN = "admin-test-token"
BILLING_NUMBER = "+15555550199"
#: two brand numbers: the test default (skill "support") and a billing line
NUMBERS = [{"number": BRAND_NUMBER, "provider": "simulator", "skill": "support"},
           {"number": BILLING_NUMBER, "provider": "simulator", "skill": "billing"}]
CONSUMERS = {f"c{n}": f"+1415555{n:04d}" for n in range(1, 10)}
_message_ids = itertools.count(1)


def api_app(make_app: Any, **overrides: Any) -> App:
    """An app with an admin token and both brand numbers (so both skills exist)."""
    return make_app(api={"admin_tokens": [ADMIN_TOKEN]}, numbers=NUMBERS, **overrides)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Desk:
    """An agent desk over HTTP: agents by name, consumers by label, the admin's token."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=15)
        self.agents: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        self.names: dict[int, str] = {}

    def close(self) -> None:
        self.http.close()

    def admin(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers={**bearer(ADMIN_TOKEN), **(headers or {})}, **kwargs)

    def as_agent(self, name: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=bearer(self.tokens[name]), **kwargs)

    def agent(self, name: str, skills: Iterable[str] = ("support",), max_concurrent: int = 3,
              status: str = "online") -> int:
        response = self.admin("POST", "/api/agents", json={"name": name, "skills": list(skills),
                                                           "max_concurrent": max_concurrent, "status": status})
        assert response.status_code == 201, response.text
        body = response.json()
        self.agents[name], self.tokens[name], self.names[body["id"]] = body["id"], body["token"], name
        return int(body["id"])

    def text(self, consumer: str, to: str = BRAND_NUMBER, text: str = "Hello") -> None:
        body = {"id": f"sim-in-{next(_message_ids)}", "from": CONSUMERS.get(consumer, consumer), "to": to,
                "text": text}
        response = self.http.post("/webhooks/simulator/inbound", json=body)
        assert response.status_code == 200, response.text

    def conversations(self, consumer: str) -> list[dict[str, Any]]:
        """The consumer's conversations, oldest first."""
        items = self.admin("GET", "/api/conversations", params={"limit": 200}).json()["items"]
        return sorted((c for c in items if c["consumer_number"] == CONSUMERS[consumer]), key=lambda c: c["id"])

    def current(self, consumer: str) -> dict[str, Any]:
        return self.conversations(consumer)[-1]

    def where(self, consumer: str) -> str:
        """Who serves the consumer's latest conversation: an agent's name, or its status."""
        conversation = self.current(consumer)
        if conversation["status"] == "assigned":
            return self.names[conversation["agent_id"]]
        return str(conversation["status"])

    def queue(self, skill: str) -> list[str]:
        """The consumers waiting in a skill's queue, head first."""
        items = self.admin("GET", "/api/conversations", params={"status": "queued", "skill": skill,
                                                                "limit": 200}).json()["items"]
        by_number = {number: label for label, number in CONSUMERS.items()}
        items.sort(key=lambda c: (datetime.fromisoformat(c["queued_at"]), c["id"]))
        return [by_number[c["consumer_number"]] for c in items]


def snapshot(db: Any) -> dict[str, int]:
    """Row counts of every table the host writes, the routing tables included."""
    return {**db.snapshot(), **{t: db.count(t) for t in ("agents", "agent_skills", "skills", "events")}}
