"""The default router: runs last, after compliance and entry points, and sends the consumer to an agent.

A message continues its open conversation with the same agent while that agent is online; when the agent is
away or offline, the conversation goes back to the front of its skill's queue. A new conversation (or one
idle for longer than ``idle_close_seconds``) goes to the skill of the brand number it was sent to, where
:mod:`smsconnector.assignment` gives it to the best available agent or keeps it queued.

Configuration, ``[plugins.router]``:

- ``idle_close_seconds`` (default 86400): a conversation with no message for this long is closed, freeing
  its agent's slot; the consumer's next text starts a new one. 0 keeps conversations open until closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from smsconnector import assignment
from smsconnector.plugin import Routing, hookimpl, plugin_settings, utcnow

if TYPE_CHECKING:
    from smsconnector.plugin import App, InboundMessage
    from smsconnector.store.models import Conversation

NAME = "router"
log = logging.getLogger(__name__)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idle_close_seconds: float = Field(86400.0, ge=0)


class Router:
    """The built-in router of one app, with the task that closes idle conversations."""

    def __init__(self) -> None:
        self.settings = Settings()
        self._task: asyncio.Task[None] | None = None

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.router]``."""
        self.settings = plugin_settings(app.config, NAME, Settings)

    @hookimpl(trylast=True)
    def smsconnector_route(
        self, message: InboundMessage, conversation: Conversation | None, app: App, session: AsyncSession
    ) -> Awaitable[Routing]:
        """Continue the open conversation with its agent, or queue a new one for the brand number's skill."""
        return self._route(message, conversation, app, session)

    async def _route(
        self, message: InboundMessage, conversation: Conversation | None, app: App, session: AsyncSession
    ) -> Routing:
        number = app.config.number(message.to_number)
        skill = number.skill if number else "default"
        if conversation is None or not conversation.is_open:
            return Routing(handled_by=NAME, skill=skill)
        if self._idle(conversation):
            return Routing(handled_by=NAME, skill=skill, new_conversation=True)
        await assignment.keep_or_release(session, conversation)
        if not conversation.is_open:  # closed by another transaction a moment ago
            return Routing(handled_by=NAME, skill=skill)
        return Routing(handled_by=NAME, skill=conversation.skill, agent_id=conversation.agent_id)

    def _idle(self, conversation: Conversation) -> bool:
        timeout = self.settings.idle_close_seconds
        return bool(timeout) and conversation.last_message_at < utcnow() - timedelta(seconds=timeout)

    async def close_idle(self, app: App) -> int:
        """Close every conversation idle past the timeout; how many."""
        if not self.settings.idle_close_seconds:
            return 0
        before = utcnow() - timedelta(seconds=self.settings.idle_close_seconds)
        async with app.store.transaction() as session:
            return await assignment.close_idle(session, before)

    @hookimpl
    def smsconnector_startup(self, app: App) -> None:
        """Start closing idle conversations in the background."""
        if self.settings.idle_close_seconds:
            self._task = asyncio.create_task(self._close_idle_forever(app), name="smsconnector-router-idle")

    @hookimpl
    async def smsconnector_shutdown(self) -> None:
        """Stop the idle-close task."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _close_idle_forever(self, app: App) -> None:
        interval = min(60.0, max(0.25, self.settings.idle_close_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                closed = await self.close_idle(app)
            except Exception:
                log.exception("router: closing idle conversations failed; trying again")
            else:
                if closed:
                    log.info("router: closed %d idle conversation(s)", closed)
