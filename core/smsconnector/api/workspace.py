"""What the browser pages need beyond the resources: the host's segment analysis of a draft, and the
administrator's overview of queues, backlogs, numbers and plugins."""

from __future__ import annotations

from sqlalchemy import func, select

from ..messages import AGENT_TEXT_LIMIT
from ..segments import segment
from ..store.models import Conversation, OutboxEntry
from .endpoints import Call, endpoint
from .schemas import NumberOut, Overview, PluginOut, SegmentsIn, SegmentsOut

BOTH = ("admin", "agent")


@endpoint(
    "POST",
    "/api/segments",
    roles=BOTH,
    body=SegmentsIn,
    response=SegmentsOut,
    tag="messages",
    summary="How a draft would be sent: characters, encoding, segments and the characters that force UCS-2",
)
async def segments(call: Call) -> SegmentsOut:
    text: str = call.body.text
    result = segment(text)
    too_long = len(text) > AGENT_TEXT_LIMIT
    return SegmentsOut(
        characters=len(text),
        limit=AGENT_TEXT_LIMIT,
        encoding=result.encoding,
        segments=result.count,
        units=result.units,
        non_gsm_characters=list(result.non_gsm_characters),
        refusal=f"message is {len(text)} characters; the limit is {AGENT_TEXT_LIMIT} characters" if too_long else None,
    )


@endpoint(
    "GET",
    "/api/overview",
    roles=("admin",),
    response=Overview,
    tag="meta",
    summary="Queue depths by skill, the outbox and inbox backlogs, the brand numbers and the plugins",
)
async def overview(call: Call) -> Overview:
    app = call.app
    async with app.store.session() as session:
        queues = dict(
            (
                await session.exec(
                    select(Conversation.skill, func.count())
                    .where(Conversation.status == "queued")
                    .group_by(Conversation.skill)
                )
            ).all()
        )
        outbox = (await session.exec(select(func.count()).select_from(OutboxEntry))).scalar_one()
    return Overview(
        queues={str(skill): count for skill, count in queues.items()},
        outbox=outbox,
        inbox=await app.processor.pending(),
        numbers=[NumberOut(number=n.number, provider=n.provider, skill=n.skill) for n in app.config.numbers],
        plugins=[
            PluginOut(
                name=p.name, distribution=p.distribution, version=p.version, enabled=p.enabled, hooks=list(p.hooks)
            )
            for p in app.plugins()
        ],
    )
