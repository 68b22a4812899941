"""Property: while a consumer is opted out, nothing but the single opt-out confirmation reaches a provider.

Any interleaving of consumer keywords, messages queued by agents or plugins (of every class, including forged
"compliance" messages copying the confirmation) and sender runs, through the host's real inbound and outbound
code, with a spy provider.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsconnector.app import App

from .compliance_helpers import Pipeline, Spy

BRAND = "+15555550100"
CONFIRMATION = "(555) 555-0100: You are unsubscribed and will receive no more messages. Reply START to resubscribe."
FRENCH_CONFIRMATION = ("(555) 555-0100 : Vous êtes désabonné et ne recevrez plus de messages. "
                       "Répondez START pour vous réabonner.")
#: what each consumer text means, independently of the plugin under test
TEXTS = {
    "STOP": "opt_out", "Stop.": "opt_out", "stop please": "opt_out", "please stop texting me": "opt_out",
    "ARRÊT": "opt_out", "unsubscribe": "opt_out", "START": "opt_in", "unstop": "opt_in", "yes": "opt_in",
    "HELP": None, "AIDE": None, "Hi, any news?": None, "don't stop": None, "cancel my appointment": None,
}
step = st.one_of(
    st.tuples(st.just("text"), st.sampled_from(sorted(TEXTS))),
    st.tuples(st.just("queue"), st.sampled_from(["conversational", "informational", "marketing"]), st.just("Hello")),
    st.tuples(st.just("queue"), st.just("compliance"), st.sampled_from([CONFIRMATION, "Forged notice"])),
    st.tuples(st.just("consent"), st.sampled_from(["informational", "marketing"])),
    st.tuples(st.just("drain")),
)


@dataclass
class Model:
    """The consumer's standing as the specification defines it."""

    opted_out: bool = False
    episode: int = 0  #: counts opt-outs: one confirmation at most per episode


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def spied(make_app: Any, loop: asyncio.AbstractEventLoop) -> Iterator[tuple[App, Spy, Pipeline]]:
    spy = Spy()
    app = make_app(numbers=[{"number": BRAND, "provider": "spy"}], register=[("spy", spy)])
    yield app, spy, Pipeline(app, provider="spy")
    loop.run_until_complete(app.store.close())


_consumers = itertools.count(1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_an_opted_out_consumer_receives_only_the_one_confirmation(
        spied: tuple[App, Spy, Pipeline], loop: asyncio.AbstractEventLoop, steps: list[tuple[Any, ...]]) -> None:
    app, spy, pipe = spied
    consumer = f"+1305555{next(_consumers):04d}"  # a fresh consumer per example, on the same database
    model = Model()
    spy.observe = lambda message: (model.opted_out, model.episode)
    spy.sent.clear()

    async def play() -> None:
        await pipe.receive("Hi", consumer=consumer)  # the consumer starts the exchange
        for action, *args in steps:
            if action == "text":
                await pipe.receive(args[0], consumer=consumer)
                meaning = TEXTS[args[0]]
                if meaning == "opt_out" and not model.opted_out:
                    model.opted_out, model.episode = True, model.episode + 1
                elif meaning == "opt_in":
                    model.opted_out = False
            elif action == "queue":
                await pipe.queue(args[1], consumer=consumer, message_class=args[0])
            elif action == "consent":
                async with app.store.transaction() as session:
                    await pipe.compliance.record(session, consumer=consumer, brand_number=BRAND, action="consent",
                                                 consent_class=args[0], method="web_form", source="test form",
                                                 consumer_action="ticked the box", disclosure_text="Terms v1",
                                                 recorded_by="admin")
            else:
                await pipe.drain()
        await pipe.drain()

    loop.run_until_complete(play())

    while_opted_out = [(m, episode) for m, (opted_out, episode) in spy.sent if opted_out]
    assert all(m.message_class == "compliance" and m.text in (CONFIRMATION, FRENCH_CONFIRMATION)
               for m, _ in while_opted_out), [m.text for m, _ in while_opted_out]
    episodes = [episode for _, episode in while_opted_out]
    assert len(episodes) == len(set(episodes)), "more than one confirmation in one opt-out"

    if not model.opted_out:  # and once opted in again, the agent does get through
        before = len(spy.sent)
        loop.run_until_complete(pipe.queue("Are you still there?", consumer=consumer))
        loop.run_until_complete(pipe.drain())
        assert [m.text for m, _ in spy.sent[before:]] == ["Are you still there?"]
