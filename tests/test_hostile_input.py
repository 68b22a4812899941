"""Hostile input at the host's doors: what no database can hold is mended (a consumer's text) or refused with 400
(an identifier, a count, a client's body), the same on SQLite and PostgreSQL, and a refusal stores nothing.

The webhooks here come through the built-in simulator: the door is the host's, for every provider.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import text
from starlette.requests import Request

from smsconnector.errors import TooLarge
from smsconnector.testing import BRAND_NUMBER, eventually

from .api_support import CONSUMERS, Desk, api_app

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
CONSUMER = CONSUMERS["c1"]
DEEP = b"[" * 20_000 + b"]" * 20_000


@pytest.fixture
def desk(make_app, live_server):
    desk = Desk(live_server(api_app(make_app, sender={"enabled": False})))
    desk.agent("Ana")
    yield desk
    desk.close()


def _inbound(desk: Desk, raw: bytes) -> httpx.Response:
    return desk.http.post("/webhooks/simulator/inbound", content=raw, headers={"content-type": "application/json"})


def _message(**fields: object) -> bytes:
    return json.dumps({"id": "sim-1", "from": CONSUMER, "to": BRAND_NUMBER, "text": "hello", **fields}).encode()


def _refused(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed"
    assert detail in response.json()["detail"]


# -- a consumer's message: mended, kept and routed --------------------------------------------------------------


@both_databases
def test_a_nul_in_a_consumers_text_becomes_the_replacement_character_and_the_message_is_routed(desk, db):
    response = _inbound(desk, _message(text="a\u0000b", media=[{"url": "https://example.com/\u0000.jpg",
                                                                 "content_type": "image/jpeg\u0000"}]))

    assert response.status_code == 200, response.text
    [message] = db.rows("SELECT body, media, conversation_id FROM messages")
    assert message["body"] == "a\ufffdb"
    media = message["media"] if isinstance(message["media"], list) else json.loads(message["media"])
    assert media == [{"url": "https://example.com/\ufffd.jpg", "content_type": "image/jpeg\ufffd"}]
    assert desk.where("c1") == "Ana"  # routed to the agent, like any other message
    assert db.count("inbox", "error IS NOT NULL") == 0


@both_databases
def test_a_poisonous_looking_message_does_not_hold_up_the_ones_after_it(make_app, live_server, db):
    # Answered once stored: the routing runs behind, where a poisoned entry would have stopped the others.
    server = live_server(make_app(inbound={"acknowledge": "stored"}))
    http = httpx.Client(base_url=server.url)
    bodies = [_message(id="sim-poison", text="\u0000" * 50)]
    bodies += [_message(id=f"sim-{n}", **{"from": f"+1415555{n:04d}"}, text=f"hello {n}") for n in range(1, 6)]

    for body in bodies:
        assert http.post("/webhooks/simulator/inbound", content=body).status_code == 200

    eventually(lambda: db.count("messages") == len(bodies))
    assert db.count("inbox", "processed_at IS NULL OR error IS NOT NULL") == 0
    assert db.scalar("SELECT body FROM messages WHERE provider_message_id = 'sim-poison'") == "\ufffd" * 50
    http.close()


# -- identifiers and counts no column holds: refused at the door ------------------------------------------------


WEBHOOK_REFUSALS = [
    pytest.param("inbound", _message(id="x" * 101), "the provider message id is longer than 100",
                 id="message id longer than its column"),
    pytest.param("inbound", _message(id="sim\u00001"), "the provider message id holds U+0000",
                 id="NUL in a message id"),
    pytest.param("inbound", _message(segment={"reference": 1, "total": 10**20, "sequence": 1}),
                 "the total between 1 and 255", id="segment total past SMS"),
    pytest.param("inbound", _message(segment={"reference": 2**40, "total": 2, "sequence": 1}),
                 "the reference between 0 and 65535", id="reference past 16 bits"),
    pytest.param("inbound", _message(text="@").replace(b'"@"', b'"\\ud800"'),
                 "a lone surrogate", id="lone surrogate in a JSON webhook"),
    pytest.param("inbound", DEEP, "nests deeper", id="deeply nested JSON"),
    pytest.param("status", json.dumps({"id": "SIM1", "status": "failed", "error_code": "9" * 33}).encode(),
                 "the error code is longer than 32", id="error code longer than its column"),
]


@both_databases
@pytest.mark.parametrize(("kind", "raw", "detail"), WEBHOOK_REFUSALS)
def test_what_no_column_holds_is_refused_at_the_door_and_stores_nothing(desk, db, kind, raw, detail):
    before = db.contents()

    response = desk.http.post(f"/webhooks/simulator/{kind}", content=raw)

    _refused(response, detail)
    assert db.contents() == before


@pytest.mark.parametrize("declared", ["²".encode("latin-1"), b"9" * 5000])
def test_a_content_length_that_is_no_number_is_not_trusted_and_the_body_is_measured(make_app, declared):
    app = make_app(max_body_bytes=1024)
    chunks = [{"type": "http.request", "body": b"x" * 1000, "more_body": True},
              {"type": "http.request", "body": b"x" * 1000, "more_body": False}]

    async def receive() -> dict[str, object]:
        return chunks.pop(0)

    request = Request({"type": "http", "method": "POST", "headers": [(b"content-length", declared)]}, receive)

    with pytest.raises(TooLarge):
        asyncio.run(app.read_body(request))


# -- the API: a client's body with what no database stores is refused with 400 ----------------------------------


def _conversation(desk: Desk) -> int:
    desk.text("c1")
    return int(desk.current("c1")["id"])


API_REFUSALS = [
    pytest.param("reply", {"text": "a\u0000b"}, "body.text: U+0000 (NUL) is not allowed", id="NUL in a reply"),
    pytest.param("reply", b'{"text": "\\ud800"}', "body.text: a lone surrogate", id="lone surrogate in a reply"),
    pytest.param("reply", DEEP, "nests deeper than 32 levels", id="deeply nested reply"),
    pytest.param("follow-up", {"to": "+14155550199", "from": BRAND_NUMBER, "text": "Hi",
                               "context": {"call": 10**20}}, "an integer beyond 64 bits", id="huge number in context"),
    pytest.param("follow-up", b'{"to": "+14155550199", "from": "+15555550100", "text": "Hi", "context": {"a": 1e999}}',
                 "a number no column holds", id="1e999 in context"),
    pytest.param("agent", {"name": "Ana\u0000"}, "body.name: U+0000 (NUL)", id="NUL in an agent's name"),
    pytest.param("agent", DEEP, "nests deeper", id="deeply nested agent"),
    pytest.param("skill", {"name": "sales", "description": "\u0000"}, "U+0000", id="NUL in a skill"),
]


def _post(desk: Desk, target: str, body: object, conversation_id: int) -> httpx.Response:
    path, as_agent = {"reply": (f"/api/conversations/{conversation_id}/messages", True),
                      "follow-up": ("/api/conversations", True), "agent": ("/api/agents", False),
                      "skill": ("/api/skills", False)}[target]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if as_agent:
        return desk.http.post(path, content=raw, headers={**headers, "authorization": f"Bearer {desk.tokens['Ana']}"})
    return desk.admin("POST", path, content=raw, headers=headers)


@both_databases
@pytest.mark.parametrize(("target", "body", "detail"), API_REFUSALS)
def test_an_api_body_no_database_stores_is_refused_with_400_naming_the_problem(desk, db, target, body, detail):
    conversation_id = _conversation(desk)
    before = db.contents()

    response = _post(desk, target, body, conversation_id)

    _refused(response, detail)
    assert db.contents() == before


@both_databases
def test_a_nul_in_a_path_name_or_a_query_is_refused_with_400(desk, db):
    before = db.contents()

    _refused(desk.admin("PATCH", "/api/skills/support%00", json={"description": "x"}), "path: name: U+0000")
    _refused(desk.admin("GET", "/api/conversations", params={"skill": "support\u0000"}), "query: skill: U+0000")
    assert db.contents() == before


# -- Last-Event-ID ------------------------------------------------------------------------------------------------


@both_databases
@pytest.mark.parametrize("header", ["²".encode("latin-1"), b"9" * 5000, b"9" * 20, b"-1", b"2147483648", b"0x10"],
                         ids=["superscript two", "5000 digits", "20 digits", "negative", "past the id range", "hex"])
def test_a_last_event_id_the_stream_never_handed_out_is_refused_and_leaves_no_subscription(desk, header):
    headers = {"authorization": f"Bearer {desk.tokens['Ana']}", "last-event-id": header}
    with desk.http.stream("GET", "/api/events", headers=headers) as response:  # a stream would never end
        assert response.status_code == 400
        response.read()

    _refused(response, "Last-Event-ID must be an event id")
    assert not desk.server.app.live._subscribers


# -- what is logged of a failed statement -----------------------------------------------------------------------


@both_databases
def test_a_failed_statements_error_names_its_sql_but_not_its_values(make_app):
    app = make_app()

    async def fail() -> str:
        try:
            async with app.store.session() as session:
                await session.exec(text("SELECT :text FROM no_such_table"), params={"text": "my card is 4111"})
        except Exception as exc:  # noqa: BLE001  (whatever the driver raises, its text is what gets logged)
            return str(exc)
        finally:
            await app.store.close()
        raise AssertionError("the statement did not fail")

    message = asyncio.run(fail())
    assert "no_such_table" in message and "my card" not in message
