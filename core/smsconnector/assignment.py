"""Who serves a conversation: skill queues, and assignment to the best available agent.

**Rules.**

- A conversation waiting for an agent is ``queued`` for its skill, ordered by ``queued_at`` then id.
- The head of a queue goes to an *online* agent who has the skill and a free slot (fewer ``assigned``
  conversations than ``max_concurrent``); among those, the one who has waited longest since their last
  assignment (never assigned counts as longest), then the lowest id. Queues are drained first in, first out.
- When an agent with several skills has a free slot, the consumer who has waited longest in any of those queues
  comes first, whatever the skills are called.
- A queue is drained whenever a slot may have opened or a conversation joined it: a conversation queued,
  closed or transferred, an agent coming online or gaining a skill or capacity; and every few seconds by the
  host's maintenance loop, as a safety net.
- A conversation taken back from its agent because the agent went offline, was removed, or was not online
  when the consumer wrote again goes back to the **front**: it keeps the place it first queued at (or the
  time it opened), ahead of everyone who arrived later; the consumer has waited once already. A transfer to a
  skill joins the **back** of that queue, as a new request does.

**Locks** (PostgreSQL; SQLite serialises writers, so the same code is simply serial there, and what is read
again once its row is locked here is not read twice there). Blocking locks are taken in one order, agent ->
conversation -> the assignment lock, and never an agent after a conversation, so no two transactions wait on
each other in a circle. Draining holds the assignment lock (a transaction-scoped advisory lock, one per
database schema) so queues are drained by one transaction at a time across replicas, which keeps them first in,
first out; it takes the queue head ``FOR UPDATE SKIP LOCKED`` and candidate agents ``FOR NO KEY UPDATE SKIP
LOCKED``. It looks for the head only
while an online agent with the skill has a free slot, checked in the same query, under the assignment lock (so
it sees what the drains before it committed). An agent's load is counted only after its row is locked, so two
replicas never fill the same slot. A head held by another transaction stops the drain (that transaction drains
after itself); an agent held by another transaction is passed over for this round (the maintenance sweep comes
back for anything left).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

from sqlalchemy import bindparam, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .events import emit
from .messages import utcnow
from .store.models import Agent, AgentSkill, Conversation

log = logging.getLogger(__name__)

AgentStatus = Literal["online", "away", "offline"]
QUEUED, ASSIGNED, AUTOMATED, CLOSED = "queued", "assigned", "automated", "closed"

#: second key of the advisory lock that serialises draining (the first is the schema, so test schemas and
#: deployments sharing a server do not wait on each other)
_LOCK_KEY = 0x5AA16


# The statements of routing and draining, built once with their parameters bound at execution: building them
# per call cost about as much as running them.
_LOCK_ASSIGNMENT = select(func.pg_advisory_xact_lock(func.hashtext(func.current_schema()), _LOCK_KEY))
_LOAD = select(func.count()).where(Conversation.agent_id == bindparam("agent_id"), Conversation.status == ASSIGNED)
_BUSY = (select(func.count()).where(Conversation.agent_id == Agent.id, Conversation.status == ASSIGNED)
         .correlate(Agent).scalar_subquery())
#: an online agent who has the skill and a free slot, as the statement begins (joined to its skills)
_FREE_SLOT = (AgentSkill.skill == bindparam("skill"), Agent.status == "online", Agent.deleted_at.is_(None),
              Agent.max_concurrent > _BUSY)
_FREE_AGENT = (
    select(Agent).join(AgentSkill, AgentSkill.agent_id == Agent.id)
    .where(*_FREE_SLOT, Agent.id.not_in(bindparam("full", expanding=True)))
    .order_by(Agent.last_assigned_at.asc().nulls_first(), Agent.id).limit(1)
    .with_for_update(of=Agent, skip_locked=True, key_share=True).execution_options(populate_existing=True)
)
_HEAD = (select(Conversation.id).where(Conversation.skill == bindparam("skill"), Conversation.status == QUEUED)
         .order_by(Conversation.queued_at, Conversation.id).limit(1))
#: of ``skills``, those an online agent with a free slot has, as the statement begins
_SERVABLE_SKILLS = (
    select(AgentSkill.skill).distinct().join(Agent, AgentSkill.agent_id == Agent.id)
    .where(AgentSkill.skill.in_(bindparam("skills", expanding=True)), Agent.status == "online",
           Agent.deleted_at.is_(None), Agent.max_concurrent > _BUSY)
)
#: the head of a skill's queue, with what orders heads of different queues
_HEAD_ROW = _HEAD.with_only_columns(Conversation.id, Conversation.skill, Conversation.queued_at)
_LOCK_HEAD = (select(Conversation).where(Conversation.id == bindparam("id")).with_for_update(skip_locked=True)
              .execution_options(populate_existing=True))
_AGENTS = (select(Agent).where(Agent.id.in_(bindparam("ids", expanding=True)))
           .execution_options(populate_existing=True))
#: where :func:`drains_deferred` keeps the skills to drain, in ``session.info``
_DEFERRED_DRAINS = "smsconnector.drains_deferred"


def _postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def _lock_assignment(session: AsyncSession) -> None:
    if _postgres(session):
        await session.exec(_LOCK_ASSIGNMENT)


async def load(session: AsyncSession, agent_id: int) -> int:
    """How many conversations the agent is serving now."""
    return int((await session.exec(_LOAD, params={"agent_id": agent_id})).scalar_one())


async def skills_of(session: AsyncSession, agent_id: int) -> list[str]:
    stmt = select(AgentSkill.skill).where(AgentSkill.agent_id == agent_id).order_by(AgentSkill.skill)
    return list((await session.exec(stmt)).scalars().all())


async def lock_agent(session: AsyncSession, agent_id: int, *, skip_locked: bool = False) -> Agent | None:
    """The agent's row, locked and re-read; ``None`` when absent (or, with ``skip_locked``, held elsewhere).

    Agents' rows are locked FOR NO KEY UPDATE (their id never changes; they are never deleted, only marked), which
    does not block the key-share lock PostgreSQL takes to check a foreign key: a transaction assigning a
    conversation to the agent, holding that conversation's lock, would otherwise wait for this one while this
    one waits for the conversation, a deadlock."""
    stmt = (select(Agent).where(Agent.id == agent_id).with_for_update(skip_locked=skip_locked, key_share=True)
            .execution_options(populate_existing=True))
    return (await session.exec(stmt)).scalars().first()


async def lock_conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    stmt = (select(Conversation).where(Conversation.id == conversation_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.exec(stmt)).scalars().first()


def _serving(agent: Agent) -> bool:
    return agent.status == "online" and agent.deleted_at is None


async def _free_agent(session: AsyncSession, skill: str) -> Agent | None:
    """The online agent with ``skill`` and a free slot who has waited longest; locked."""
    full: list[int] = []
    while (agent := (await session.exec(_FREE_AGENT, params={"skill": skill, "full": full})).scalars().first()
           ) is not None:
        assert agent.id is not None
        # Counted again now that the row is ours: the filter above saw the load as the statement began (on
        # SQLite, with writers serialised, nothing can have changed it since).
        if not _postgres(session) or await load(session, agent.id) < agent.max_concurrent:
            return agent
        full.append(agent.id)
    return None


async def _head_id(session: AsyncSession, skill: str) -> int | None:
    return (await session.exec(_HEAD, params={"skill": skill})).scalars().first()


async def _longest_waiting(session: AsyncSession, skills: set[str]) -> Conversation | None:
    """The conversation that has waited longest in the queues of ``skills`` that an online agent with a free slot
    could take, locked. A head another transaction holds takes its queue out of ``skills`` for this drain (that
    transaction drains after itself, which keeps the queue's order); ``None`` once no queue has anyone to give.

    The queues an agent could serve are found first, with one statement over the agents; then each one's head
    through the queue index, and the oldest of those heads wins. Asking for the oldest conversation that some agent
    could serve in one statement instead made the database test every queued conversation for a free agent: a
    sweep over a long queue that nobody serves took the store for a noticeable while every few seconds.
    """
    while skills:
        servable = (await session.exec(_SERVABLE_SKILLS, params={"skills": sorted(skills)})).scalars().all()
        skills.intersection_update(servable)
        heads = []
        for skill in sorted(skills):
            found = (await session.exec(_HEAD_ROW, params={"skill": skill})).first()
            if found is None:
                skills.discard(skill)
            else:
                heads.append(found)
        if not heads:
            return None
        oldest = min(heads, key=lambda row: (row.queued_at, row.id))
        head = (await session.exec(_LOCK_HEAD, params={"id": oldest.id})).scalars().first()
        if head is None:
            skills.discard(oldest.skill)
        elif head.status == QUEUED and head.skill == oldest.skill:
            return head
    return None


@contextlib.contextmanager
def drains_deferred(session: AsyncSession) -> Iterator[set[str]]:
    """Within the block, :func:`drain` only notes the skills it is asked to drain, in the set this yields: a
    routing batch drains each queue once at its end (``await drain(session, skills)``), and takes the assignment
    lock once, after the last conversation lock of the batch, not once per message."""
    deferred: set[str] = set()
    session.info[_DEFERRED_DRAINS] = deferred
    try:
        yield deferred
    finally:
        del session.info[_DEFERRED_DRAINS]


async def drain(session: AsyncSession, skills: Iterable[str | None]) -> list[Conversation]:
    """Assign the queues of ``skills``, first in first out, while agents have free slots; what was assigned
    (nothing yet, inside :func:`drains_deferred`)."""
    wanted = sorted({s for s in skills if s})
    deferred: set[str] | None = session.info.get(_DEFERRED_DRAINS)
    if deferred is not None:
        deferred.update(wanted)
        return []
    if not wanted:
        return []
    await _lock_assignment(session)
    assigned: list[Conversation] = []
    open_queues = set(wanted)
    while (head := await _longest_waiting(session, open_queues)) is not None:
        assert head.skill is not None
        agent = await _free_agent(session, head.skill)
        if agent is None:  # the slot it saw is taken (by a transaction not yet committed when it looked)
            open_queues.discard(head.skill)
            continue
        await _give(session, head, agent, reason="routed")
        assigned.append(head)
    return assigned


async def _give(session: AsyncSession, conversation: Conversation, agent: Agent, *, reason: str,
                stamp: bool = True) -> None:
    now = utcnow()
    conversation.agent_id, conversation.status, conversation.assigned_at = agent.id, ASSIGNED, now
    if stamp:
        agent.last_assigned_at = now
    await session.flush()
    emit(session, "conversation.assigned", conversation_id=conversation.id, agent_id=agent.id,
         skill=conversation.skill, reason=reason)


async def enqueue(session: AsyncSession, conversation: Conversation, skill: str | None = None) -> None:
    """Put an unassigned conversation in its skill's queue (at the back, if it is not queued yet) and drain it.

    A conversation already waiting there keeps its place; its queue is drained again only if it is the head,
    the one place a drain stops at while another transaction (this one) holds the row.
    """
    skill = skill or conversation.skill
    if conversation.status != QUEUED or conversation.skill != skill:
        conversation.skill, conversation.status, conversation.queued_at = skill, QUEUED, utcnow()
        await session.flush()
        emit(session, "conversation.queued", conversation_id=conversation.id, skill=skill, agent_id=None)
    elif _DEFERRED_DRAINS not in session.info and await _head_id(session, skill) != conversation.id:
        return
    await drain(session, [skill])


def announce_queued(session: AsyncSession, conversation: Conversation) -> None:
    """Tell of a conversation that was opened queued for its skill, once a flush gave it its id; inside
    :func:`drains_deferred`, whose end drains its queue."""
    assert conversation.id is not None and conversation.status == QUEUED and _DEFERRED_DRAINS in session.info
    emit(session, "conversation.queued", conversation_id=conversation.id, skill=conversation.skill, agent_id=None)
    session.info[_DEFERRED_DRAINS].add(conversation.skill)


async def read_agents(session: AsyncSession, conversations: Iterable[Conversation]) -> None:
    """Read, with one statement, the agents serving these conversations, into the session: read after the
    conversations' row locks, they are what :func:`keep_or_release` decides on for each (no lock on them)."""
    ids = sorted({c.agent_id for c in conversations if c.status == ASSIGNED and c.agent_id is not None})
    if ids:
        await session.exec(_AGENTS, params={"ids": ids})


async def assign(session: AsyncSession, conversation: Conversation, agent_id: int, *, reason: str) -> bool:
    """Give a conversation to a named agent (an entry point's or a person's choice), whatever their load.

    Returns ``False``, changing nothing, when there is no such agent (or it was removed).
    """
    agent = await session.get(Agent, agent_id)
    if agent is None or agent.deleted_at is not None:
        log.warning("conversation %s: agent %s does not exist; queueing it instead", conversation.id, agent_id)
        return False
    previous = conversation.agent_id if conversation.status == ASSIGNED else None
    freed = await _freed(session, conversation)
    if previous is not None and previous != agent_id:
        emit(session, "conversation.unassigned", conversation_id=conversation.id, agent_id=previous, reason=reason)
    # The conversation is locked already: never wait for the agent's row here (that would invert the lock
    # order). Without its lock the agent's place in the fairness order is simply not updated this time.
    locked = await lock_agent(session, agent_id, skip_locked=True)
    await _give(session, conversation, agent, reason=reason, stamp=locked is not None)
    await drain(session, freed if previous != agent_id else [])
    return True


async def _freed(session: AsyncSession, conversation: Conversation) -> list[str]:
    """The queues to drain once this (locked) conversation changes: its agent's skills, whose slot frees up,
    or its own queue, which a drain may have stopped at while the row was held here."""
    if conversation.status == ASSIGNED and conversation.agent_id is not None:
        return await skills_of(session, conversation.agent_id)
    return [conversation.skill] if conversation.status == QUEUED and conversation.skill else []


async def requeue(session: AsyncSession, conversation: Conversation, *, reason: str, front: bool) -> None:
    """Take a conversation from its agent and put it back in its skill's queue (without draining)."""
    previous = conversation.agent_id
    queued_at: datetime = (conversation.queued_at or conversation.opened_at) if front else utcnow()
    conversation.agent_id, conversation.status, conversation.queued_at = None, QUEUED, queued_at
    await session.flush()
    if previous is not None:
        emit(session, "conversation.unassigned", conversation_id=conversation.id, agent_id=previous, reason=reason)
    emit(session, "conversation.queued", conversation_id=conversation.id, skill=conversation.skill, agent_id=None)


async def transfer_to_skill(session: AsyncSession, conversation: Conversation, skill: str) -> None:
    """Hand a conversation to another skill: it joins the back of that queue; its agent's slot frees up."""
    freed = await _freed(session, conversation)
    conversation.skill = skill
    await requeue(session, conversation, reason="transfer", front=False)
    await drain(session, [skill, *freed])


async def close(session: AsyncSession, conversation: Conversation, *, reason: str) -> None:
    """Close a conversation and let its agent's slot go to the next in line."""
    freed = await _freed(session, conversation)
    conversation.status, conversation.closed_at = CLOSED, utcnow()
    await session.flush()
    emit(session, "conversation.closed", conversation_id=conversation.id, agent_id=conversation.agent_id,
         reason=reason)
    await drain(session, freed)


async def set_status(session: AsyncSession, agent: Agent, status: AgentStatus) -> None:
    """Change a locked agent's status: offline requeues their conversations (at the front) for colleagues,
    online drains their skills' queues; away keeps what they have and takes nothing new."""
    assert agent.id is not None
    agent.status = status
    await session.flush()
    requeued = await _serving_now(session, agent.id) if status == "offline" else []
    for conversation in requeued:
        await requeue(session, conversation, reason="agent_offline", front=True)
    if status == "online" or requeued:
        await drain(session, await skills_of(session, agent.id))


async def _serving_now(session: AsyncSession, agent_id: int) -> list[Conversation]:
    stmt = (select(Conversation).where(Conversation.agent_id == agent_id, Conversation.status == ASSIGNED)
            .order_by(Conversation.id).with_for_update().execution_options(populate_existing=True))
    return list((await session.exec(stmt)).scalars().all())


async def keep_or_release(session: AsyncSession, conversation: Conversation) -> None:
    """Before a consumer's new message joins an assigned conversation: keep its agent while they are online,
    otherwise put it back at the front of its skill's queue.

    The conversation must have been read under its row lock in this transaction (the inbound pipeline reads it
    so). An agent going offline at the same moment requeues their conversations under the same row locks after
    changing their status, so either it sees this conversation still assigned and requeues it, or this sees it
    requeued already. On SQLite the lock is the database's one writer.
    """
    if conversation.status != ASSIGNED or conversation.agent_id is None:
        return
    agent = await session.get(Agent, conversation.agent_id)
    if agent is None or not _serving(agent):
        reason = "agent_removed" if agent is None or agent.deleted_at else f"agent_{agent.status}"
        await requeue(session, conversation, reason=reason, front=True)


async def queued_skills(session: AsyncSession) -> list[str]:
    stmt = select(Conversation.skill).distinct().where(Conversation.status == QUEUED, Conversation.skill.is_not(None))
    return sorted(s for s in (await session.exec(stmt)).scalars().all() if s)


async def sweep(session: AsyncSession) -> int:
    """Drain every non-empty queue (the safety net for slots that opened while their agent was locked)."""
    return len(await drain(session, await queued_skills(session)))


async def close_idle(session: AsyncSession, before: datetime, *, limit: int = 500) -> int:
    """Close open conversations with no message since ``before``; how many were closed."""
    stmt = (select(Conversation).where(Conversation.status != CLOSED, Conversation.last_message_at < before)
            .order_by(Conversation.last_message_at).limit(limit)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True))
    idle = list((await session.exec(stmt)).scalars().all())
    freed: set[str] = set()
    for conversation in idle:
        freed.update(await _freed(session, conversation))
        conversation.status, conversation.closed_at = CLOSED, utcnow()
        emit(session, "conversation.closed", conversation_id=conversation.id, agent_id=conversation.agent_id,
             reason="idle")
    await session.flush()
    await drain(session, freed)
    return len(idle)
