"""Idempotency-Key on the API's writes: a retried reply or follow-up is answered its first result, never sent twice.

Over real HTTP on both databases: a retry with the same key and body gets the same status and body with one
message stored and one sent; another body with the key is refused (422) and changes nothing; duplicates fired
at once make one message (threads, and two replicas on PostgreSQL); keys are per caller; a refused request
leaves its key free; keys past their retention are forgotten by the host's upkeep.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlmodel import update

from smsconnector import idempotency
from smsconnector.api import replies
from smsconnector.messages import AGENT_TEXT_LIMIT, utcnow
from smsconnector.store.models import IdempotencyKey
from smsconnector.testing import BRAND_NUMBER, eventually

from .api_support import ADMIN_TOKEN, CONSUMERS, Desk, api_app, bearer

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
KEY = "5f1c6a52-8f0e-4c7b-9d43-0b8e2f3a9c11"
#: upkeep every 0.05 s (a quarter of the shortest reassembly timeout), so pruning is seen at once
FAST_UPKEEP = {"simulator": {"reassembly_timeout_seconds": 0.2}}


@pytest.fixture
def desk(make_app, live_server):
    desk = Desk(live_server(api_app(make_app, providers=FAST_UPKEEP)))
    desk.agent("Ana")
    desk.agent("Ben")
    yield desk
    desk.close()


def post(desk: Desk, path: str, body: dict[str, object], *, token: str, key: str | None = KEY,
         http: httpx.Client | None = None) -> httpx.Response:
    headers = {**bearer(token), **({idempotency.HEADER: key} if key is not None else {})}
    return (http or desk.http).post(path, json=body, headers=headers)


def conversation_of(desk: Desk, consumer: str, agent: str = "Ana") -> int:
    """A conversation ``consumer`` opened, assigned to ``agent``."""
    desk.text(consumer)
    conversation_id = int(desk.current(consumer)["id"])
    if desk.where(consumer) != agent:
        moved = desk.admin("POST", f"/api/conversations/{conversation_id}/transfer",
                           json={"agent_id": desk.agents[agent]})
        assert moved.status_code == 200, moved.text
    return conversation_id


def written(db) -> dict[str, int]:
    """Row counts of what a write through these endpoints stores (the sender and status reports move the rest)."""
    return {table: db.count(table) for table in ("consumers", "conversations", "messages", "idempotency_keys")}


def outbound(db) -> list[str]:
    return [r["body"] for r in db.rows("SELECT body FROM messages WHERE direction = 'outbound' ORDER BY id")]


@both_databases
def test_a_retried_reply_is_answered_its_first_result_and_sent_once(desk, db):
    conversation_id = conversation_of(desk, "c1")
    token = desk.tokens["Ana"]
    path = f"/api/conversations/{conversation_id}/messages"
    simulator = desk.server.app.plugin("simulator")

    first = post(desk, path, {"text": "Your refund is on its way."}, token=token)
    eventually(lambda: len(simulator.sent) == 1)
    again = post(desk, path, {"text": "Your refund is on its way."}, token=token)
    quoted = post(desk, path, {"text": "Your refund is on its way."}, token=token, key=f'"{KEY}"')

    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (quoted.status_code, quoted.content) == (201, first.content)
    assert again.json()["status"] == "queued"  # the first answer, though the message has been sent since
    assert outbound(db) == ["Your refund is on its way."]
    time.sleep(0.3)  # the sender polls every 0.05 s: anything queued by a retry would have gone by now
    assert len(simulator.sent) == 1
    assert db.count("outbox") == 0
    assert db.rows("SELECT caller, endpoint, key, status FROM idempotency_keys") == [
        {"caller": f"agent:{desk.agents['Ana']}", "endpoint": "POST /api/conversations/{conversation_id}"
         "/messages", "key": KEY, "status": 201}]


@both_databases
def test_the_same_key_with_another_request_is_refused_with_422_and_changes_nothing(desk, db):
    conversation_id = conversation_of(desk, "c1")
    other_id = conversation_of(desk, "c2")
    token = desk.tokens["Ana"]
    first = post(desk, f"/api/conversations/{conversation_id}/messages", {"text": "Hello"}, token=token)
    assert first.status_code == 201
    before = written(db)

    other_body = post(desk, f"/api/conversations/{conversation_id}/messages", {"text": "Hello!"}, token=token)
    other_path = post(desk, f"/api/conversations/{other_id}/messages", {"text": "Hello"}, token=token)

    for refused in (other_body, other_path):
        assert (refused.status_code, refused.json()["error"]) == (422, "idempotency_key_reused")
        assert "another request" in refused.json()["detail"]
    assert written(db) == before
    assert outbound(db) == ["Hello"]


@both_databases
def test_duplicates_fired_at_once_make_one_message_and_all_get_its_answer(desk, db):
    conversation_id = conversation_of(desk, "c1")
    token = desk.tokens["Ana"]
    path = f"/api/conversations/{conversation_id}/messages"
    start = threading.Barrier(12)

    def fire(_: int) -> httpx.Response:
        with httpx.Client(base_url=desk.server.url, timeout=30) as http:
            start.wait()
            return post(desk, path, {"text": "Once only"}, token=token, http=http)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(fire, range(12)))

    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert outbound(db) == ["Once only"]
    assert db.count("idempotency_keys") == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_duplicates_through_two_replicas_make_one_message(make_app, live_server, db):
    replicas = [live_server(api_app(make_app, sender={"enabled": False})) for _ in range(2)]
    desk = Desk(replicas[0])
    desk.agent("Ana", max_concurrent=10)
    conversations = [conversation_of(desk, consumer) for consumer in ("c1", "c2", "c3")]
    token = desk.tokens["Ana"]
    start = threading.Barrier(12)

    def fire(n: int) -> httpx.Response:
        conversation_id = conversations[n % 3]
        with httpx.Client(base_url=replicas[n % 2].url, timeout=30) as http:
            start.wait()
            return http.post(f"/api/conversations/{conversation_id}/messages", json={"text": f"to {conversation_id}"},
                             headers={**bearer(token), idempotency.HEADER: f"key-{conversation_id}"})

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(fire, range(12)))

    desk.close()
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert sorted(outbound(db)) == sorted(f"to {c}" for c in conversations)
    for n, answer in enumerate(answers):
        assert answer.content == answers[n % 3].content


@both_databases
def test_keys_belong_to_their_caller(desk, db):
    owner, other = "Ana", "Ben"
    conversation_id = conversation_of(desk, "c1", owner)
    other_id = conversation_of(desk, "c2", other)

    answers = [post(desk, f"/api/conversations/{conversation_id}/messages", {"text": "Hi"}, token=desk.tokens[owner]),
               post(desk, f"/api/conversations/{other_id}/messages", {"text": "Hi"}, token=desk.tokens[other]),
               post(desk, f"/api/conversations/{conversation_id}/messages", {"text": "Hi"}, token=ADMIN_TOKEN)]

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["id"] for a in answers}) == 3
    assert outbound(db) == ["Hi", "Hi", "Hi"]
    assert sorted(r["caller"] for r in db.rows("SELECT caller FROM idempotency_keys")) == sorted(
        ["admin", f"agent:{desk.agents[owner]}", f"agent:{desk.agents[other]}"])


@both_databases
def test_a_refused_request_leaves_its_key_free_for_the_corrected_one(desk, db):
    conversation_id = conversation_of(desk, "c1")
    token = desk.tokens["Ana"]
    path = f"/api/conversations/{conversation_id}/messages"
    before = written(db)

    too_long = post(desk, path, {"text": "x" * (AGENT_TEXT_LIMIT + 1)}, token=token)
    not_json = desk.http.post(path, content=b"{", headers={**bearer(token), idempotency.HEADER: KEY})
    missing = post(desk, "/api/conversations/2147483647/messages", {"text": "Hi"}, token=token)

    assert [(r.status_code, r.json()["error"]) for r in (too_long, not_json, missing)] == [
        (422, "too_long"), (400, "malformed"), (404, "not_found")]
    assert written(db) == before
    corrected = post(desk, path, {"text": "x" * AGENT_TEXT_LIMIT}, token=token)
    again = post(desk, path, {"text": "x" * AGENT_TEXT_LIMIT}, token=token)
    assert (corrected.status_code, again.status_code, again.content) == (201, 201, corrected.content)
    assert len(outbound(db)) == 1


@pytest.mark.parametrize(("label", "value"), [
    ("empty", ""), ("too long", "k" * 256), ("too long quoted", '"' + "k" * 256 + '"'), ("a tab", "a\tb"),
    ("not ASCII", "clé".encode()), ("unclosed quote", '"abc'), ("after the quote", '"abc";x'),
    ("bad escape", '"a\\b"'),
])
def test_a_key_that_is_not_a_key_is_refused_with_400(desk, db, label, value):
    conversation_id = conversation_of(desk, "c1")
    before = written(db)

    refused = desk.http.post(f"/api/conversations/{conversation_id}/messages", json={"text": "Hi"},
                             headers={**bearer(desk.tokens["Ana"]), idempotency.HEADER: value})

    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_idempotency_key"), label
    assert written(db) == before


def test_the_longest_key_is_taken_and_no_key_behaves_as_before(desk, db):
    conversation_id = conversation_of(desk, "c1")
    token = desk.tokens["Ana"]
    path = f"/api/conversations/{conversation_id}/messages"

    longest = [post(desk, path, {"text": "A"}, token=token, key="~" * 255) for _ in range(2)]
    unkeyed = [post(desk, path, {"text": "B"}, token=token, key=None) for _ in range(2)]

    assert [r.status_code for r in longest + unkeyed] == [201] * 4
    assert outbound(db) == ["A", "B", "B"]
    assert db.count("idempotency_keys") == 1


@both_databases
def test_the_key_is_stored_with_the_message_or_not_at_all(desk, db, monkeypatch):
    conversation_id = conversation_of(desk, "c1")
    token = desk.tokens["Ana"]
    path = f"/api/conversations/{conversation_id}/messages"
    before = written(db)

    async def fail_after(session, answers):  # the messages and the key are written; the commit never comes
        await record_all(session, answers)
        raise RuntimeError("the process died before its commit")

    record_all = idempotency.record_all
    monkeypatch.setattr(replies.idempotency, "record_all", fail_after)
    with httpx.Client(base_url=desk.server.url, timeout=30) as http:  # the server drops a connection after a 500
        failed = post(desk, path, {"text": "Hi"}, token=token, http=http)
    monkeypatch.setattr(replies.idempotency, "record_all", record_all)

    assert failed.status_code == 500
    assert written(db) == before
    retried = post(desk, path, {"text": "Hi"}, token=token)
    assert retried.status_code == 201
    assert outbound(db) == ["Hi"]
    assert db.count("idempotency_keys") == 1


@both_databases
def test_the_upkeep_forgets_keys_past_their_retention(desk, db):
    conversation_id = conversation_of(desk, "c1")
    token = desk.tokens["Ana"]
    path = f"/api/conversations/{conversation_id}/messages"
    assert post(desk, path, {"text": "Hi"}, token=token).status_code == 201
    assert post(desk, path, {"text": "Hi"}, token=token, key="recent").status_code == 201

    async def age() -> None:
        async with desk.server.app.store.transaction() as session:
            await session.exec(update(IdempotencyKey).where(IdempotencyKey.key == KEY)  # type: ignore[arg-type]
                               .values(created_at=utcnow() - timedelta(hours=24, seconds=1)))

    desk.server.call(age)
    eventually(lambda: db.count("idempotency_keys") == 1)

    assert db.scalar("SELECT key FROM idempotency_keys") == "recent"
    assert post(desk, path, {"text": "Hi"}, token=token).status_code == 201  # a new request now
    assert outbound(db) == ["Hi", "Hi", "Hi"]


@both_databases
def test_a_retried_follow_up_is_answered_its_first_result_and_sent_once(desk, db):
    body = {"to": CONSUMERS["c5"], "from": BRAND_NUMBER, "text": "Following up on your call.",
            "entry_point": "follow_up"}
    token = desk.tokens["Ana"]
    simulator = desk.server.app.plugin("simulator")
    if desk.server.app.plugin("compliance") is not None:  # a follow-up is informational: it needs consent there
        consent = desk.admin("POST", "/api/compliance/consent", json={
            "consumer": CONSUMERS["c5"], "brand_number": BRAND_NUMBER, "consent_class": "informational",
            "method": "voice", "source": "call CALL-42"})
        assert consent.status_code in (200, 201), consent.text
    start = threading.Barrier(6)

    def fire(_: int) -> httpx.Response:
        with httpx.Client(base_url=desk.server.url, timeout=30) as http:
            start.wait()
            return post(desk, "/api/conversations", body, token=token, http=http)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(fire, range(6)))
    eventually(lambda: simulator.sent)
    later = post(desk, "/api/conversations", body, token=token)
    changed = post(desk, "/api/conversations", {**body, "text": "Another text"}, token=token)

    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert {a.content for a in answers} == {later.content}
    assert (changed.status_code, changed.json()["error"]) == (422, "idempotency_key_reused")
    assert db.count("conversations", "consumer_number = :n", n=CONSUMERS["c5"]) == 1
    assert outbound(db) == ["Following up on your call."]
    time.sleep(0.3)
    assert len(simulator.sent) == 1


def test_the_openapi_document_describes_the_header_on_the_writes_that_take_it(desk):
    paths = desk.http.get("/openapi.json").json()["paths"]

    for path in ("/api/conversations", "/api/conversations/{conversation_id}/messages"):
        operation = paths[path]["post"]
        [header] = [p for p in operation["parameters"] if p["in"] == "header"]
        assert (header["name"], header["required"], header["schema"]["maxLength"]) == ("Idempotency-Key", False,
                                                                                       257)
        assert {"400", "409", "422"} <= set(operation["responses"])
        assert "Idempotency-Key" in operation["responses"]["422"]["description"]
    assert not [p for p in paths["/api/conversations/{conversation_id}/transfer"]["post"]["parameters"]
                if p["in"] == "header"]



def test_a_key_whose_request_has_no_answer_yet_is_answered_409_try_again(desk, db):
    conversation_id = conversation_of(desk, "c1")
    path = f"/api/conversations/{conversation_id}/messages"
    body = b'{"text": "Hi"}'
    # What a request still at work holds: its key and fingerprint, no answer yet.
    db.execute("INSERT INTO idempotency_keys (caller, endpoint, key, fingerprint, created_at) VALUES (:caller, "
               "'POST /api/conversations/{conversation_id}/messages', :key, :fingerprint, :now)",
               caller=f"agent:{desk.agents['Ana']}", key=KEY, now=utcnow(),
               fingerprint=hashlib.sha256(f"POST {path}\n".encode() + body).hexdigest())
    before = written(db)

    busy = desk.http.post(path, content=body, headers={**bearer(desk.tokens["Ana"]), idempotency.HEADER: KEY,
                                                       "content-type": "application/json"})

    assert (busy.status_code, busy.json()["error"], busy.headers["retry-after"]) == (409, "idempotency_key_in_use",
                                                                                    "1")
    assert written(db) == before
