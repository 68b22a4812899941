"""The JSON the API takes and gives; the OpenAPI document is generated from these models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..assignment import AgentStatus
from ..messages import AGENT_TEXT_LIMIT, CONSUMER_PIECE_LIMIT
from .endpoints import MAX_ID

ConversationStatus = Literal["queued", "assigned", "automated", "closed"]
SkillName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Error(BaseModel):
    """Every refusal: a machine-readable code and a sentence for people."""

    error: str
    detail: str


# -- agents ------------------------------------------------------------------------------------------------


class AgentIn(_In):
    name: str = Field(min_length=1, max_length=200)
    max_concurrent: int = Field(3, ge=0, le=1000, description="conversations the agent serves at once")
    skills: list[SkillName] = Field(default_factory=list, max_length=50, description="names of existing skills")
    status: AgentStatus = "offline"


class AgentPatch(_In):
    name: str | None = Field(None, min_length=1, max_length=200)
    max_concurrent: int | None = Field(None, ge=0, le=1000)
    skills: list[SkillName] | None = Field(None, max_length=50, description="replaces the agent's skills")


class StatusIn(_In):
    status: AgentStatus


class AgentOut(BaseModel):
    id: int
    name: str
    status: AgentStatus
    max_concurrent: int
    skills: list[str]
    open_conversations: int = Field(description="conversations assigned to the agent now")
    last_assigned_at: datetime | None
    created_at: datetime


class AgentCreated(AgentOut):
    token: str = Field(description="the agent's bearer token; shown this once, never again")


class AgentToken(BaseModel):
    agent_id: int
    token: str = Field(description="the new bearer token; the previous one no longer works")


class AgentList(BaseModel):
    items: list[AgentOut]


class Me(BaseModel):
    role: Literal["admin", "agent"]
    agent: AgentOut | None


# -- skills ------------------------------------------------------------------------------------------------


class SkillIn(_In):
    name: SkillName
    description: str = Field("", max_length=500)


class SkillPatch(_In):
    description: str = Field(max_length=500)


class SkillOut(BaseModel):
    name: str
    description: str
    agents: int = Field(description="agents with this skill")
    online_agents: int
    queued: int = Field(description="conversations waiting in this skill's queue")
    created_at: datetime


class SkillList(BaseModel):
    items: list[SkillOut]


# -- conversations -----------------------------------------------------------------------------------------


class ConversationQuery(BaseModel):
    status: ConversationStatus | None = None
    skill: str | None = Field(None, max_length=100)
    agent_id: Id | None = Field(None, description="an agent may only name themselves")
    before: Id | None = Field(None, description="only conversations with a smaller id (the next page)")
    limit: int = Field(50, ge=1, le=200)


class Media(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    content_type: str | None = Field(None, max_length=100)


class MessageOut(BaseModel):
    """A message as the agent side shows it; a consumer text longer than the piece limit comes as several."""

    id: int
    direction: Literal["inbound", "outbound"]
    text: str = Field(description=f"at most {CONSUMER_PIECE_LIMIT} characters; longer consumer texts are split")
    piece: int = Field(description="1-based position of this piece of the message")
    pieces: int = Field(description="how many pieces the message was split into (1 when it fits)")
    media: list[Media]
    status: str = Field(description="received, or an outbound message's delivery status: queued, deferred (held "
                                    "back by a send check), retrying (the provider failed for a reason that may "
                                    "pass; tried again until [sender] retry_for_seconds after it was queued), "
                                    "sending, sent, delivered, undelivered, failed or refused")
    error_code: str | None = Field(description="why it was refused, failed, deferred or is retrying: a send check's "
                                               "or the provider's (last) code")
    error_message: str | None
    next_attempt_at: datetime | None = Field(None, description="when a deferred or retrying message is tried next")
    agent_id: int | None = Field(description="who sent it, for outbound messages")
    handled_by: str | None
    notes: list[str]
    incomplete: bool
    created_at: datetime
    updated_at: datetime


class ConversationOut(BaseModel):
    id: int
    consumer_number: str
    brand_number: str
    provider: str
    status: ConversationStatus
    skill: str | None
    agent_id: int | None
    entry_point: str | None
    context: dict[str, Any]
    opened_at: datetime
    queued_at: datetime | None
    assigned_at: datetime | None
    last_message_at: datetime
    closed_at: datetime | None


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ConversationList(BaseModel):
    items: list[ConversationOut]


class ReplyIn(_In):
    text: str = Field(json_schema_extra={"maxLength": AGENT_TEXT_LIMIT},
                      description=f"at most {AGENT_TEXT_LIMIT} characters; longer is refused with 422")
    media: list[Media] = Field(default_factory=list, max_length=10)


class TransferIn(_In):
    """Exactly one of ``skill`` and ``agent_id``."""

    skill: SkillName | None = None
    agent_id: Id | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferIn:
        if (self.skill is None) == (self.agent_id is None):
            raise ValueError("give exactly one of 'skill' and 'agent_id'")
        return self


class ConversationIn(_In):
    """An agent starts a conversation, e.g. a follow-up after a phone call."""

    to: str = Field(min_length=1, max_length=32, description="the consumer's number")
    from_: str = Field(alias="from", min_length=1, max_length=32, description="a configured brand number")
    text: str = Field(json_schema_extra={"maxLength": AGENT_TEXT_LIMIT})
    entry_point: str | None = Field(None, max_length=50, description="e.g. follow_up")
    context: dict[str, Any] = Field(default_factory=dict, description="e.g. {\"call_reference\": \"...\"}")
    skill: SkillName | None = Field(None, description="where the consumer's reply goes while the agent is not online; "
                                                      "default: the brand number's skill if the agent has it, "
                                                      "else the agent's first skill")


# -- sessions and the pages --------------------------------------------------------------------------------


class SessionOut(BaseModel):
    token: str = Field(description="the session's bearer token: shown this once; DELETE /api/sessions/current "
                                   "ends it")
    role: Literal["admin", "agent"]
    agent_id: int | None
    expires_at: datetime


class SegmentsIn(_In):
    text: str = Field(max_length=5000, description="a draft; past the limit of a message, the answer says so")


class SegmentsOut(BaseModel):
    characters: int
    limit: int = Field(description="the most characters a message may have")
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    units: int = Field(description="septets (GSM-7) or UTF-16 code units (UCS-2)")
    non_gsm_characters: list[str] = Field(description="the distinct characters that force UCS-2")
    refusal: str | None = Field(description="why a reply with this text would be refused, if it would")


class NumberOut(BaseModel):
    number: str
    provider: str
    skill: str


class PluginOut(BaseModel):
    name: str
    distribution: str | None
    version: str | None
    enabled: bool
    hooks: list[str]


class Overview(BaseModel):
    queues: dict[str, int] = Field(description="conversations waiting, by skill")
    outbox: int = Field(description="outbound messages not yet accepted by their provider")
    inbox: int = Field(description="inbound events stored but not yet routed")
    numbers: list[NumberOut]
    plugins: list[PluginOut]
