"""Assignment under concurrency: many arrivals, closes and status changes at once, through several replicas.

On PostgreSQL two app replicas share the database (as behind a load balancer); on SQLite one process takes
the same storm. Afterwards no agent serves more than their capacity, no offline agent keeps a conversation,
and no queue waits while an online agent with its skill has a free slot.
"""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER, eventually

from .api_support import ADMIN_TOKEN, Desk, api_app, bearer

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
_ids = itertools.count(1)


@pytest.fixture
def http():
    """One client shared by the worker threads: one connection pool, no set-up per request."""
    with httpx.Client(timeout=30) as client:
        yield client

OVER_CAPACITY = """SELECT a.id FROM agents a WHERE a.max_concurrent <
                   (SELECT count(*) FROM conversations c WHERE c.agent_id = a.id AND c.status = 'assigned')"""
WITH_OFFLINE_AGENT = """SELECT c.id FROM conversations c JOIN agents a ON a.id = c.agent_id
                        WHERE c.status = 'assigned' AND a.status = 'offline'"""
IDLE_WHILE_QUEUED = """SELECT a.id FROM agents a JOIN agent_skills s ON s.agent_id = a.id
                       WHERE a.status = 'online' AND a.max_concurrent >
                             (SELECT count(*) FROM conversations c WHERE c.agent_id = a.id AND c.status = 'assigned')
                         AND EXISTS (SELECT 1 FROM conversations q WHERE q.status = 'queued' AND q.skill = s.skill)"""


def _replicas(make_app, live_server, database_url: str) -> list:
    count = 2 if database_url.startswith("postgresql") else 1
    return [live_server(api_app(make_app)) for _ in range(count)]


def _text(http: httpx.Client, url: str, consumer: str) -> int:
    body = {"id": f"storm-{next(_ids)}", "from": consumer, "to": BRAND_NUMBER, "text": "Hi"}
    return http.post(f"{url}/webhooks/simulator/inbound", json=body).status_code


@both_databases
def test_a_storm_of_arrivals_fills_each_agent_exactly_and_closes_refill_first_in_first_out(
        make_app, live_server, database_url, db, http):
    replicas = _replicas(make_app, live_server, database_url)
    desk = Desk(replicas[0])
    for name in ("A", "B", "C"):
        desk.agent(name, max_concurrent=3)
    consumers = [f"+1415666{n:04d}" for n in range(30)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(lambda n: _text(http, replicas[n % len(replicas)].url, consumers[n]), range(30)))

    assert codes == [200] * 30
    loads = db.rows("SELECT agent_id, count(*) AS n FROM conversations WHERE status = 'assigned' GROUP BY agent_id")
    assert sorted(r["n"] for r in loads) == [3, 3, 3]
    assert db.count("conversations", "status = 'queued'") == 21

    head = [r["id"] for r in db.rows("SELECT id FROM conversations WHERE status = 'queued' "
                                     "ORDER BY queued_at, id LIMIT 9")]
    serving = [r["id"] for r in db.rows("SELECT id FROM conversations WHERE status = 'assigned'")]

    def close(n: int) -> int:
        url = replicas[n % len(replicas)].url
        return http.post(f"{url}/api/conversations/{serving[n]}/close", headers=bearer(ADMIN_TOKEN)).status_code

    with ThreadPoolExecutor(max_workers=9) as pool:
        assert list(pool.map(close, range(9))) == [200] * 9

    assigned = sorted(r["id"] for r in db.rows("SELECT id FROM conversations WHERE status = 'assigned'"))
    assert assigned == sorted(head)
    assert db.rows(OVER_CAPACITY) == []
    desk.close()


@both_databases
def test_agents_flapping_while_consumers_text_leaves_every_invariant_intact(make_app, live_server, database_url, db,
                                                                            http):
    replicas = _replicas(make_app, live_server, database_url)
    desk = Desk(replicas[0])
    agents = [desk.agent(name, max_concurrent=2) for name in ("A", "B", "C", "D")]
    rng = random.Random(7)
    statuses = [rng.choice(["online", "away", "offline"]) for _ in range(80)]

    def work(n: int) -> int:
        url = replicas[n % len(replicas)].url
        if n % 2:
            return _text(http, url, f"+1415777{n % 12:04d}")  # 12 consumers, most writing several times
        response = http.put(f"{url}/api/agents/{agents[n % 4]}/status", json={"status": statuses[n]},
                             headers=bearer(ADMIN_TOKEN))
        return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert set(pool.map(work, range(80))) == {200}

    assert db.rows(OVER_CAPACITY) == []
    assert db.rows(WITH_OFFLINE_AGENT) == []
    for agent_id in agents:  # everyone online: the queues drain into the free slots
        desk.admin("PUT", f"/api/agents/{agent_id}/status", json={"status": "online"})
    assert eventually(lambda: db.rows(IDLE_WHILE_QUEUED) == [])
    assert db.rows(OVER_CAPACITY) == []
    assert db.count("conversations", "status = 'assigned'") == min(8, db.count("conversations",
                                                                                 "status != 'closed'"))
    desk.close()
