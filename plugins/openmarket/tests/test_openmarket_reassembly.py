"""Long MOs, one POST per part, made into the message the consumer wrote: any order, retries, timeouts, replicas."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from smsconnector.app import App
from smsconnector.segments import Concatenation, build_udh
from smsconnector.store.models import Message
from smsconnector_openmarket.fake import FakeOpenMarket

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
# The host's maintenance query trips a SQLAlchemy 2.1 warning that the suite turns into an error (see the report
# in tests/test_reassembly.py); tests that rely on the timeout let it pass.
EMOJI = "\U0001f600"
LONG_GSM = "".join(f"Line {n:02d}: my order has not arrived yet. " for n in range(1, 38))  # 10 parts
UCS2 = f"Thanks {EMOJI} \u2014 the parcel came, but the box was crushed " * 3  # 3 parts


def rows_from(db: Any, source: str) -> list[dict[str, Any]]:
    rows = db.rows("SELECT body, num_segments, incomplete, details FROM messages WHERE from_number = :source "
                   "ORDER BY id", source=f"+{source}")
    for row in rows:  # SQLite hands JSON columns back as text
        row["details"] = json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
    return rows


def emoji_split_parts(reference: int) -> tuple[str, list[bytes]]:
    """A text whose emoji the sender split between two parts: the high surrogate ends part 1."""
    text = "a" * 66 + EMOJI + "b" * 10
    units = text.encode("utf-16-be")
    return text, [build_udh(Concatenation(reference, 2, 1)) + units[:134],
                  build_udh(Concatenation(reference, 2, 2)) + units[134:]]


@dataclass(frozen=True)
class Case:
    label: str
    text: str
    order: tuple[int, ...]  #: 1-based part numbers in arrival order; repeats are retries
    bits: Literal[8, 16] = 8
    split_emoji: bool = False


CASES = [
    Case("in order", UCS2, (1, 2, 3)),
    Case("reversed", UCS2, (3, 2, 1)),
    Case("shuffled", LONG_GSM, (5, 10, 1, 8, 3, 6, 9, 2, 7, 4)),
    Case("every part twice", UCS2, (1, 1, 3, 2, 3, 2)),
    Case("8-bit reference", "Please call me back about the refund for order 5521, I was charged twice. " * 5,
         (2, 1, 3)),
    Case("16-bit reference", "Please call me back about the refund for order 5521, I was charged twice. " * 5,
         (3, 1, 2), bits=16),
    Case("UCS-2 with emoji", f"{EMOJI}{EMOJI} Привет! {EMOJI} " * 12, (2, 3, 1)),
    Case("an emoji split across parts by the sender", "", (2, 1), split_emoji=True),
    Case("ten parts", LONG_GSM, tuple(range(1, 11))),
]


@both_databases
def test_parts_in_any_order_become_one_message(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app())
    results, expected = {}, {}

    for number, case in enumerate(CASES):
        source = f"1415555{number:04d}"
        if case.split_emoji:
            text, raws = emoji_split_parts(reference=number)
            parts = [fake.mo_part(raw, source=source) for raw in raws]
        else:
            text = case.text
            parts = fake.mo_parts(text, reference=number, reference_bits=case.bits, source=source)
        codes = {r.status_code for r in fake.post_mo(server.url, parts, order=case.order)}
        results[case.label] = (codes, [(r["body"], r["num_segments"], bool(r["incomplete"]))
                                       for r in rows_from(db, source)])
        expected[case.label] = ({200}, [(text, len(parts), False)])

    assert results == expected


@both_databases
def test_two_consumers_using_one_reference_get_two_messages(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app())
    mine = fake.mo_parts(UCS2, reference=42, source="14155550001")
    theirs = fake.mo_parts(LONG_GSM[:400], reference=42, source="14155550002")

    for body in [mine[0], theirs[2], theirs[0], mine[2], theirs[1], mine[1]]:
        assert fake.post_mo(server.url, body)[0].status_code == 200

    assert [r["body"] for r in rows_from(db, "14155550001")] == [UCS2]
    assert [r["body"] for r in rows_from(db, "14155550002")] == [LONG_GSM[:400]]


@both_databases
def test_a_missing_part_times_out_and_what_came_is_delivered_marked_incomplete(openmarket_app, fake, db) -> None:
    # In-process (ASGI): a live server's own maintenance loop would expire the group at a moment of its choosing.
    app = openmarket_app(providers={"openmarket": {"reassembly_timeout_seconds": 0.2}})
    parts = fake.mo_parts(LONG_GSM[:400], reference=9)  # 153 + 153 + 94 characters

    async def scenario() -> tuple[list[int], int, int]:
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                async def post(number: int) -> int:
                    response = await client.post("/webhooks/openmarket/inbound", json=parts[number - 1],
                                                 auth=fake.inbound_auth)
                    return response.status_code

                codes = [await post(3), await post(1)]
                await asyncio.sleep(0.3)  # past the timeout
                first = await app.expire_segments()
                codes.append(await post(2))  # the missing part, late
                await asyncio.sleep(0.3)
                return codes, first, await app.expire_segments()
        finally:
            await app.store.close()

    assert asyncio.run(scenario()) == ([200, 200, 200], 1, 1)
    rows = rows_from(db, "14155550123")
    assert [(r["body"], bool(r["incomplete"]), r["num_segments"]) for r in rows] == [
        (LONG_GSM[:153] + LONG_GSM[306:400], True, 3), (LONG_GSM[153:306], True, 3)]
    assert (rows[0]["details"]["sequences"], rows[0]["details"]["missing"]) == ("1,3", "2")


def test_separate_policy_makes_one_message_per_part_in_order(openmarket_app, live_server, fake, db) -> None:
    server = live_server(openmarket_app(providers={"openmarket": {"segment_policy": "separate"}}))
    parts = fake.mo_parts(LONG_GSM[:400], reference=11)

    fake.post_mo(server.url, parts)

    rows = rows_from(db, "14155550123")
    assert [r["body"] for r in rows] == [LONG_GSM[:153], LONG_GSM[153:306], LONG_GSM[306:400]]
    assert [r["details"]["part"] for r in rows] == ["1/3", "2/3", "3/3"]
    assert db.count("segment_parts") == 0


@both_databases
def test_parts_and_retries_posted_at_once_complete_exactly_once(openmarket_app, live_server, fake, db,
                                                                database_url: str) -> None:
    # On PostgreSQL the parts reach two replicas of the host sharing one database.
    replicas = [live_server(openmarket_app())]
    if database_url.startswith("postgresql"):
        replicas.append(live_server(openmarket_app()))
    parts = fake.mo_parts(LONG_GSM, reference=77)
    jobs = [(replicas[n % len(replicas)], part) for n, part in enumerate(parts * 3)]
    random.Random(11).shuffle(jobs)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda job: fake.post_mo(job[0].url, job[1])[0], jobs))

    assert {r.status_code for r in responses} == {200}
    assert [(r["body"], bool(r["incomplete"])) for r in rows_from(db, "14155550123")] == [(LONG_GSM, False)]
    assert (db.count("segment_groups"), db.count("segment_parts"), db.count("messages")) == (1, 10, 1)


# -- property: realistic texts, split as handsets do, in any order with retries, over the ASGI app ------------

WORDS = ["Hi", "hello", "order", "#5521", "where", "is", "my", "parcel?", "café", "Müller", "€5", "$10", "50%",
         "[ok]", "{x}", "mail@example.com", "snake_case", "¿qué?", "ñandú", "ΔΣ", EMOJI, "\U0001f44d\U0001f3fd",
         "\u201cquoted\u201d", "Привет", "спасибо", "谢谢", "订单", "line\nbreak", "tab\there"]
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=60).map(" ".join)
_sources = itertools.count()


@pytest.fixture
def in_process_host(openmarket_app: Any) -> Iterator[tuple[App, asyncio.Runner]]:
    """A migrated host called in-process (ASGI), and one event loop for every example of a property test."""
    app = openmarket_app()
    with asyncio.Runner() as runner:
        yield app, runner
        runner.run(app.store.close())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, bits=st.sampled_from([8, 16]), data=st.data())
def test_realistic_texts_reassemble_exactly_once(in_process_host: tuple[App, asyncio.Runner], text: str,
                                                 bits: Literal[8, 16], data: Any) -> None:
    app, runner = in_process_host
    source = f"1212555{next(_sources):04d}"
    fake = FakeOpenMarket()  # only builds the bodies here: the host is called in-process
    parts = fake.mo_parts(text, reference=data.draw(st.integers(0, (1 << bits) - 1)), reference_bits=bits,
                          source=source)
    arrivals = list(data.draw(st.permutations(range(1, len(parts) + 1))))
    for number in data.draw(st.lists(st.integers(1, len(parts)), max_size=len(parts))):
        arrivals.insert(data.draw(st.integers(0, len(arrivals))), number)

    async def scenario() -> list[tuple[str, bool]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            for number in arrivals:
                response = await client.post("/webhooks/openmarket/inbound", json=parts[number - 1],
                                             auth=fake.inbound_auth)
                assert response.status_code == 200
        async with app.store.session() as session:
            stmt = select(Message.body, Message.incomplete).where(Message.from_number == f"+{source}")
            return [(r.body, r.incomplete) for r in await session.exec(stmt)]  # type: ignore[call-overload]

    assert runner.run(scenario()) == [(text, False)]
