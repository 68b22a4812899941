"""The compliance plugin: keyword handling first in routing, the consent ledger, and the send gate.

Essential: once installed, configuration cannot disable it. State kept on the instance: the resolved policy and
the clock (replace ``clock`` in tests to decide quiet hours at a fixed time).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smsconnector.plugin import (
    ConsentSignal,
    InboundMessage,
    OutboundMessage,
    Routing,
    StatusUpdate,
    Verdict,
    hookimpl,
    utcnow,
)
from smsconnector.store.models import Message

from . import api, gate, ledger, routing, settings
from .location import locate
from .models import CONSENT, OPT_IN, OPT_OUT, LedgerEvent
from .settings import NAME, Policy

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import Route

    from smsconnector.plugin import App
    from smsconnector.store.models import Conversation

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


class Compliance:
    """One per app."""

    def __init__(self) -> None:
        self._policy: Policy | None = None
        #: the current time; tests replace it with a fixed clock
        self.clock: Callable[[], datetime] = utcnow

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            raise RuntimeError("the compliance plugin is not configured yet")
        return self._policy

    def now(self) -> datetime:
        return self.clock()

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.compliance]``; warn about numbers whose HELP reply lacks a brand name or contact."""
        self._policy = Policy(settings.load(app.config.plugin(NAME)), app.config)
        for number in app.config.numbers:
            own = self._policy.settings.numbers.get(number.number)
            if own is None or not (own.brand_name or number.brand) or not own.contact:
                log.warning("compliance: number %s has no brand_name or contact configured; HELP and opt-out "
                            "replies use fallbacks (see [plugins.compliance.numbers])", number.number)

    @hookimpl
    def smsconnector_migrations(self) -> Path:
        """The ledger and the capped-send counter, on their own ``compliance`` branch."""
        return MIGRATIONS

    @hookimpl
    def smsconnector_register_routes(self, app: App) -> list[Route]:
        """The ledger export, consent recording, agent opt-outs and the send preview."""
        return api.routes(self, app)

    @hookimpl
    def smsconnector_route_prefetch(self, messages: Sequence[InboundMessage], session: AsyncSession
                                    ) -> Awaitable[None]:
        """Read the consent ledger of every consumer in the batch with one statement."""
        rules = self.policy.rules
        return ledger.read_ahead(session, ((m.from_number, rules(m.to_number, m.provider).scope) for m in messages))

    @hookimpl(tryfirst=True)
    def smsconnector_route(self, message: InboundMessage, conversation: Conversation | None, app: App,
                           session: AsyncSession) -> Awaitable[Routing | None]:
        """Answer and record opt-out, opt-in and HELP keywords before any entry point; note likely opt-outs."""
        return routing.route(self, self.policy, self.now(), message, conversation, app, session)

    @hookimpl
    def smsconnector_check_outbound(self, message: OutboundMessage, session: AsyncSession) -> Awaitable[Verdict]:
        """Refuse sends to opted-out consumers and sends without consent; defer outside quiet hours and caps."""
        return gate.check(self.policy, session, message, self.now())

    @hookimpl
    def smsconnector_consent_signal(self, signal: ConsentSignal, session: AsyncSession) -> Awaitable[Any]:
        """Record a provider's opt-out or opt-in (Twilio 21610), or consent another plugin obtained."""
        if signal.action == CONSENT:
            return self.record(
                session, consumer=signal.consumer_number, brand_number=signal.brand_number, action=CONSENT,
                consent_class=signal.consent_class, method=signal.method, source=signal.source[:300],
                consumer_action=(signal.consumer_action or "")[:300] or None, disclosure_text=signal.disclosure,
                recorded_by=signal.recorded_by or signal.method,
            )
        return self._provider_signal(session, consumer=signal.consumer_number, brand_number=signal.brand_number,
                                     action=signal.action, source=signal.source, provider=signal.provider or "?",
                                     message_id=signal.message_id)

    @hookimpl
    def smsconnector_status_recorded(self, update: StatusUpdate, message_id: int,
                                     session: AsyncSession) -> Awaitable[None] | None:
        """A delivery report with the provider's opt-out error code (Twilio 21610) records an opt-out."""
        if update.error_code is None or update.error_code not in self.policy.provider(
                update.provider).opt_out_error_codes:
            return None
        return self._status_opt_out(session, update, message_id)

    async def _status_opt_out(self, session: AsyncSession, update: StatusUpdate, message_id: int) -> None:
        message = await session.get(Message, message_id)
        if message is None or message.direction != "outbound":
            return
        await self._provider_signal(session, consumer=message.to_number, brand_number=message.from_number,
                                    action=OPT_OUT, source=f"{update.provider}:{update.error_code}",
                                    provider=update.provider, message_id=message_id)

    async def _provider_signal(self, session: AsyncSession, *, consumer: str, brand_number: str, action: str,
                               source: str, provider: str, message_id: int | None) -> None:
        rules = self.policy.rules(brand_number, provider)
        await ledger.record(
            session, occurred_at=self.now(), consumer_number=consumer, scope=rules.scope, brand_number=brand_number,
            action=OPT_OUT if action == OPT_OUT else OPT_IN, method="provider", source=source, message_id=message_id,
            confirmation="provider" if action == OPT_OUT else None,
            recipient_zones=" ".join(locate(consumer).zones) or None, recorded_by=f"provider:{provider}",
        )

    async def record(self, session: AsyncSession, *, consumer: str, brand_number: str, action: str,
                     method: str, source: str, recorded_by: str, **fields: Any) -> LedgerEvent:
        """Append a consent fact from another plugin (an IVR "text me" keypress, a follow-up's consent).

        Use the session of the transaction that acts on it, so that the fact and its effect commit together.
        """
        return await ledger.record(
            session, occurred_at=fields.pop("occurred_at", None) or self.now(), consumer_number=consumer,
            scope=self.policy.rules(brand_number).scope, brand_number=brand_number, action=action, method=method,
            source=source, recipient_zones=" ".join(locate(consumer).zones) or None, recorded_by=recorded_by,
            **fields,
        )
