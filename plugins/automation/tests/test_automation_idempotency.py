"""A send retried with the same Idempotency-Key is answered its first result: no recipient is texted twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import CONSUMER, alone, both_databases, delivered, record_consent

from .automation_support import AUTH, TOKEN

KEY = "reminders-2026-12-07-batch-1"
OTHER = "+14155550124"
BODY = {"from": BRAND_NUMBER, "campaign": "reminders", "message_class": "informational", "reply_policy": "ignore",
        "text": "Your appointment is tomorrow at 10:00.", "recipients": [{"to": CONSUMER}, {"to": OTHER}]}


@pytest.fixture
def server(make_app, live_server):
    app = make_app(plugins={"disabled": alone("automation"), "automation": {"token": TOKEN}})
    server = live_server(app)
    for number in (CONSUMER, OTHER):
        server.call(lambda number=number: record_consent(app, number, BRAND_NUMBER, "informational"))
    return server


def send(url: str, body: object = BODY, key: str | None = KEY, http: httpx.Client | None = None) -> httpx.Response:
    headers = {**AUTH, **({"Idempotency-Key": key} if key is not None else {})}
    return (http or httpx).post(f"{url}/api/automation/messages", json=body, headers=headers)


def stored(db) -> dict[str, int]:
    return {table: db.count(table) for table in ("messages", "automation_sends", "idempotency_keys")}


@both_databases
def test_a_send_retried_at_once_and_later_texts_each_recipient_once(server, db):
    start = threading.Barrier(6)

    def fire(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            start.wait()
            return send(server.url, http=http)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(fire, range(6)))
    delivered(server.app, 2)
    later = send(server.url)

    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert {a.content for a in answers} == {later.content}
    assert stored(db) == {"messages": 2, "automation_sends": 2, "idempotency_keys": 1}
    time.sleep(0.3)  # the sender polls every 0.05 s: a second batch would have gone out by now
    assert sorted(s["to"] for s in server.app.plugin("simulator").sent) == sorted([CONSUMER, OTHER])
    assert db.rows("SELECT caller, endpoint, status FROM idempotency_keys") == [
        {"caller": "automation", "endpoint": "POST /api/automation/messages", "status": 202}]


@both_databases
def test_the_key_with_another_body_is_refused_and_a_refused_send_leaves_it_free(server, db):
    landline = send(server.url, {**BODY, "recipients": [{"to": CONSUMER}, {"to": "+44 20 7946 0000"}]})
    assert (landline.status_code, landline.json()["error"]) == (422, "landline")
    assert stored(db) == {"messages": 0, "automation_sends": 0, "idempotency_keys": 0}

    corrected = send(server.url)
    changed = send(server.url, {**BODY, "text": "Your appointment is tomorrow at 11:00."})
    bad_key = send(server.url, key="")

    assert corrected.status_code == 202
    assert (changed.status_code, changed.json()["error"]) == (422, "idempotency_key_reused")
    assert (bad_key.status_code, bad_key.json()["error"]) == (400, "invalid_idempotency_key")
    assert stored(db) == {"messages": 2, "automation_sends": 2, "idempotency_keys": 1}


def test_without_a_key_each_request_is_a_new_send(server, db):
    assert [send(server.url, key=None).status_code for _ in range(2)] == [202, 202]

    assert stored(db) == {"messages": 4, "automation_sends": 4, "idempotency_keys": 0}
