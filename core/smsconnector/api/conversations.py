"""Conversations: agents see and act on their own, administrators on all."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from .. import assignment, idempotency, outbound
from ..errors import Conflict, Forbidden, NotFound
from ..inbound import ensure_consumer, open_conversation
from ..messages import InvalidNumber, to_e164, utcnow
from ..store.models import Agent, Conversation, Skill
from .endpoints import Call, InvalidRequest, endpoint
from .schemas import (
    ConversationDetail,
    ConversationIn,
    ConversationList,
    ConversationOut,
    ConversationQuery,
    MessageOut,
    ReplyIn,
    TransferIn,
)
from .views import conversation_detail, conversation_out

BOTH = ("admin", "agent")


def checked(call: Call, conversation: Conversation | None, *, open_: bool = False) -> Conversation:
    """The conversation the path names, if there is one (404) and the caller may act on it (403); with
    ``open_``, only if it is not closed (409)."""
    if conversation is None:
        raise NotFound(f"no conversation {call.param('conversation_id')}")
    if not call.admin and conversation.agent_id != call.principal.agent_id:
        raise Forbidden("this conversation is not assigned to you")
    if open_ and not conversation.is_open:
        raise Conflict(f"conversation {conversation.id} is closed")
    return conversation


async def _conversation(session: AsyncSession, call: Call) -> Conversation:
    return checked(call, await session.get(Conversation, call.param("conversation_id")))


async def _open_conversation(session: AsyncSession, call: Call) -> Conversation:
    conversation = await assignment.lock_conversation(session, call.param("conversation_id"))
    return checked(call, conversation, open_=True)


async def _known_skill(session: AsyncSession, name: str) -> None:
    if await session.get(Skill, name) is None:
        raise InvalidRequest(f"unknown skill {name!r}")


@endpoint("GET", "/api/conversations", roles=BOTH, summary="List conversations, newest first (an agent: their own)",
          tag="conversations", query=ConversationQuery, response=ConversationList)
async def list_conversations(call: Call) -> ConversationList:
    query: ConversationQuery = call.query
    agent_id = query.agent_id
    if not call.admin:
        if agent_id not in (None, call.principal.agent_id):
            raise Forbidden("an agent may only list their own conversations")
        agent_id = call.principal.agent_id
    stmt = select(Conversation).order_by(Conversation.id.desc()).limit(query.limit)
    for column, value in ((Conversation.status, query.status), (Conversation.skill, query.skill),
                          (Conversation.agent_id, agent_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.before is not None:
        stmt = stmt.where(Conversation.id < query.before)
    async with call.app.store.session() as session:
        return ConversationList(items=[conversation_out(c) for c in (await session.exec(stmt)).scalars()])


@endpoint("POST", "/api/conversations", roles=("agent",),
          summary="Start a conversation with a consumer (a follow-up); it is assigned to the calling agent",
          tag="conversations", body=ConversationIn, response=ConversationDetail, status=201, errors=(409,),
          idempotent=True)
async def start_conversation(call: Call) -> ConversationDetail | Response:
    body: ConversationIn = call.body
    try:
        brand = call.app.config.number(to_e164(body.from_))
    except InvalidNumber as exc:
        raise InvalidRequest(f"from: {exc}") from None
    if brand is None:
        raise InvalidRequest(f"from: {body.from_} is not one of the configured brand numbers")
    to_number, from_number = outbound.validate(body.text, to_number=body.to, from_number=brand.number)
    me = call.principal.agent_id
    assert me is not None
    async with call.app.store.transaction() as session:
        await idempotency.claim(session, call.idempotency)  # first: a request that loses it does nothing
        agent = await assignment.lock_agent(session, me)  # agent before conversation: the lock order
        assert agent is not None
        if body.skill is not None:
            await _known_skill(session, body.skill)
        skill = body.skill or await _follow_up_skill(session, me, brand.skill)
        conversation = await open_conversation(session, to_number, from_number, lock=True)
        if conversation is not None:
            if conversation.status == assignment.ASSIGNED and conversation.agent_id != me:
                raise Conflict(f"{to_number} is in an open conversation with another agent")
            conversation.context = {**conversation.context, **body.context}
            conversation.entry_point = body.entry_point or conversation.entry_point
        else:
            await ensure_consumer(session, to_number)
            conversation = Conversation(consumer_number=to_number, brand_number=from_number, provider=brand.provider,
                                        skill=skill, entry_point=body.entry_point, context=body.context,
                                        status=assignment.AUTOMATED)
            session.add(conversation)
        await session.flush()
        if conversation.agent_id != me or conversation.status != assignment.ASSIGNED:
            await assignment.assign(session, conversation, me, reason="outbound")
        conversation.skill, conversation.last_message_at = skill, utcnow()  # after: a queue it left drains
        await outbound.queue(session, provider=conversation.provider, from_number=from_number, to_number=to_number,
                             text=body.text, conversation_id=conversation.id, agent_id=me,
                             message_class="informational")
        return await call.remember(session, await conversation_detail(session, conversation))


async def _follow_up_skill(session: AsyncSession, agent_id: int, brand_skill: str) -> str:
    """Where a follow-up's replies go while its agent is not online: the number's skill if the agent has it."""
    skills = await assignment.skills_of(session, agent_id)
    return brand_skill if brand_skill in skills or not skills else skills[0]


@endpoint("GET", "/api/conversations/{conversation_id:int}", roles=BOTH,
          summary="Read a conversation with its messages", tag="conversations", response=ConversationDetail)
async def read_conversation(call: Call) -> ConversationDetail:
    async with call.app.store.session() as session:
        return await conversation_detail(session, await _conversation(session, call))


@endpoint("POST", "/api/conversations/{conversation_id:int}/messages", roles=BOTH,
          summary="Reply to the consumer, through the conversation's provider and brand number",
          tag="conversations", body=ReplyIn, response=MessageOut, status=201, errors=(409,), idempotent=True)
async def reply(call: Call) -> MessageOut | Response:
    # Queued with the replies posted at the same moment, in one transaction; answered once it committed.
    return await call.app.replies.submit(call)


@endpoint("POST", "/api/conversations/{conversation_id:int}/transfer", roles=BOTH,
          summary="Transfer to a skill (back of its queue) or to an agent who is not offline",
          tag="conversations", body=TransferIn, response=ConversationOut, errors=(409,))
async def transfer(call: Call) -> ConversationOut:
    async with call.app.store.transaction() as session:
        await _conversation(session, call)  # 404 and 403 before anything is locked
        body: TransferIn = call.body
        target: Agent | None = None
        if body.agent_id is not None:
            target = await assignment.lock_agent(session, body.agent_id)  # agent before conversation
            if target is None or target.deleted_at is not None:
                raise InvalidRequest(f"no agent {body.agent_id}")
            if target.status == "offline":
                raise Conflict(f"agent {body.agent_id} is offline")
        conversation = await _open_conversation(session, call)
        if target is not None:
            if conversation.status == assignment.ASSIGNED and conversation.agent_id == target.id:
                raise Conflict(f"conversation {conversation.id} is already assigned to agent {target.id}")
            await assignment.assign(session, conversation, body.agent_id, reason="transfer")  # type: ignore[arg-type]
        else:
            assert body.skill is not None
            await _known_skill(session, body.skill)
            await assignment.transfer_to_skill(session, conversation, body.skill)
        return conversation_out(conversation)


@endpoint("POST", "/api/conversations/{conversation_id:int}/close", roles=BOTH,
          summary="Close a conversation; the consumer's next text starts a new one", tag="conversations",
          response=ConversationOut, errors=(409,))
async def close(call: Call) -> ConversationOut:
    async with call.app.store.transaction() as session:
        conversation = await _open_conversation(session, call)
        await assignment.close(session, conversation, reason="closed")
        return conversation_out(conversation)
