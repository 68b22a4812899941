"""Agents' replies posted at the same moment: queued together, in the order they came, each refused alone.

Replies waiting at the same moment share one transaction; these tests hold the promises that sharing must
keep. A reply is answered 201 only once its message and outbox row are committed; a refused reply (no such
conversation, someone else's, closed, a bad body) stores nothing and takes nothing from the others; replies
to a conversation are queued in the order they were taken.
"""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import event
from starlette.requests import Request

from smsconnector.api.endpoints import Call
from smsconnector.api.schemas import MessageOut, ReplyIn
from smsconnector.auth import Principal
from smsconnector.errors import Conflict, Forbidden, Malformed, MessageRejected, NotFound, RequestRejected
from smsconnector.messages import AGENT_TEXT_LIMIT

from .api_support import Desk, api_app, bearer

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
QUIET_SENDER = {"enabled": False}  # the outbox rows stay where the replies put them


@pytest.fixture
def desk(make_app, live_server):
    desk = Desk(live_server(api_app(make_app, sender=QUIET_SENDER)))
    desk.agent("Ana")
    desk.agent("Ben")
    yield desk
    desk.close()


def _conversations(desk: Desk) -> dict[str, list[int]]:
    """Five consumers write in; their conversations by the agent serving them (the last of Ana's closed)."""
    for consumer in ("c1", "c2", "c3", "c4", "c5"):
        desk.text(consumer)
    served: dict[str, list[int]] = {"Ana": [], "Ben": []}
    for consumer in ("c1", "c2", "c3", "c4", "c5"):
        served[desk.where(consumer)].append(desk.current(consumer)["id"])
    assert len(served["Ana"]) == 3 and served["Ben"], served
    closed = desk.as_agent("Ana", "POST", f"/api/conversations/{served['Ana'][-1]}/close")
    assert closed.status_code == 200
    return served


def _call(desk: Desk, agent: str, conversation_id: int, body: dict[str, object] | RequestRejected) -> Call:
    """The call a reply posted by ``agent`` makes, as the endpoint hands it on."""
    request = Request({"type": "http", "method": "POST", "headers": [],
                       "path_params": {"conversation_id": conversation_id}})
    parsed = body if isinstance(body, RequestRejected) else ReplyIn.model_validate(body)
    return Call(desk.server.app, request, Principal("agent", desk.agents[agent]), parsed_body=parsed)


def _outbound(db, conversation_id: int) -> list[str]:
    return [r["body"] for r in db.rows("SELECT body FROM messages WHERE conversation_id = :c AND direction = "
                                       "'outbound' ORDER BY id", c=conversation_id)]


@both_databases
def test_replies_taken_together_are_queued_in_order_and_a_refused_one_fails_alone(desk, db):
    served = _conversations(desk)
    (first, second, closed), foreign = served["Ana"], served["Ben"][0]
    good = itertools.count(1)
    refusals = {"forbidden": (foreign, {"text": "x"}, Forbidden), "closed": (closed, {"text": "x"}, Conflict),
                "missing": (2**31 - 1, {"text": "x"}, NotFound),
                "too long": (first, {"text": "x" * (AGENT_TEXT_LIMIT + 1)}, MessageRejected),
                "bad body": (second, Malformed("the body must be a JSON object"), Malformed)}
    plan: list[tuple[int, dict[str, object] | RequestRejected, type[Exception] | None]] = []
    for n in range(40):
        if n % 8 == 3:
            plan.append(list(refusals.values())[n // 8])
        else:
            plan.append((first if n % 3 else second, {"text": f"reply {next(good)}"}, None))
    app = desk.server.app
    queued: list[int] = []
    app.events.subscribe(lambda e: queued.append(e.data["message_id"]) if e.kind == "outbox.queued" else None)
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(app.store.engine.sync_engine, "commit", count)

    async def reply_all() -> list[object]:
        taken = []
        for conversation_id, body, _ in plan:
            taken.append(asyncio.ensure_future(app.replies.submit(_call(desk, "Ana", conversation_id, body))))
            await asyncio.sleep(0)  # the next arrives while earlier ones are being written
        return await asyncio.gather(*taken, return_exceptions=True)

    outcomes = desk.server.call(reply_all)

    event.remove(app.store.engine.sync_engine, "commit", count)
    for (_, body, refusal), outcome in zip(plan, outcomes, strict=True):
        if refusal is None:
            assert isinstance(outcome, MessageOut) and outcome.text == body["text"]  # type: ignore[index]
        else:
            assert type(outcome) is refusal, outcome
    replies = [o for o in outcomes if isinstance(o, MessageOut)]
    assert [r.id for r in replies] == sorted(r.id for r in replies)  # queued in the order they were taken
    assert queued == [r.id for r in replies]  # each one's event, once its transaction committed
    for conversation_id in (first, second):
        assert _outbound(db, conversation_id) == [body["text"] for c, body, refusal in plan  # type: ignore[index]
                                                  if c == conversation_id and refusal is None]
    assert _outbound(db, foreign) == _outbound(db, closed) == []
    assert db.count("messages", "direction = 'outbound'") == db.count("outbox") == len(replies)
    assert len(commits) < len(replies) / 2  # they shared transactions, refusals and all


@both_databases
def test_a_reply_is_answered_only_once_it_is_committed_and_refusals_keep_their_status(desk, db):
    served = _conversations(desk)
    (first, second, closed), foreign = served["Ana"], served["Ben"][0]
    targets = [first, second, foreign, closed, first, second, 2**31 - 1, first]
    expected = {first: 201, second: 201, foreign: 403, closed: 409, 2**31 - 1: 404}

    def post(n: int) -> tuple[int, int, httpx.Response]:
        conversation_id = targets[n % len(targets)]
        response = desk.http.post(f"/api/conversations/{conversation_id}/messages",
                                  headers=bearer(desk.tokens["Ana"]), json={"text": f"reply {n}"})
        # Checked at once, from another connection: a 201 means the message and its outbox row are committed.
        stored = db.count("messages m JOIN outbox o ON o.message_id = m.id", "m.id = :id",
                          id=response.json()["id"]) if response.status_code == 201 else 0
        return conversation_id, stored, response

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(post, range(96)))

    for conversation_id, stored, response in answers:
        assert response.status_code == expected[conversation_id], response.text
        assert stored == (response.status_code == 201)
        if response.status_code != 201:
            assert set(response.json()) == {"error", "detail"}
    answered = sum(r.status_code == 201 for _, _, r in answers)
    assert db.count("messages", "direction = 'outbound'") == db.count("outbox") == answered == 60
    assert _outbound(db, foreign) == _outbound(db, closed) == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_replies_through_two_replicas_keep_each_conversations_order(make_app, live_server, db):
    replicas = [live_server(api_app(make_app, sender=QUIET_SENDER)) for _ in range(2)]
    desk = Desk(replicas[0])
    desk.agent("Ana", max_concurrent=10)
    consumers = ("c1", "c2", "c3", "c4", "c5", "c6")
    for consumer in consumers:
        desk.text(consumer)
    conversations = [desk.current(consumer)["id"] for consumer in consumers]
    token = desk.tokens["Ana"]

    def converse(conversation_id: int) -> list[int]:
        """One agent's replies in one conversation, each after the last was answered, through either replica."""
        with httpx.Client(timeout=30) as http:
            return [http.post(f"{replicas[n % 2].url}/api/conversations/{conversation_id}/messages",
                              headers=bearer(token), json={"text": f"{n:02d}"}).status_code for n in range(20)]

    with ThreadPoolExecutor(max_workers=len(conversations)) as pool:
        statuses = list(pool.map(converse, conversations))

    desk.close()
    assert statuses == [[201] * 20] * len(conversations)
    for conversation_id in conversations:
        assert _outbound(db, conversation_id) == [f"{n:02d}" for n in range(20)]
