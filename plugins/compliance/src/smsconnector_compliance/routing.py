"""Inbound: keywords are handled before any entry point or router sees the message.

An opt-out, opt-in or HELP keyword is answered here (once, unless the provider already answered) and recorded;
the conversation keeps its agent and skill, and the agent sees what happened in the message's notes. A text that
only looks like an opt-out, or any text from an opted-out consumer, goes on to the rest of the routing chain with
a note added: a declining route cannot carry notes, so the plugin asks the rest of the chain itself.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from smsconnector.plugin import InboundMessage, Routing
from smsconnector.plugins import await_maybe
from smsconnector.store.models import Conversation, Message

from . import ledger
from .keywords import Classification, Kind
from .location import locate
from .models import OPT_IN, OPT_OUT
from .settings import NumberRules, Policy

if TYPE_CHECKING:
    from smsconnector.plugin import App

NAME = "compliance"
#: Twilio's OptOutType values (Advanced Opt-Out): the provider already acted on and answered these.
PROVIDER_KEYWORD_KINDS: dict[str, Kind] = {"stop": "opt_out", "start": "opt_in", "help": "help"}


async def route(plugin: Any, policy: Policy, now: datetime, message: InboundMessage,
                conversation: Conversation | None, app: App, session: AsyncSession) -> Routing | None:
    """The compliance step of routing; ``None`` lets the chain continue untouched."""
    rules = policy.rules(message.to_number, message.provider)
    found = rules.classifier.classify(message.text)
    provider_kind = PROVIDER_KEYWORD_KINDS.get((message.provider_keyword or "").strip().casefold())
    answered_by_provider = provider_kind is not None or (
        rules.provider_handles_keywords and rules.provider_keywords.answered(message.text) is not None)
    if provider_kind is not None and provider_kind != found.kind:
        found = Classification(provider_kind, 1, rules.default_language, message.provider_keyword)
    standing = await ledger.state(session, message.from_number, rules.scope,
                                  opt_in_restores_consent=policy.settings.opt_in_restores_consent)
    step = _Step(rules, message, conversation, session, now, found, answered_by_provider)
    if found.kind == "opt_out":
        return await step.opt_out(already=standing.opted_out, provider_reported=provider_kind is not None)
    if found.kind == "opt_in" and (standing.opted_out or provider_kind is not None):
        return await step.opt_in(provider_reported=provider_kind is not None)
    if found.kind == "help":
        silenced = standing.opted_out and not policy.settings.help_when_opted_out
        return step.help(silenced)
    notes = []
    if standing.opted_out:
        assert standing.opt_out is not None
        notes.append(f"This consumer opted out on {standing.opt_out.occurred_at:%Y-%m-%d %H:%M} UTC: replies will be "
                     "refused until they text START.")
        if policy.settings.after_opt_out == "store":
            return step.routing(to_agent=False, notes=notes)
    if found.flag:
        notes.append(found.flag)
    if not notes:
        return None
    routed = await _rest_of_chain(plugin, message, conversation, app, session)
    if routed is None:
        return step.routing(to_agent=True, notes=notes)
    return replace(routed, notes=(*routed.notes, *notes))


async def _rest_of_chain(plugin: Any, message: InboundMessage, conversation: Conversation | None, app: App,
                         session: AsyncSession) -> Routing | None:
    """What the routing chain after this plugin decides, exactly as the host would have asked it."""
    kwargs = {"message": message, "conversation": conversation, "app": app, "session": session}
    in_call_order = app.pm.hook.smsconnector_route.get_hookimpls()[::-1]  # tryfirst first, as pluggy calls them
    after = next(i for i, impl in enumerate(in_call_order) if impl.plugin is plugin) + 1
    for impl in in_call_order[after:]:  # those before this plugin already declined
        if impl.wrapper or impl.hookwrapper:
            continue
        result = await await_maybe(impl.function(**{arg: kwargs[arg] for arg in impl.argnames}))
        if result is not None:
            return cast(Routing, result)
    return None


class _Step:
    """One keyword message being handled."""

    def __init__(self, rules: NumberRules, message: InboundMessage, conversation: Conversation | None,
                 session: AsyncSession, now: datetime, found: Classification, answered_by_provider: bool) -> None:
        self.rules, self.message, self.conversation, self.session = rules, message, conversation, session
        self.now, self.found, self.answered_by_provider = now, found, answered_by_provider

    def routing(self, *, to_agent: bool, notes: list[str], replies: tuple[str, ...] = ()) -> Routing:
        """Keep the conversation where it is (its agent, its skill), as the default router would."""
        conversation = self.conversation
        return Routing(handled_by=NAME, skill=conversation.skill if conversation else None,
                       agent_id=conversation.agent_id if conversation else None, to_agent=to_agent,
                       replies=replies, reply_class="compliance", notes=tuple(notes))

    async def _record(self, action: str, *, provider_reported: bool, confirmation: str,
                      confirmation_text: str | None) -> None:
        m = self.message
        inbound_id = (await self.session.exec(
            select(Message.id).where(Message.provider == m.provider,
                                     Message.provider_message_id == m.provider_message_id))).scalars().first()
        await ledger.record(
            self.session, occurred_at=self.now, consumer_number=m.from_number, scope=self.rules.scope,
            brand_number=m.to_number, action=action,
            method="provider" if provider_reported else ("keyword" if self.found.tier == 1 else "phrase"),
            source=f"sms:{m.provider}" + (f" ({m.provider} keyword {m.provider_keyword})" if provider_reported else ""),
            consumer_action=f"texted '{_clip(m.text)}'", raw_text=m.text, matched=self.found.matched,
            tier=self.found.tier, language=self.found.language, inbound_message_id=inbound_id,
            confirmation=confirmation, confirmation_text=confirmation_text,
            recipient_zones=" ".join(locate(m.from_number).zones) or None, recorded_by="consumer",
        )

    async def opt_out(self, *, already: bool, provider_reported: bool) -> Routing:
        said = f"'{_clip(self.message.text)}'"
        if already:
            reply, confirmation, outcome = None, "none", "They had already opted out, so no second confirmation."
        elif self.answered_by_provider:
            reply, confirmation, outcome = None, "provider", "The provider sent its own confirmation."
        else:
            reply = self.rules.reply("opt_out", self.found.language)
            confirmation, outcome = "ours", "One confirmation was sent."
        await self._record(OPT_OUT, provider_reported=provider_reported, confirmation=confirmation,
                           confirmation_text=reply)
        tier = "" if self.found.tier == 1 else f", read as an opt-out from the phrase '{self.found.matched}'"
        return self.routing(to_agent=False, replies=(reply,) if reply else (), notes=[
            f"Opted out: the consumer texted {said}{tier}. {outcome} Nothing more can be sent to them until they "
            "text START."])

    async def opt_in(self, *, provider_reported: bool) -> Routing:
        reply = None if self.answered_by_provider else self.rules.reply("opt_in", self.found.language)
        await self._record(OPT_IN, provider_reported=provider_reported,
                           confirmation="provider" if reply is None else "ours", confirmation_text=reply)
        return self.routing(to_agent=False, replies=(reply,) if reply else (), notes=[
            f"Opted back in: the consumer texted '{_clip(self.message.text)}'. Messages can be sent to them again."])

    def help(self, silenced: bool) -> Routing:
        if silenced:
            reply, outcome = None, "No HELP reply: the consumer is opted out (help_when_opted_out is off)."
        elif self.answered_by_provider:
            reply, outcome = None, "The provider sent its own HELP reply."
        else:
            reply, outcome = self.rules.reply("help", self.found.language), "The HELP reply was sent."
        return self.routing(to_agent=False, replies=(reply,) if reply else (),
                            notes=[f"HELP: the consumer texted '{_clip(self.message.text)}'. {outcome}"])


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
