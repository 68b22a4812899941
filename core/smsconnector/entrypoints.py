"""The public API for entry-point plugins: what IVR deflection, ad keywords and automation replies have in common.

An entry point is a way into a conversation other than a consumer texting out of the blue: an IVR offers a
caller on hold a text, an ad tells people to text a keyword, a brand's system sends a reminder. Its plugin
reads its settings, often serves an endpoint the brand's systems call, opens conversations or queues texts,
and claims the replies that answer them in ``smsconnector_route``::

    class Settings(EndpointSettings):
        greeting: str = "Hi! Reply here and an agent will answer."

    class Callbacks(EntryPoint[Settings]):
        name = "callbacks"
        settings_model = Settings
        migrations = Path(__file__).parent / "migrations"

Everything here refuses bad input before it stores anything: an API request gets a
:class:`~smsconnector.errors.MessageRejected` (422) naming the field, a setting a
:class:`~smsconnector.errors.ConfigError` naming the key. ``docs/writing-an-entry-point.md`` walks through a
whole plugin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import phonenumbers
from phonenumbers import PhoneNumberType
from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import outbound
from .assignment import AUTOMATED, CLOSED
from .config import plugin_settings
from .errors import ConfigError, Conflict, MessageRejected
from .events import emit
from .inbound import ensure_consumer, open_conversation
from .messages import AGENT_TEXT_LIMIT, InvalidNumber, MessageClass, to_e164
from .plugins import hookimpl
from .store.models import Conversation, Message

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from .app import App
    from .config import Config, NumberSettings

__all__ = [
    "EndpointSettings",
    "EntryPoint",
    "EntryPointSettings",
    "Started",
    "brand_number",
    "check_texts",
    "configured_number",
    "mobile_number",
    "start_conversation",
]


# -- settings ---------------------------------------------------------------------------------------------------


class EntryPointSettings(BaseModel):
    """Base of an entry point's ``[plugins.<name>]`` section: a key it does not know stops start-up (a typo would
    otherwise be ignored in silence), and the values cannot change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def named_skills(self) -> Iterable[str]:
        """Skills this section names beside those of the configured numbers; none unless a subclass says so."""
        return ()


class EndpointSettings(EntryPointSettings):
    """The settings of an entry point with an endpoint that the brand's systems call with a bearer token and
    consumers' numbers."""

    #: the bearer token the brand's system presents; without one the endpoint refuses every request
    token: str | None = Field(None, min_length=1)
    #: further skills a request may name, beside the skills of the configured numbers (a list, or comma-separated)
    skills: tuple[str, ...] = ()
    #: how a consumer's number without a leading + is read (ISO region)
    default_region: str = "US"

    @field_validator("skills", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"'{value}' is not a region phonenumbers knows (e.g. US, GB, FR)")
        return value.upper()

    def named_skills(self) -> Iterable[str]:
        """The ``skills`` setting."""
        return self.skills


def check_texts(texts: Mapping[str, str], *, what: str) -> Mapping[str, str]:
    """``texts`` (a text to send per skill, campaign...) when each is one an agent could send; for a pydantic
    validator, so the :class:`ValueError` naming the first bad one stops start-up with the setting's key::

        @field_validator("templates")
        @classmethod
        def _texts(cls, value): return check_texts(value, what="template")

    :raises ValueError: "the template for 'billing' is empty", or longer than the agent limit (1600).
    """
    for name, text in texts.items():
        if not text.strip():
            raise ValueError(f"the {what} for '{name}' is empty")
        if len(text) > AGENT_TEXT_LIMIT:
            raise ValueError(f"the {what} for '{name}' is {len(text)} characters; the limit is {AGENT_TEXT_LIMIT}")
    return texts


# -- the plugin class -------------------------------------------------------------------------------------------

S = TypeVar("S", bound=EntryPointSettings)


class EntryPoint(Generic[S]):
    """Base of an entry-point plugin's class, instantiated once per app: it reads ``[plugins.<name>]`` into
    ``settings_model`` at start-up (``smsconnector_configure``), keeps the skills requests may name, and gives
    the host the plugin's migrations (``smsconnector_migrations``).

    A subclass sets ``name`` (its entry-point name), ``settings_model`` and, with tables of its own,
    ``migrations``; it adds its own hooks (``smsconnector_route``, ``smsconnector_register_routes``...) as
    ``@hookimpl`` methods and may extend :meth:`configure`.
    """

    #: the plugin's entry-point name: its configuration section, and what its conversations are marked with
    name: str
    settings_model: type[S]
    #: the folder of the plugin's Alembic revisions, when it keeps tables of its own
    migrations: Path | None = None

    def __init__(self) -> None:
        self.settings: S = self.settings_model()
        #: the skills a request may name: the configured numbers' and those the settings name
        self.skills: frozenset[str] = frozenset()

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.<name>]``; a wrong value stops start-up naming its key."""
        self.settings = plugin_settings(app.config, self.name, self.settings_model)
        self.skills = frozenset({n.skill for n in app.config.numbers} | set(self.settings.named_skills()))
        self.configure(app)

    def configure(self, app: App) -> None:
        """Further set-up once ``settings`` are read; raise :class:`ConfigError` to stop start-up. Nothing here."""

    @hookimpl
    def smsconnector_migrations(self) -> Path | None:
        """The plugin's tables, on its own branch."""
        return self.migrations

    def known_skill(self, skill: str, *, field: str = "skill") -> str:
        """``skill`` when it is one of :attr:`skills`; :class:`MessageRejected` (422, ``unknown_skill``) naming
        ``field`` and the known ones otherwise."""
        if skill not in self.skills:
            raise MessageRejected(f"{field}: '{skill}' is not a known skill (known: {', '.join(sorted(self.skills))})",
                                  code="unknown_skill")
        return skill


# -- numbers ----------------------------------------------------------------------------------------------------

#: North American numbers come back FIXED_LINE_OR_MOBILE (the plan does not tell them apart), so both pass.
_RECEIVES_SMS = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_KINDS = {PhoneNumberType.TOLL_FREE: "a toll-free number", PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
          PhoneNumberType.SHARED_COST: "a shared-cost number", PhoneNumberType.VOIP: "a VoIP number",
          PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number", PhoneNumberType.PAGER: "a pager",
          PhoneNumberType.UAN: "a company (UAN) number", PhoneNumberType.VOICEMAIL: "a voicemail access number"}


def mobile_number(raw: str, *, field: str, region: str) -> str:
    """A consumer's number ``raw`` in E.164 when it can receive a text (read in ``region`` without a leading +).

    :raises MessageRejected: 422 naming ``field``: ``invalid_number`` (not a phone number, or not a valid one),
        ``landline``, or ``not_mobile`` (toll-free, premium-rate, VoIP, pager...).
    """
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise MessageRejected(f"{field}: {raw!r} is not a phone number", code="invalid_number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise MessageRejected(f"{field}: {raw!r} is not a valid phone number", code="invalid_number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    kind = phonenumbers.number_type(parsed)
    if kind == PhoneNumberType.FIXED_LINE:
        raise MessageRejected(f"{field}: {e164} is a landline and cannot receive text messages", code="landline")
    if kind not in _RECEIVES_SMS:
        raise MessageRejected(f"{field}: {e164} is {_KINDS.get(kind, 'not a known number type')}, not a mobile "
                              "number that can receive text messages", code="not_mobile")
    return e164


def _configured(config: Config, raw: str) -> NumberSettings | None:
    try:
        return config.number(to_e164(raw))
    except InvalidNumber:
        return None


def brand_number(config: Config, raw: str, *, field: str) -> NumberSettings:
    """The settings of the brand number a request names (``raw``, in any format the E.164 parser reads).

    :raises MessageRejected: 422 ``unknown_brand_number`` naming ``field``, when it is none of the configured
        ``[[numbers]]``.
    """
    number = _configured(config, raw)
    if number is None:
        raise MessageRejected(f"{field}: {raw} is not one of this deployment's numbers", code="unknown_brand_number")
    return number


def configured_number(config: Config, raw: str, *, key: str) -> NumberSettings:
    """The settings of the brand number a setting names, the start-up twin of :func:`brand_number`.

    :raises ConfigError: naming ``key``, when it is none of the configured ``[[numbers]]``.
    """
    number = _configured(config, raw)
    if number is None:
        raise ConfigError(key, f"{raw} is not one of the configured [[numbers]]")
    return number


# -- conversations ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """What :func:`start_conversation` did, in the caller's session (nothing is committed yet)."""

    #: the new conversation, ``automated`` until the consumer replies
    conversation: Conversation
    #: the opening text, queued in the outbox
    message: Message
    #: the consumer's automated conversation with this number that the new one closed, if there was one
    replaced: Conversation | None


async def start_conversation(
    session: AsyncSession,
    *,
    entry_point: str,
    consumer: str,
    brand: NumberSettings,
    skill: str,
    text: str,
    now: datetime,
    context: Mapping[str, Any] | None = None,
    message_class: MessageClass = "conversational",
) -> Started:
    """Open an ``automated`` conversation between ``consumer`` and the ``brand`` number, marked with
    ``entry_point`` and ``context`` for the agent, and queue ``text`` as its opening message, in ``session``.

    The text goes out through the outbox like any other message: the sender runs the send checks (the
    compliance plugin's opt-outs, consent for ``message_class``, quiet hours) when it goes, whatever queued it.
    A reply arrives in this conversation, where the entry point's ``smsconnector_route`` can claim it; route it
    to ``skill`` and the host queues the consumer for an agent.

    The consumer's open conversation with the number, if an automated one (nobody is working on it), is closed
    and returned as :attr:`Started.replaced`; one a person is handling is left alone and the call refused.

    :raises MessageRejected: ``text`` empty or longer than the agent limit, before anything is stored.
    :raises Conflict: the consumer's open conversation with this number is queued for or with an agent.
    """
    outbound.validate(text, to_number=consumer, from_number=brand.number)
    current = await open_conversation(session, consumer, brand.number, lock=True)
    if current is not None:
        if current.status != AUTOMATED:
            raise Conflict(f"{consumer} already has an open conversation ({current.id}) with {brand.number}, "
                           f"{current.status} for an agent: continue it there")
        current.status, current.closed_at = CLOSED, now
        emit(session, "conversation.closed", conversation_id=current.id, agent_id=current.agent_id)
    await ensure_consumer(session, consumer)
    conversation = Conversation(consumer_number=consumer, brand_number=brand.number, provider=brand.provider,
                                status=AUTOMATED, skill=skill, entry_point=entry_point, context=dict(context or {}),
                                opened_at=now, last_message_at=now)
    session.add(conversation)
    await session.flush()
    assert conversation.id is not None
    message = await outbound.queue(session, provider=brand.provider, from_number=brand.number, to_number=consumer,
                                   text=text, conversation_id=conversation.id, message_class=message_class)
    return Started(conversation=conversation, message=message, replaced=current)
