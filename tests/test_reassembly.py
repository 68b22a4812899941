"""Reassembling concatenated SMS in the database: any order, duplicates, timeouts, replicas, both databases."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from smsconnector import inbound, reassembly
from smsconnector.app import App
from smsconnector.messages import InboundMessage, SegmentInfo, utcnow
from smsconnector.segments import (
    GSM_BASIC,
    GSM_EXTENSION,
    Concatenation,
    build_udh,
    decode_gsm,
    is_gsm,
    parse_udh,
    split_for_concatenation,
)
from smsconnector.store.models import Message
from smsconnector.testing import BRAND_NUMBER

CONSUMER = "+14155550123"
OTHER_CONSUMER = "+14155550199"
EMOJI = "\U0001f600"
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def reassemble(timeout: float = 300.0) -> dict[str, Any]:
    """Configuration: the simulator's parts are reassembled, and wait ``timeout`` seconds for the rest."""
    return {"providers": {"simulator": {"segment_policy": "reassemble", "reassembly_timeout_seconds": timeout}}}


REASSEMBLE = reassemble()
QUICK_TIMEOUT = reassemble(0.05)
# The host's maintenance query trips a SQLAlchemy 2.1 warning (a unary distinct() where select().distinct() is
# meant); the suite turns warnings into errors, which would stop ``expire_segments`` in the tests that use it.

T = TypeVar("T")


def run(app: App, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh event loop; the store's connections are closed with it."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await app.store.close()

    return asyncio.run(main())


def parts_of(text: str, reference: int, *, bits: Literal[8, 16] = 8, sender: str = CONSUMER,
             prefix: str = "p") -> list[InboundMessage]:
    """The parts a handset sends for ``text``, normalized as a provider that hands over raw bytes would."""
    return [part_from(raw, sender=sender, provider_id=f"{prefix}{number}", gsm=is_gsm(text))
            for number, raw in enumerate(split_for_concatenation(text, reference, reference_bits=bits), start=1)]


def part_from(raw: bytes, *, sender: str = CONSUMER, provider_id: str, gsm: bool = False,
              encoding: str = "utf-16-be") -> InboundMessage:
    concat, payload = parse_udh(raw)
    assert concat is not None
    if gsm:
        # GSM-7 has no Python codec: a GSM part is handed over as text (escape pairs never straddle parts).
        info = SegmentInfo(concat.reference, concat.total, concat.sequence)
        text = decode_gsm(payload)
    else:
        info = SegmentInfo(concat.reference, concat.total, concat.sequence, payload=payload, encoding=encoding)
        text = payload.decode(encoding, errors="replace")
    return InboundMessage(provider="simulator", provider_message_id=provider_id, from_number=sender,
                          to_number=BRAND_NUMBER, text=text, segment=info)


async def accept_each(app: App, parts: Sequence[InboundMessage]) -> list[inbound.Outcome]:
    """Each part in its own transaction, as each arrives in its own webhook."""
    outcomes = []
    for part in parts:
        async with app.store.transaction() as session:
            outcomes.append(await inbound.accept(app, session, part))
    return outcomes


def inbound_rows(db: Any) -> list[dict[str, Any]]:
    rows = db.rows("SELECT provider_message_id, from_number, body, num_segments, incomplete, details FROM messages "
                   "WHERE direction = 'inbound' ORDER BY id")
    for row in rows:  # SQLite hands JSON columns back as text
        row["details"] = json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
    return rows


LONG_GSM = "".join(f"Line {n:02d}: my order has not arrived yet. " for n in range(1, 38))  # 10 parts of 153
UCS2 = f"Thanks {EMOJI} — the parcel came, but the box was crushed " * 3  # 3 parts of 67 code units
assert len(parts_of(LONG_GSM, 1)) == 10 and len(parts_of(UCS2, 1)) == 3


@dataclass(frozen=True)
class Case:
    label: str
    text: str
    order: tuple[int, ...]  #: indexes into the parts, repeated for duplicates
    bits: Literal[8, 16] = 8


CASES = [
    Case("in order", UCS2, (0, 1, 2)),
    Case("reversed", UCS2, (2, 1, 0)),
    Case("shuffled", LONG_GSM, (4, 9, 0, 7, 2, 5, 8, 1, 6, 3)),
    Case("every part twice", UCS2, (0, 0, 2, 1, 2, 1)),
    Case("ten parts, 16-bit reference", LONG_GSM, tuple(range(10)), bits=16),
    Case("retry of the completing part", UCS2, (1, 0, 2, 2, 0)),
]


@both_databases
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_parts_in_any_order_make_one_message(make_app, db, case: Case) -> None:
    app = make_app(**REASSEMBLE)
    parts = parts_of(case.text, 200 if case.bits == 8 else 54321, bits=case.bits)

    outcomes = run(app, lambda: accept_each(app, [parts[i] for i in case.order]))

    [stored] = inbound_rows(db)
    assert (stored["body"], stored["num_segments"], bool(stored["incomplete"])) == (case.text, len(parts), False)
    assert stored["provider_message_id"] == "p1"
    completing = next(n for n in range(len(case.order)) if set(case.order[:n + 1]) == set(case.order))
    assert outcomes == [inbound.Outcome.STORED if n == completing else inbound.Outcome.BUFFERED
                        for n in range(len(case.order))]
    assert db.count("segment_parts") == len(parts)


@both_databases
def test_the_same_part_under_a_new_id_changes_nothing(make_app, db) -> None:
    app = make_app(**REASSEMBLE)
    first, second = parts_of(UCS2[:100], 7)
    resent = replace(first, provider_message_id="resent-1", text="ignored")

    run(app, lambda: accept_each(app, [first, resent, second]))

    [stored] = inbound_rows(db)
    assert stored["body"] == UCS2[:100]
    assert db.count("segment_parts") == 2


@both_databases
def test_missing_part_times_out_and_the_rest_is_delivered_incomplete(make_app, db) -> None:
    app = make_app(**QUICK_TIMEOUT)
    parts = parts_of(UCS2, 12)

    async def scenario() -> tuple[int, int]:
        await accept_each(app, [parts[2], parts[0]])
        await asyncio.sleep(0.1)  # past the timeout
        delivered = await app.expire_segments()
        again = await app.expire_segments()
        return delivered, again

    assert run(app, scenario) == (1, 0)
    [stored] = inbound_rows(db)
    assert bool(stored["incomplete"]) is True
    assert stored["body"] == _text(parts[0]) + _text(parts[2])
    assert (stored["details"]["sequences"], stored["details"]["missing"]) == ("1,3", "2")


def _text(part: InboundMessage) -> str:
    assert part.segment is not None and part.segment.payload is not None
    return part.segment.payload.decode("utf-16-be")


@both_databases
def test_a_part_after_its_timeout_is_delivered_too(make_app, db) -> None:
    app = make_app(**QUICK_TIMEOUT)
    parts = parts_of(UCS2, 13)

    async def scenario() -> None:
        await accept_each(app, parts[:2])
        await asyncio.sleep(0.1)
        await app.expire_segments()
        await accept_each(app, [parts[2], parts[0]])  # the late part, and a late retry of the first
        await asyncio.sleep(0.1)
        await app.expire_segments()

    run(app, scenario)
    bodies = [(r["body"], bool(r["incomplete"])) for r in inbound_rows(db)]
    assert bodies == [(_text(parts[0]) + _text(parts[1]), True), (_text(parts[2]), True)]


@both_databases
def test_two_consumers_using_the_same_reference_get_two_messages(make_app, db) -> None:
    app = make_app(**REASSEMBLE)
    mine = parts_of(UCS2, 42, prefix="a")
    theirs = parts_of(LONG_GSM[:400], 42, sender=OTHER_CONSUMER, prefix="b")

    run(app, lambda: accept_each(app, [mine[0], theirs[2], theirs[0], mine[2], theirs[1], mine[1]]))

    assert {(r["from_number"], r["body"]) for r in inbound_rows(db)} == {(CONSUMER, UCS2),
                                                                         (OTHER_CONSUMER, LONG_GSM[:400])}


@both_databases
def test_a_reused_reference_with_another_total_closes_the_earlier_message(make_app, db) -> None:
    app = make_app(**REASSEMBLE)
    earlier = parts_of(UCS2, 5, prefix="a")  # 3 parts; its last never arrives
    later = parts_of(UCS2[:100], 5, prefix="b")  # 2 parts, same reference

    run(app, lambda: accept_each(app, [earlier[0], earlier[1], later[1], later[0]]))

    assert [(r["body"], bool(r["incomplete"])) for r in inbound_rows(db)] == [
        (_text(earlier[0]) + _text(earlier[1]), True), (UCS2[:100], False)]


@both_databases
def test_an_emoji_split_between_two_parts_by_the_sender_survives(make_app, db) -> None:
    app = make_app(**REASSEMBLE)
    text = "a" * 66 + EMOJI + "b"  # the emoji's high surrogate is code unit 67: the end of part 1
    units = text.encode("utf-16-be")
    raws = [build_udh(Concatenation(9, 2, 1)) + units[:134], build_udh(Concatenation(9, 2, 2)) + units[134:]]

    run(app, lambda: accept_each(app, [part_from(raws[1], provider_id="p2"), part_from(raws[0], provider_id="p1")]))

    [stored] = inbound_rows(db)
    assert stored["body"] == text


def test_halves_of_characters_either_side_of_a_missing_part_are_not_glued(make_app, db) -> None:
    app = make_app(**REASSEMBLE)
    units = ("a" * 66 + EMOJI + "b" * 65 + EMOJI + "c").encode("utf-16-be")  # part 2 starts and ends mid-emoji
    raws = [build_udh(Concatenation(3, 3, n)) + units[(n - 1) * 134:n * 134] for n in (1, 2, 3)]

    async def scenario() -> list[InboundMessage]:
        await accept_each(app, [part_from(raws[0], provider_id="p1"), part_from(raws[2], provider_id="p3")])
        async with app.store.transaction() as session:
            return await reassembly.expire(session, "simulator", older_than=utcnow() + timedelta(days=1))

    [whole] = run(app, scenario)
    assert whole.text == "a" * 66 + "\ufffd" + "\ufffd" + "c"
    assert whole.incomplete


def test_parts_whose_codecs_disagree_are_read_with_the_codec_most_agree_on(make_app, db) -> None:
    app = make_app(**REASSEMBLE)
    raws = split_for_concatenation("\u4f60\u597d" * 70, 77)  # three UCS-2 parts; the last is six characters
    parts = [part_from(raw, provider_id=f"p{n}") for n, raw in enumerate(raws, start=1)]
    guessed = part_from(raws[-1], provider_id="p3", encoding="latin-1")  # a provider's wrong guess, short part

    run(app, lambda: accept_each(app, [*parts[:-1], guessed]))

    [stored] = inbound_rows(db)
    assert stored["body"] == "\u4f60\u597d" * 70


def test_a_codec_the_host_does_not_know_falls_back_to_the_parts_text(make_app, db) -> None:
    app = make_app(**REASSEMBLE)
    parts = [
        InboundMessage(provider="simulator", provider_message_id=f"p{n}", from_number=CONSUMER,
                       to_number=BRAND_NUMBER, text=text,
                       segment=SegmentInfo(8, 2, n, payload=b"\x01", encoding="x-unknown"))
        for n, text in ((1, "Hello "), (2, "there"))
    ]

    run(app, lambda: accept_each(app, parts))

    assert [r["body"] for r in inbound_rows(db)] == ["Hello there"]


@both_databases
@pytest.mark.parametrize(("sequence", "total"), [(0, 2), (3, 2), (1, 256)])
def test_a_part_outside_its_total_is_refused_and_stores_nothing(make_app, live_server, db, sequence, total) -> None:
    server = live_server(make_app(**REASSEMBLE))
    before = db.snapshot()

    response = httpx.post(f"{server.url}/webhooks/simulator/inbound", json={
        "id": "bad-1", "from": CONSUMER, "to": BRAND_NUMBER, "text": "x",
        "segment": {"reference": 1, "total": total, "sequence": sequence}})

    assert response.status_code == 400
    assert response.json()["error"] == "malformed"
    assert f"segment {sequence} of {total}" in response.json()["detail"]
    assert db.snapshot() == before


# -- property: any text, any order, any duplicates ----------------------------------------------------------

gsm_chars = st.sampled_from(sorted(GSM_BASIC | GSM_EXTENSION))
any_chars = st.characters(blacklist_categories=["Cs"])
texts = st.one_of(st.text(gsm_chars, min_size=1, max_size=700), st.text(any_chars, min_size=1, max_size=300),
                  st.text(st.one_of(gsm_chars, st.just(EMOJI)), min_size=1, max_size=300))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, bits=st.sampled_from([8, 16]), data=st.data())
def test_any_text_split_by_the_segment_builder_reassembles_exactly_once(make_app, text, bits, data) -> None:
    app = _property_app(make_app)
    sender = f"+1415555{next(_senders):04d}"  # a fresh consumer per example: its groups never meet another's
    parts = parts_of(text, data.draw(st.integers(0, (1 << bits) - 1)), bits=bits, sender=sender, prefix=sender)
    order = data.draw(st.permutations(range(len(parts))))
    extra = data.draw(st.lists(st.sampled_from(range(len(parts))), max_size=len(parts)))
    arrivals = list(order)
    for index in extra:  # a duplicate arrives any time after its first copy... or before it
        arrivals.insert(data.draw(st.integers(0, len(arrivals))), index)

    async def scenario() -> list[tuple[str, bool]]:
        await accept_each(app, [parts[i] for i in arrivals])
        async with app.store.session() as session:
            rows = await session.exec(  # type: ignore[call-overload]
                _bodies_of(sender))
            return [(r.body, r.incomplete) for r in rows]

    assert run(app, scenario) == [(text, False)]


_senders = itertools.count()
_apps: dict[int, App] = {}


def _property_app(make_app: Callable[..., App]) -> App:
    # One migrated app for all examples of a run: hypothesis calls the test many times with one fixture value.
    key = id(make_app)
    if key not in _apps:
        _apps.clear()
        _apps[key] = make_app(**REASSEMBLE)
    return _apps[key]


def _bodies_of(sender: str) -> Any:
    return select(Message.body, Message.incomplete).where(Message.from_number == sender)


# -- replicas: parts reaching different app instances on one database ------------------------------------


@both_databases
def test_parts_and_their_retries_posted_at_once_to_two_replicas_complete_once(make_app, live_server, db) -> None:
    replicas = [live_server(make_app(**REASSEMBLE)), live_server(make_app(**REASSEMBLE))]
    parts = [{"id": f"p{n}", "from": CONSUMER, "to": BRAND_NUMBER, "text": f"[{n}]",
              "segment": {"reference": 9, "total": 10, "sequence": n}} for n in range(1, 11)]
    jobs = [(replicas[copy % 2], part) for part in parts for copy in range(3)]
    random.Random(5).shuffle(jobs)

    def post(job: tuple[Any, dict[str, Any]]) -> int:
        server, part = job
        return httpx.post(f"{server.url}/webhooks/simulator/inbound", json=part).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(post, jobs))

    assert codes == [200] * len(jobs)
    [stored] = inbound_rows(db)
    assert (stored["body"], bool(stored["incomplete"])) == ("".join(f"[{n}]" for n in range(1, 11)), False)
    assert (db.count("segment_groups"), db.count("segment_parts")) == (1, 10)


@both_databases
def test_a_late_part_racing_the_timeout_on_another_replica_is_delivered_once(make_app, db) -> None:
    replicas = [make_app(**QUICK_TIMEOUT), make_app(**QUICK_TIMEOUT)]
    parts = parts_of(UCS2, 4)

    async def scenario() -> None:
        try:
            await accept_each(replicas[0], parts[:2])
            await asyncio.sleep(0.1)  # past the timeout: the last part and the expiry now race
            await asyncio.gather(accept_each(replicas[1], parts[2:]), replicas[0].expire_segments())
            await asyncio.sleep(0.1)
            await replicas[0].expire_segments()
        finally:
            for app in replicas:
                await app.store.close()

    asyncio.run(scenario())
    bodies = sorted(r["body"] for r in inbound_rows(db))
    # Whole, or the first two and the late one apart: never lost, never doubled.
    assert bodies in ([UCS2], sorted([_text(parts[0]) + _text(parts[1]), _text(parts[2])]))
    assert db.count("segment_groups", "completed_at IS NULL") == 0
