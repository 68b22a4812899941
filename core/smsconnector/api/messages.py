"""Messages an administrator acts on: a failed outbound message sent again."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import outbound
from ..errors import Conflict, NotFound
from ..messages import DeliveryStatus
from ..store.models import Message
from .endpoints import Call, endpoint
from .schemas import MessageOut
from .views import message_out


class NotRetryable(Conflict):
    """The message is not one that can be sent again; ``code`` says why."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason)
        self.code = code


@endpoint("POST", "/api/messages/{message_id:int}/retry", roles=("admin",),
          summary="Send a failed outbound message again (back in the outbox with a new retry budget; the send "
                  "checks run again); a message that did not fail, or that a send check refused, is not",
          tag="messages", response=MessageOut, errors=(409,))
async def retry_message(call: Call) -> MessageOut:
    async with call.app.store.transaction() as session:
        message = await _locked(session, call.param("message_id"))
        _retryable(message)
        await outbound.requeue(session, message, note=f"sent again by an administrator after it failed "
                                                      f"({message.error_code or 'no code'})")
        return message_out(message)[0]


async def _locked(session: AsyncSession, message_id: int) -> Message:
    """The message, locked so that two retries of it cannot both queue it (404 when there is none)."""
    stmt = select(Message).where(Message.id == message_id).with_for_update().execution_options(populate_existing=True)
    message = (await session.exec(stmt)).scalars().first()  # type: ignore[call-overload]
    if message is None:
        raise NotFound(f"no message {message_id}")
    return message


def _retryable(message: Message) -> None:
    """Refuse (409) to send ``message`` again unless it is an outbound message that failed.

    A refusal by a send check (an opt-out, a cap) is not a failure: it is the gate's decision, and sending the
    message again is not for an administrator to try around it.
    """
    if message.direction != "outbound":
        raise NotRetryable(f"message {message.id} is a consumer's message: only outbound messages are sent",
                           code="not_outbound")
    if message.status == DeliveryStatus.REFUSED:
        raise NotRetryable(f"message {message.id} was refused by a send check ({message.error_code}), which is not "
                           "a failure: it is not sent again", code="refused")
    if message.status != DeliveryStatus.FAILED:
        raise NotRetryable(f"message {message.id} is {message.status}: only a failed message is sent again",
                           code="not_failed")
