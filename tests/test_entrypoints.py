"""The public API of entry-point plugins: bad input gets an error naming the field or key, and stores nothing.

``Callbacks`` is the plugin that docs/writing-an-entry-point.md builds: keep the two alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector import Routing, hookimpl
from smsconnector.app import App
from smsconnector.config import load_config, plugin_settings
from smsconnector.endpoints import json_model, require_token
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
from smsconnector.messages import AGENT_TEXT_LIMIT, utcnow
from smsconnector.store.models import Conversation
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import (
    CONSUMER,
    Refusal,
    alone,
    assert_refused,
    both_databases,
    delivered,
    snapshot,
    start_up_refusal,
    text_brand,
)

CONFIG = load_config(env={}, overrides={"numbers": [
    {"number": BRAND_NUMBER, "provider": "simulator", "skill": "support"}]})


class Settings(EndpointSettings):
    """A small entry point's section, as a plugin author writes one."""

    greeting: str = Field("Thanks for visiting! Reply here and an agent will answer.", min_length=1,
                          max_length=AGENT_TEXT_LIMIT)
    #: a greeting per skill
    greetings: dict[str, str] = {}

    @field_validator("greetings")
    @classmethod
    def _texts(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        return check_texts(value, what="greeting")


class Callbacks(EntryPoint[Settings]):
    """The brand's website asks for a visitor to be texted; their reply reaches an agent of the chosen skill."""

    name = "callbacks"
    settings_model = Settings

    @hookimpl
    def smsconnector_register_routes(self, app: App) -> list[Route]:
        return routes(self, app)

    @hookimpl
    def smsconnector_route(self, conversation: Conversation | None) -> Routing | None:
        if conversation is None or conversation.entry_point != self.name or conversation.status != "automated":
            return None
        return Routing(handled_by=self.name, skill=conversation.skill, entry_point=self.name,
                       context=dict(conversation.context))


class CallbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=40)
    brand_number: str = Field(min_length=1, max_length=40)
    skill: str = Field(min_length=1, max_length=100)


def routes(plugin: Callbacks, app: App) -> list[Route]:
    async def create(request: Request) -> Response:
        settings = plugin.settings
        require_token(request, settings.token, setting="plugins.callbacks.token")
        body = await json_model(app, request, CallbackRequest)
        visitor = mobile_number(body.to, field="to", region=settings.default_region)
        brand = brand_number(app.config, body.brand_number, field="brand_number")
        skill = plugin.known_skill(body.skill)
        async with app.store.transaction() as session:
            started = await start_conversation(
                session, entry_point=plugin.name, consumer=visitor, brand=brand, skill=skill,
                text=settings.greetings.get(skill, settings.greeting), now=utcnow(),
                context={"source": "website"})
        return JSONResponse({"conversation_id": started.conversation.id, "message_id": started.message.id},
                            status_code=202)

    return [Route("/api/callbacks", create, methods=["POST"])]


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


@both_databases
def test_an_automated_conversation_is_replaced_by_the_new_one(make_app, live_server, db):
    server = live_server(make_app(sender={"enabled": False}))
    first, _, _ = start(server)

    second, _, replaced = start(server, skill="sales", now=utcnow() + timedelta(seconds=1))

    assert replaced == first
    assert db.rows("SELECT id, status, skill, closed_at IS NOT NULL AS closed FROM conversations ORDER BY id") == [
        {"id": first, "status": "closed", "skill": "billing", "closed": True},
        {"id": second, "status": "automated", "skill": "sales", "closed": False}]


# -- the plugin over HTTP ---------------------------------------------------------------------------------------

AUTH = {"Authorization": "Bearer t"}
GOOD = {"to": CONSUMER, "brand_number": BRAND_NUMBER, "skill": "support"}


def callbacks_app(make_app: Any) -> App:
    return make_app(register=[("callbacks", Callbacks())], plugins={"disabled": alone("callbacks"), "callbacks": {
        "token": "t", "greetings": {"support": "Hello from support! Reply here."}}})


@both_databases
def test_the_visitor_is_texted_and_the_reply_reaches_the_skill_with_the_context(make_app, live_server, db):
    app = callbacks_app(make_app)
    server = live_server(app)

    response = httpx.post(f"{server.url}/api/callbacks", json=GOOD, headers=AUTH)

    assert response.status_code == 202
    assert [(s["to"], s["text"], s["message_id"]) for s in delivered(app)] == [
        (CONSUMER, "Hello from support! Reply here.", response.json()["message_id"])]
    assert text_brand(server.url, "sim-1", "Hi, about my order").status_code == 200
    assert db.rows("SELECT id, status, skill, entry_point FROM conversations") == [
        {"id": response.json()["conversation_id"], "status": "queued", "skill": "support",
         "entry_point": "callbacks"}]
    assert db.scalar("SELECT handled_by FROM messages WHERE direction = 'inbound'") == "callbacks"


@both_databases
def test_bad_requests_to_the_plugin_change_nothing(make_app, live_server, db):
    server = live_server(callbacks_app(make_app))

    assert_refused(server, db, "/api/callbacks", [
        Refusal("no token", 401, "unauthenticated", "Authorization: Bearer", headers={}),
        Refusal("landline", 422, "landline", "to: +442079460000 is a landline", body={**GOOD, "to": "+442079460000"}),
        Refusal("unknown brand number", 422, "unknown_brand_number", "brand_number: +14155550100 is not one of",
                body={**GOOD, "brand_number": "+14155550100"}),
        Refusal("unknown skill", 422, "unknown_skill", "skill: 'astrology' is not a known skill (known: support)",
                body={**GOOD, "skill": "astrology"}),
    ], body=GOOD, headers=AUTH)
