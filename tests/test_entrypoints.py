"""The public API of entry-point plugins: bad input gets an error naming the field or key, and stores nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from pydantic import Field, field_validator

from smsconnector.config import load_config, plugin_settings
from smsconnector.entrypoints import (
    EndpointSettings,
    EntryPoint,
    brand_number,
    check_texts,
    configured_number,
    mobile_number,
    start_conversation,
)
from smsconnector.errors import ConfigError, Conflict, MessageRejected
from smsconnector.messages import utcnow
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import CONSUMER, both_databases, snapshot, start_up_refusal

CONFIG = load_config(env={}, overrides={"numbers": [
    {"number": BRAND_NUMBER, "provider": "simulator", "skill": "support"}]})


class Settings(EndpointSettings):
    """A small entry point's section, as a plugin author writes one."""

    greeting: str = Field("Hi! Reply here and an agent will answer.", min_length=1)
    greetings: dict[str, str] = {}

    @field_validator("greetings")
    @classmethod
    def _texts(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        return check_texts(value, what="greeting")


class Callbacks(EntryPoint[Settings]):
    name = "callbacks"
    settings_model = Settings


# -- numbers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "region", "e164"), [
    ("+1 415 555 0123", "US", CONSUMER), ("(415) 555-0123", "US", CONSUMER), ("07400 123456", "GB", "+447400123456"),
])
def test_a_mobile_number_in_any_format_comes_back_in_e164(raw, region, e164):
    assert mobile_number(raw, field="to", region=region) == e164


@pytest.mark.parametrize(("raw", "code", "reason"), [
    ("call me", "invalid_number", "to: 'call me' is not a phone number"),
    ("+15555550123", "invalid_number", "to: '+15555550123' is not a valid phone number"),
    ("+44 20 7946 0000", "landline", "to: +442079460000 is a landline and cannot receive text messages"),
    ("+1 800 555 0199", "not_mobile", "to: +18005550199 is a toll-free number, not a mobile number"),
])
def test_a_number_that_cannot_take_a_text_is_refused_naming_the_field(raw, code, reason):
    with pytest.raises(MessageRejected) as refused:
        mobile_number(raw, field="to", region="US")

    assert (refused.value.status, refused.value.code) == (422, code)
    assert str(refused.value).startswith(reason)


def test_a_brand_number_is_one_of_the_configured_numbers_however_it_is_spaced():
    assert brand_number(CONFIG, "+1 (555) 555-0100", field="from").number == BRAND_NUMBER


@pytest.mark.parametrize("raw", ["+14155550100", "main line", ""])
def test_a_number_not_configured_is_refused_as_a_brand_number_and_as_a_setting(raw):
    with pytest.raises(MessageRejected) as refused:
        brand_number(CONFIG, raw, field="from")
    with pytest.raises(ConfigError) as stopped:
        configured_number(CONFIG, raw, key="plugins.callbacks.number")

    assert (refused.value.code, str(refused.value)) == (
        "unknown_brand_number", f"from: {raw} is not one of this deployment's numbers")
    assert (stopped.value.key, stopped.value.reason) == (
        "plugins.callbacks.number", f"{raw} is not one of the configured [[numbers]]")


# -- settings ---------------------------------------------------------------------------------------------------


def test_endpoint_settings_read_skills_from_a_comma_separated_string_and_the_region_in_any_case():
    settings = plugin_settings({"skills": " billing, sales ,", "default_region": "gb"}, "callbacks", Settings)

    assert (settings.skills, settings.default_region, settings.token) == (("billing", "sales"), "GB", None)


@pytest.mark.parametrize(("section", "key", "reason"), [
    ({"default_region": "XX"}, "plugins.callbacks.default_region", "'XX' is not a region"),
    ({"token": ""}, "plugins.callbacks.token", "at least 1 character"),
    ({"tokn": "typo"}, "plugins.callbacks.tokn", "Extra inputs are not permitted"),
    ({"greetings": {"billing": "  "}}, "plugins.callbacks.greetings", "the greeting for 'billing' is empty"),
    ({"greetings": {"billing": "x" * 1601}}, "plugins.callbacks.greetings",
     "the greeting for 'billing' is 1601 characters; the limit is 1600"),
])
def test_a_wrong_setting_names_its_key(section, key, reason):
    with pytest.raises(ConfigError) as stopped:
        plugin_settings(section, "callbacks", Settings)

    assert stopped.value.key == key
    assert reason in stopped.value.reason


def test_the_plugin_reads_its_section_and_knows_the_numbers_skills_and_its_own(make_app):
    plugin = Callbacks()
    make_app(register=[("callbacks", plugin)], plugins={"callbacks": {"skills": ["billing"]}}, migrate=False)

    assert (plugin.settings.skills, plugin.skills) == (("billing",), frozenset({"billing", "support"}))
    assert plugin.known_skill("billing") == "billing"
    with pytest.raises(MessageRejected) as refused:
        plugin.known_skill("astrology", field="recipients.0.skill")
    assert (refused.value.code, str(refused.value)) == (
        "unknown_skill", "recipients.0.skill: 'astrology' is not a known skill (known: billing, support)")


def test_a_wrong_setting_stops_start_up_naming_the_plugin_and_its_key(make_app):
    refused = start_up_refusal(make_app, "callbacks", {"default_region": "XX"}, register=[("callbacks", Callbacks())])

    assert (refused.key, refused.reason) == (
        "plugins.callbacks.default_region", "Value error, 'XX' is not a region phonenumbers knows (e.g. US, GB, FR)")


# -- conversations ----------------------------------------------------------------------------------------------


def start(server: Any, **overrides: Any) -> Any:
    """Run start_conversation in a transaction on the server's loop; what it started, or the error it raised."""
    app = server.app
    arguments = {"entry_point": "callbacks", "consumer": CONSUMER, "brand": app.config.number(BRAND_NUMBER),
                 "skill": "billing", "text": "Hi! Reply here and an agent will answer.", "now": utcnow(),
                 "context": {"call_id": "CA-1"}, **overrides}

    async def run() -> Any:
        try:
            async with app.store.transaction() as session:
                started = await start_conversation(session, **arguments)
                return started.conversation.id, started.message.id, (
                    started.replaced.id if started.replaced is not None else None)
        except (MessageRejected, Conflict) as exc:
            return exc

    return server.call(run)


@both_databases
def test_a_conversation_is_opened_automated_with_its_opening_text_in_the_outbox(make_app, live_server, db):
    server = live_server(make_app(sender={"enabled": False}))

    conversation_id, message_id, replaced = start(server)

    assert replaced is None
    [conversation] = db.rows("SELECT id, consumer_number, brand_number, status, skill, entry_point "
                             "FROM conversations")
    assert conversation == {"id": conversation_id, "consumer_number": CONSUMER, "brand_number": BRAND_NUMBER,
                            "status": "automated", "skill": "billing", "entry_point": "callbacks"}
    assert db.rows("SELECT id, conversation_id, direction, to_number, message_class, status FROM messages") == [
        {"id": message_id, "conversation_id": conversation_id, "direction": "outbound", "to_number": CONSUMER,
         "message_class": "conversational", "status": "queued"}]
    assert db.scalar("SELECT message_id FROM outbox") == message_id
    assert db.count("consumers", "number = :n", n=CONSUMER) == 1


@both_databases
@pytest.mark.parametrize(("text", "code", "reason"), [
    ("   ", "empty", "a message needs text or media"),
    ("x" * 1601, "too_long", "message is 1601 characters; the limit is 1600 characters"),
])
def test_a_text_no_agent_could_send_is_refused_before_anything_is_stored(make_app, live_server, db, text, code,
                                                                           reason):
    server = live_server(make_app(sender={"enabled": False}))
    before = snapshot(db)

    refused = start(server, text=text)

    assert isinstance(refused, MessageRejected)
    assert (refused.code, str(refused)) == (code, reason)
    assert snapshot(db) == before


@both_databases
def test_a_conversation_a_person_is_handling_is_left_alone_and_nothing_is_stored(make_app, live_server, db):
    server = live_server(make_app(sender={"enabled": False}))
    first, _, _ = start(server)
    db.execute("UPDATE conversations SET status = 'queued' WHERE id = :id", id=first)
    before = snapshot(db)

    refused = start(server, skill="sales")

    assert isinstance(refused, Conflict)
    assert str(refused) == (f"{CONSUMER} already has an open conversation ({first}) with {BRAND_NUMBER}, queued "
                            "for an agent: continue it there")
    assert snapshot(db) == before
    assert db.scalar("SELECT status FROM conversations") == "queued"


def test_an_automated_conversation_is_replaced_by_the_new_one(make_app, live_server, db):
    server = live_server(make_app(sender={"enabled": False}))
    first, _, _ = start(server)

    second, _, replaced = start(server, skill="sales", now=utcnow() + timedelta(seconds=1))

    assert replaced == first
    assert db.rows("SELECT id, status, skill, closed_at IS NOT NULL AS closed FROM conversations ORDER BY id") == [
        {"id": first, "status": "closed", "skill": "billing", "closed": True},
        {"id": second, "status": "automated", "skill": "sales", "closed": False}]
