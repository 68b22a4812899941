"""Agents: administrators manage them; an agent reads itself and sets its own status."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import assignment
from ..auth import new_token, token_digest
from ..errors import Forbidden, NotFound
from ..messages import utcnow
from ..store.models import Agent, AgentSession, AgentSkill, Skill
from .endpoints import Call, InvalidRequest, endpoint
from .schemas import AgentCreated, AgentIn, AgentList, AgentOut, AgentPatch, AgentToken, Me, StatusIn
from .views import agent_out, agents_out

BOTH = ("admin", "agent")


async def _agent(session: AsyncSession, call: Call, *, lock: bool = False) -> Agent:
    """The agent the path names: any for an administrator, only themselves for an agent."""
    agent_id = call.param("agent_id")
    if not call.admin and call.principal.agent_id != agent_id:
        raise Forbidden("an agent may only act on themselves")
    agent = await assignment.lock_agent(session, agent_id) if lock else await session.get(Agent, agent_id)
    if agent is None or agent.deleted_at is not None:
        raise NotFound(f"no agent {agent_id}")
    return agent


async def _set_skills(session: AsyncSession, agent_id: int, names: Iterable[str]) -> None:
    wanted = sorted(set(names))
    known = set((await session.exec(select(Skill.name).where(Skill.name.in_(wanted)))).scalars().all())
    if unknown := [n for n in wanted if n not in known]:
        raise InvalidRequest(f"unknown skill(s): {', '.join(unknown)}; create them first")
    await session.exec(delete(AgentSkill).where(AgentSkill.agent_id == agent_id))  # type: ignore[call-overload]
    session.add_all(AgentSkill(agent_id=agent_id, skill=name) for name in wanted)
    await session.flush()


@endpoint("GET", "/api/me", roles=BOTH, summary="Who the token belongs to", tag="agents", response=Me)
async def me(call: Call) -> Me:
    if call.admin:
        return Me(role="admin", agent=None)
    async with call.app.store.session() as session:
        agent = await session.get(Agent, call.principal.agent_id)
        assert agent is not None
        return Me(role="agent", agent=await agent_out(session, agent))


@endpoint("GET", "/api/agents", roles=("admin",), summary="List agents", tag="agents", response=AgentList)
async def list_agents(call: Call) -> AgentList:
    async with call.app.store.session() as session:
        agents = (await session.exec(select(Agent).where(Agent.deleted_at.is_(None)).order_by(Agent.id))).scalars()
        return AgentList(items=await agents_out(session, agents.all()))


@endpoint("POST", "/api/agents", roles=("admin",), summary="Create an agent; its token is returned this once",
          tag="agents", body=AgentIn, response=AgentCreated, status=201)
async def create_agent(call: Call) -> AgentCreated:
    body: AgentIn = call.body
    token = new_token()
    async with call.app.store.transaction() as session:
        agent = Agent(name=body.name, max_concurrent=body.max_concurrent, status="offline",
                      token_hash=token_digest(token))
        session.add(agent)
        await session.flush()
        assert agent.id is not None
        await _set_skills(session, agent.id, body.skills)
        await assignment.set_status(session, agent, body.status)
        shown = await agent_out(session, agent)
    return AgentCreated(**shown.model_dump(), token=token)


@endpoint("GET", "/api/agents/{agent_id:int}", roles=BOTH, summary="Read an agent (an agent: only themselves)",
          tag="agents", response=AgentOut)
async def read_agent(call: Call) -> AgentOut:
    async with call.app.store.session() as session:
        return await agent_out(session, await _agent(session, call))


@endpoint("PATCH", "/api/agents/{agent_id:int}", roles=("admin",), summary="Change an agent's name, capacity or skills",
          tag="agents", body=AgentPatch, response=AgentOut)
async def update_agent(call: Call) -> AgentOut:
    async with call.app.store.transaction() as session:
        agent = await _agent(session, call, lock=True)
        body: AgentPatch = call.body
        assert agent.id is not None
        if body.name is not None:
            agent.name = body.name
        if body.max_concurrent is not None:
            agent.max_concurrent = body.max_concurrent
        if body.skills is not None:
            await _set_skills(session, agent.id, body.skills)
        await session.flush()
        if agent.status == "online":  # more capacity or a new skill may take from a queue now
            await assignment.drain(session, await assignment.skills_of(session, agent.id))
        return await agent_out(session, agent)


@endpoint("DELETE", "/api/agents/{agent_id:int}", roles=("admin",),
          summary="Remove an agent: their conversations go back to the front of their queues", tag="agents",
          status=204)
async def delete_agent(call: Call) -> None:
    async with call.app.store.transaction() as session:
        agent = await _agent(session, call, lock=True)
        agent.deleted_at, agent.token_hash = utcnow(), None
        await assignment.set_status(session, agent, "offline")
        await session.exec(delete(AgentSkill).where(AgentSkill.agent_id == agent.id))  # type: ignore[call-overload]


@endpoint("POST", "/api/agents/{agent_id:int}/token", roles=BOTH,
          summary="Issue a new token; the old one, and the page sessions opened with it, stop working (an agent: only "
                  "their own)", tag="agents",
          response=AgentToken)
async def rotate_token(call: Call) -> AgentToken:
    token = new_token()
    async with call.app.store.transaction() as session:
        agent = await _agent(session, call, lock=True)
        agent.token_hash = token_digest(token)
        assert agent.id is not None
        # A token is rotated because it may have leaked: what was opened with it ends with it.
        await session.exec(delete(AgentSession).where(AgentSession.agent_id == agent.id))  # type: ignore[call-overload]
        return AgentToken(agent_id=agent.id, token=token)


@endpoint("PUT", "/api/agents/{agent_id:int}/status", roles=BOTH,
          summary="Set an agent's status (an agent: only their own); offline requeues their conversations",
          tag="agents", body=StatusIn, response=AgentOut)
async def set_status(call: Call) -> AgentOut:
    async with call.app.store.transaction() as session:
        agent = await _agent(session, call, lock=True)
        body: StatusIn = call.body
        await assignment.set_status(session, agent, body.status)
        return await agent_out(session, agent)
