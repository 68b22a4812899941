"""Skills: what agents serve and what conversations queue for. Administrators manage them; everyone reads them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import assignment
from ..errors import Conflict, NotFound
from ..messages import utcnow
from ..store import bulk
from ..store.models import Agent, AgentSkill, Conversation, Skill
from .endpoints import Call, endpoint
from .schemas import SkillIn, SkillList, SkillOut, SkillPatch

BOTH = ("admin", "agent")


async def ensure_skills(session: AsyncSession, names: Iterable[str]) -> None:
    """Create the skills the configuration names (``numbers[].skill``), once, whichever replica starts first."""
    now = utcnow()
    rows = [dict(name=name, description="", created_at=now) for name in sorted(set(names))]
    await bulk.insert_new(await session.connection(), Skill.__table__, rows, conflict=("name",))


async def _skills_out(session: AsyncSession, skills: Sequence[Skill]) -> list[SkillOut]:
    names = [s.name for s in skills]
    counts = (select(AgentSkill.skill, func.count(), func.count().filter(Agent.status == "online"))
              .join(Agent, Agent.id == AgentSkill.agent_id)
              .where(AgentSkill.skill.in_(names), Agent.deleted_at.is_(None)).group_by(AgentSkill.skill))
    agents = {skill: (total, online) for skill, total, online in (await session.exec(counts)).all()}
    queued = dict((await session.exec(
        select(Conversation.skill, func.count())
        .where(Conversation.skill.in_(names), Conversation.status == assignment.QUEUED).group_by(Conversation.skill)
    )).all())
    return [SkillOut(name=s.name, description=s.description, agents=agents.get(s.name, (0, 0))[0],
                     online_agents=agents.get(s.name, (0, 0))[1], queued=queued.get(s.name, 0),
                     created_at=s.created_at) for s in skills]


async def _skill(session: AsyncSession, call: Call) -> Skill:
    skill = await session.get(Skill, call.param("name"))
    if skill is None:
        raise NotFound(f"no skill {call.param('name')!r}")
    return skill


@endpoint("GET", "/api/skills", roles=BOTH, summary="List skills with their agents and queues", tag="skills",
          response=SkillList)
async def list_skills(call: Call) -> SkillList:
    async with call.app.store.session() as session:
        skills = (await session.exec(select(Skill).order_by(Skill.name))).scalars().all()
        return SkillList(items=await _skills_out(session, skills))


@endpoint("POST", "/api/skills", roles=("admin",), summary="Create a skill", tag="skills", body=SkillIn,
          response=SkillOut, status=201, errors=(409,))
async def create_skill(call: Call) -> SkillOut:
    body: SkillIn = call.body
    async with call.app.store.transaction() as session:
        if await session.get(Skill, body.name) is not None:
            raise Conflict(f"skill {body.name!r} exists")
        skill = Skill(name=body.name, description=body.description)
        session.add(skill)
        await session.flush()
        return (await _skills_out(session, [skill]))[0]


@endpoint("GET", "/api/skills/{name}", roles=BOTH, summary="Read a skill", tag="skills", response=SkillOut)
async def read_skill(call: Call) -> SkillOut:
    async with call.app.store.session() as session:
        return (await _skills_out(session, [await _skill(session, call)]))[0]


@endpoint("PATCH", "/api/skills/{name}", roles=("admin",), summary="Change a skill's description", tag="skills",
          body=SkillPatch, response=SkillOut)
async def update_skill(call: Call) -> SkillOut:
    body: SkillPatch = call.body
    async with call.app.store.transaction() as session:
        skill = await _skill(session, call)
        skill.description = body.description
        await session.flush()
        return (await _skills_out(session, [skill]))[0]


@endpoint("DELETE", "/api/skills/{name}", roles=("admin",),
          summary="Delete a skill no open conversation uses; agents lose it", tag="skills", status=204,
          errors=(409,))
async def delete_skill(call: Call) -> None:
    async with call.app.store.transaction() as session:
        skill = await _skill(session, call)
        in_use = (await session.exec(select(func.count()).where(
            Conversation.skill == skill.name, Conversation.status != assignment.CLOSED))).scalar_one()
        if in_use:
            raise Conflict(f"{in_use} open conversation(s) use skill {skill.name!r}; transfer or close them first")
        await session.exec(delete(AgentSkill).where(AgentSkill.skill == skill.name))  # type: ignore[call-overload]
        await session.delete(skill)
