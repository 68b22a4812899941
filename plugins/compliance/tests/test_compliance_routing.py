"""Inbound: keywords are answered before entry points; likely opt-outs reach the agent with a note."""

from __future__ import annotations

import asyncio
from typing import Any

from smsconnector.decisions import Routing
from smsconnector.messages import InboundMessage
from smsconnector.plugins import hookimpl
from smsconnector.store.models import Conversation, Message
from smsconnector.testing import BRAND_NUMBER

from .compliance_helpers import Pipeline

ACME = {"numbers": {BRAND_NUMBER: {"brand_name": "Acme", "contact": "1-800-555-0100 or acme.example/help"}}}


class Appointments:
    """An entry point that handles every message about appointments, and counts what it is asked."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def smsconnector_route(self, message: InboundMessage) -> Routing | None:
        """Claim appointment messages."""
        self.seen.append(message.text)
        if "appointment" not in message.text.lower():
            return None
        return Routing(handled_by="appointments", entry_point="appointments", to_agent=False,
                       replies=("Your appointment is cancelled.",))


def play(app: Any, *texts: str, **kwargs: Any) -> tuple[list[Message], list[Message]]:
    """Text each of ``texts`` in turn, sending what it causes; the stored inbound rows and the replies."""
    pipe = Pipeline(app)

    async def main() -> tuple[list[Message], list[Message]]:
        received = []
        for text in texts:
            received.append(await pipe.receive(text, **kwargs))
            await pipe.drain()
        out = await pipe.outbound()
        await pipe.close()
        return received, out

    return asyncio.run(main())


def test_an_ambiguous_text_goes_to_the_entry_point_that_claims_it_with_a_note_for_the_agent(make_app: Any) -> None:
    appointments = Appointments()
    app = make_app(register=[("appointments", appointments)])

    [received], replies = play(app, "Cancel my appointment")

    assert received.handled_by == "appointments"
    assert received.notes == ["Possible opt-out, not acted on: the message mentions 'CANCEL'. Ask whether the "
                              "consumer wants to stop receiving messages."]
    assert [r.body for r in replies] == ["Your appointment is cancelled."]
    assert appointments.seen == ["Cancel my appointment"]  # asked exactly once


def test_an_ambiguous_text_reaches_the_agent_through_the_default_router(make_app: Any, db: Any) -> None:
    [received], replies = play(make_app(), "We have got to stop this bill")

    [conversation] = db.rows("SELECT * FROM conversations")
    assert (received.handled_by, conversation["status"], conversation["skill"]) == ("router", "queued", "support")
    assert received.notes and "mentions 'STOP'" in received.notes[0]
    assert replies == []


def test_keywords_are_handled_before_any_entry_point_sees_them(make_app: Any, db: Any) -> None:
    appointments = Appointments()
    app = make_app(register=[("appointments", appointments)], plugins={"compliance": ACME})

    received, replies = play(app, "STOP", "Where is my appointment?", "START", "HELP")

    assert [r.handled_by for r in received] == ["compliance", "appointments", "compliance", "compliance"]
    # STOP, START and HELP never fell into an entry point (rapidpro #392); the ordinary text did, with a note.
    assert appointments.seen == ["Where is my appointment?"]
    assert received[1].notes[0].startswith("This consumer opted out on ")
    assert [r.status == "refused" for r in replies] == [False, True, False, False]
    assert [r.body for r in replies if r.status != "refused"] == [
        "Acme: You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
        "Acme: You are resubscribed. For help: 1-800-555-0100 or acme.example/help. Msg frequency varies. "
        "Msg & data rates may apply. Reply STOP to opt out.",
        "Acme: For help: 1-800-555-0100 or acme.example/help. Msg frequency varies. Msg & data rates may apply. "
        "Reply STOP to opt out.",
    ]


def test_an_opted_out_consumer_texting_reaches_the_agent_with_a_note(make_app: Any, db: Any) -> None:
    [_, routed], _ = play(make_app(), "STOP", "Hi, when does my order arrive?")

    assert routed.handled_by == "router"
    assert routed.notes[0].startswith("This consumer opted out on ")
    assert routed.notes[0].endswith("replies will be refused until they text START.")


def test_policy_after_opt_out_store_keeps_such_a_text_away_from_the_queue(make_app: Any, db: Any) -> None:
    [_, stored], _ = play(make_app(plugins={"compliance": {"after_opt_out": "store"}}), "STOP", "Hi again")

    assert stored.handled_by == "compliance" and stored.notes[0].startswith("This consumer opted out on ")
    assert db.rows("SELECT status FROM conversations") == [{"status": "automated"}]


def test_the_conversation_keeps_its_agent_and_the_agent_sees_the_opt_out(make_app: Any, db: Any,
                                                                          make_agent: Any) -> None:
    app = make_app()
    agent_id, _ = make_agent()
    pipe = Pipeline(app)

    async def main() -> tuple[Message, Conversation]:
        first = await pipe.receive("Hi, about my order")
        async with app.store.transaction() as session:
            conversation = await session.get(Conversation, first.conversation_id)
            assert conversation is not None
            conversation.agent_id, conversation.status = agent_id, "assigned"
        stop = await pipe.receive("Stop please")
        async with app.store.session() as session:
            after = await session.get(Conversation, first.conversation_id)
        await pipe.close()
        assert after is not None
        return stop, after

    stop, conversation = asyncio.run(main())

    assert (conversation.agent_id, conversation.status) == (agent_id, "assigned")
    assert stop.conversation_id == conversation.id
    assert stop.notes == ["Opted out: the consumer texted 'Stop please', read as an opt-out from the phrase 'STOP'. "
                          "One confirmation was sent. Nothing more can be sent to them until they text START."]


def test_french_keywords_are_answered_in_french(make_app: Any) -> None:
    _, replies = play(make_app(plugins={"compliance": ACME}), "Aide", "ARRÊT")

    assert [r.body for r in replies] == [
        "Acme : Aide : 1-800-555-0100 or acme.example/help. Fréquence variable. Des frais de messagerie peuvent "
        "s'appliquer. Répondez ARRET pour vous désabonner.",
        "Acme : Vous êtes désabonné et ne recevrez plus de messages. Répondez START pour vous réabonner."]


def test_a_second_stop_gets_no_second_confirmation(make_app: Any, db: Any) -> None:
    [_, again], replies = play(make_app(), "STOP", "STOP ALL")

    assert [r.message_class for r in replies] == ["compliance"]
    assert [e["confirmation"] for e in db.rows("SELECT confirmation FROM compliance_ledger WHERE action = 'opt_out' "
                                               "ORDER BY id")] == ["ours", "none"]
    assert "already opted out, so no second confirmation" in again.notes[0]


def test_help_from_an_opted_out_consumer_gets_no_reply_by_default(make_app: Any) -> None:
    [_, help_], replies = play(make_app(), "STOP", "HELP")

    assert len(replies) == 1 and "help_when_opted_out is off" in help_.notes[0]


def test_policy_help_when_opted_out_answers_help_and_the_gate_lets_it_through(make_app: Any) -> None:
    _, replies = play(make_app(plugins={"compliance": {"help_when_opted_out": True}}), "STOP", "HELP")

    assert [r.body.split(": ")[1][:8] for r in replies] == ["You are ", "For help"]
    assert not any(r.status == "refused" for r in replies)


def test_yes_from_a_consumer_who_never_opted_out_is_an_ordinary_message(make_app: Any, db: Any) -> None:
    [yes], replies = play(make_app(), "Yes")

    assert (yes.handled_by, yes.notes, replies) == ("router", [], [])
    assert db.count("compliance_ledger") == 0


class Early:
    """Another plugin that routes first; it declines, and must be asked once."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl(tryfirst=True)
    def smsconnector_route(self) -> None:
        """Decline, counting."""
        self.calls += 1


def test_plugins_routing_before_compliance_are_not_asked_twice(make_app: Any) -> None:
    early, appointments = Early(), Appointments()
    app = make_app(register=[("early", early), ("appointments", appointments)])

    [received], _ = play(app, "cancel my appointment")

    assert (early.calls, appointments.seen, received.handled_by) == (1, ["cancel my appointment"], "appointments")
    assert received.notes and "mentions 'CANCEL'" in received.notes[0]
