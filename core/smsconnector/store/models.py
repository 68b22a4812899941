"""The tables of the host. Plugins that keep data of their own ship their own tables and migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Double, Index, LargeBinary, Text, UniqueConstraint, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from ..messages import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use smsconnector.messages.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def empty_list() -> list[Any]:
    """A new empty list: a plain function, because pydantic inspects a builtin factory's signature on every row."""
    return []


def empty_dict() -> dict[str, Any]:
    """A new empty dict (see :func:`empty_list`)."""
    return {}


def _when(**kwargs: Any) -> Any:
    """A timestamp column."""
    nullable = kwargs.pop("nullable", False)
    index = kwargs.pop("index", False)
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kwargs)


class Consumer(SQLModel, table=True):
    """A consumer's phone number, the first time we heard from or wrote to it."""

    __tablename__ = "consumers"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)
    created_at: datetime = _when(default_factory=utcnow)


class Agent(SQLModel, table=True):
    """A person who answers consumers."""

    __tablename__ = "agents"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    status: str = Field(default="offline", max_length=16)  # online | away | offline
    max_concurrent: int = Field(default=3, ge=0)
    #: SHA-256 of the agent's API token (the token itself is shown once, never stored)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    last_assigned_at: datetime | None = _when(default=None, nullable=True)
    created_at: datetime = _when(default_factory=utcnow)
    #: set when an administrator removes the agent; the row stays so that history keeps its author
    deleted_at: datetime | None = _when(default=None, nullable=True)


class Skill(SQLModel, table=True):
    """Something agents can serve; conversations wait in a skill's queue until an agent with it is free."""

    __tablename__ = "skills"

    name: str = Field(max_length=100, primary_key=True)
    description: str = Field(default="", max_length=500)
    created_at: datetime = _when(default_factory=utcnow)


class AgentSkill(SQLModel, table=True):
    """A skill an agent can serve."""

    __tablename__ = "agent_skills"

    agent_id: int = Field(foreign_key="agents.id", primary_key=True, ondelete="CASCADE")
    skill: str = Field(max_length=100, primary_key=True)


class Conversation(SQLModel, table=True):
    """A consumer and a brand number talking, from the first message until it is closed."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_open", "consumer_number", "brand_number", "status"),
        # the head of a skill's queue; conversations idle past the router's timeout
        Index("ix_conversations_queue", "skill", "status", "queued_at"),
        Index("ix_conversations_idle", "status", "last_message_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    consumer_number: str = Field(max_length=20)
    brand_number: str = Field(max_length=20)
    provider: str = Field(max_length=50)
    status: str = Field(default="queued", max_length=16)  # queued | assigned | automated | closed
    skill: str | None = Field(default=None, max_length=100, index=True)
    agent_id: int | None = Field(default=None, foreign_key="agents.id", index=True)
    entry_point: str | None = Field(default=None, max_length=50)
    context: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    opened_at: datetime = _when(default_factory=utcnow)
    queued_at: datetime | None = _when(default=None, nullable=True)
    assigned_at: datetime | None = _when(default=None, nullable=True)
    last_message_at: datetime = _when(default_factory=utcnow)
    closed_at: datetime | None = _when(default=None, nullable=True)

    @property
    def is_open(self) -> bool:
        return self.status != "closed"

    @classmethod
    def opening(cls, *, consumer_number: str, brand_number: str, provider: str, status: str, skill: str | None,
                entry_point: str | None, context: dict[str, Any], now: datetime) -> Conversation:
        """A new conversation, not yet stored, made as the ORM makes a row it loads: the constructor validates
        and instruments its fields one at a time, 20 times the cost (about 100 us, a third of what routing a
        message took on PostgreSQL), for values the host wrote itself. Store it with :mod:`.bulk`; the ORM
        never inserts it (it has no pending changes)."""
        conversation = sa_inspect(cls).class_manager.new_instance()
        conversation.__dict__.update(
            id=None, consumer_number=consumer_number, brand_number=brand_number, provider=provider, status=status,
            skill=skill, agent_id=None, entry_point=entry_point, context=context, opened_at=now,
            queued_at=now if status == "queued" else None, assigned_at=None, last_message_at=now, closed_at=None)
        return conversation


class Message(SQLModel, table=True):
    """One message in either direction, kept whole."""

    __tablename__ = "messages"
    # One row per provider message: a provider's retry of the same id is refused here, on every replica.
    __table_args__ = (
        UniqueConstraint("provider", "provider_message_id", name="uq_messages_provider_id"),
        # The compliance gate asks "has this consumer texted this number lately?" before every send.
        Index("ix_messages_from_to_created", "from_number", "to_number", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", index=True)
    direction: str = Field(max_length=8)  # inbound | outbound
    provider: str = Field(max_length=50)
    provider_message_id: str | None = Field(default=None, max_length=100)
    from_number: str = Field(max_length=20)
    to_number: str = Field(max_length=20)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    media: list[dict[str, Any]] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    message_class: str = Field(default="conversational", max_length=16)
    status: str = Field(max_length=16)
    error_code: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    num_segments: int | None = None
    incomplete: bool = False
    handled_by: str | None = Field(default=None, max_length=50)
    agent_id: int | None = Field(default=None, foreign_key="agents.id")
    notes: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    details: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class OutboxEntry(SQLModel, table=True):
    """An outbound message not yet accepted by its provider; the sender drains this table.

    Only the head of a recipient's queue (its row with the lowest id) is ever claimed, so one consumer's
    messages are sent one at a time, in the order they were queued, whichever process sends them.
    """

    __tablename__ = "outbox"
    # The head of each recipient's queue: "is there an earlier row for this number?"
    __table_args__ = (Index("ix_outbox_to_number_id", "to_number", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", unique=True)
    provider: str = Field(max_length=50)
    from_number: str = Field(max_length=20)
    #: the message's recipient (a copy of ``messages.to_number``)
    to_number: str = Field(max_length=20)
    due_at: datetime = _when(default_factory=utcnow, index=True)
    attempts: int = 0
    lease_until: datetime | None = _when(default=None, nullable=True)
    #: when a sender last cleared the message to go to its provider; set, a crash may have left it sent but
    #: unrecorded, so the next sender asks the provider first (``smsconnector_find_sent``)
    attempted_at: datetime | None = _when(default=None, nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: when the message was queued, moved to the end of a send check's deferral: retries stop
    #: ``[sender] retry_for_seconds`` after it
    created_at: datetime = _when(default_factory=utcnow)


class SendRate(SQLModel, table=True):
    """The next free sending slot of a throttled sender number, shared by every process that sends from it."""

    __tablename__ = "send_rates"

    number: str = Field(max_length=20, primary_key=True)
    #: seconds since the Unix epoch (a number, so that both databases do the slot arithmetic in one statement)
    next_free_at: float = Field(sa_column=Column(Double, nullable=False))


class SegmentGroup(SQLModel, table=True):
    """A concatenated SMS being reassembled; locked while a part is added so it completes exactly once.

    A completed group is kept (with its parts' ids) so that a provider retrying a part days later is still
    recognised as a duplicate; only one *open* group may exist per key, since handsets reuse references.
    """

    __tablename__ = "segment_groups"
    __table_args__ = (
        Index("uq_segment_groups_open", "provider", "from_number", "to_number", "reference", unique=True,
              sqlite_where=text("completed_at IS NULL"), postgresql_where=text("completed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=50)
    from_number: str = Field(max_length=20)
    to_number: str = Field(max_length=20)
    reference: int
    total: int
    first_received_at: datetime = _when(default_factory=utcnow, index=True)
    completed_at: datetime | None = _when(default=None, nullable=True)


class SegmentPart(SQLModel, table=True):
    """One received part of a concatenated SMS, kept until its message is complete or times out."""

    __tablename__ = "segment_parts"
    __table_args__ = (UniqueConstraint("provider", "provider_message_id", name="uq_segment_parts_provider_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="segment_groups.id", index=True, ondelete="CASCADE")
    provider: str = Field(max_length=50)
    provider_message_id: str = Field(max_length=100)
    sequence: int
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    encoding: str | None = Field(default=None, max_length=20)
    received_at: datetime = _when(default_factory=utcnow)


class DeliveryPart(SQLModel, table=True):
    """The delivery status of one part of a multi-part outbound message, for providers that report per part.

    A provider that gives each part its own id (``SendResult.part_ids``) has a row per part from the moment it
    accepted the message, with that id: a report on the part finds its message by it, on every replica.
    """

    __tablename__ = "delivery_parts"
    __table_args__ = (UniqueConstraint("provider", "provider_message_id", name="uq_delivery_parts_provider_id"),)

    message_id: int = Field(foreign_key="messages.id", primary_key=True, ondelete="CASCADE")
    sequence: int = Field(primary_key=True)
    total: int
    status: str = Field(max_length=16)
    error_code: str | None = Field(default=None, max_length=32)
    #: the part's own provider id, when the provider gave it one
    provider: str | None = Field(default=None, max_length=50)
    provider_message_id: str | None = Field(default=None, max_length=100)
    updated_at: datetime = _when(default_factory=utcnow)


class EventRecord(SQLModel, table=True):
    """An event agent clients are told about, kept for a while so a reconnecting client can catch up.

    Written in the transaction that made the change; the id orders them and is the SSE event id.
    """

    __tablename__ = "events"
    # AUTOINCREMENT on SQLite too: ids are never reused after pruning, or a client's Last-Event-ID would lie.
    __table_args__ = (Index("ix_events_agent", "agent_id", "id"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=50)
    #: the agent the event concerns; ``None`` for events only administrators see
    agent_id: int | None = None
    conversation_id: int | None = None
    data: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _when(default_factory=utcnow, index=True)


class HeldStatus(SQLModel, table=True):
    """A provider's status report that arrived before the send it reports on was recorded.

    A provider may call back within milliseconds of accepting a message, before the sender has stored the
    provider's id; the report waits here and is applied as soon as the id is known.
    """

    __tablename__ = "held_statuses"
    __table_args__ = (Index("ix_held_statuses_provider_id", "provider", "provider_message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=50)
    provider_message_id: str = Field(max_length=100)
    status: str = Field(max_length=16)
    error_code: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sequence: int | None = None
    total: int | None = None
    received_at: datetime = _when(default_factory=utcnow, index=True)


class InboxEntry(SQLModel, table=True):
    """A provider's event (a consumer message, a part of one, or a status report), kept from the moment its
    webhook is answered until it has been routed.

    ``key`` is unique per provider, so a provider's retry is recognised at the door. Once routed, the
    payload is cleared (the message itself lives in ``messages``) and the row stays for
    ``[inbound] retention_hours`` to keep recognising retries.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("provider", "key", name="uq_inbox_provider_key"),
        Index("ix_inbox_pending", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
        # an entry waits for the earlier entries of its lane: found through this while any is pending
        Index("ix_inbox_pending_lane", "lane", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=50)
    key: str = Field(max_length=200)
    kind: str = Field(max_length=16)  #: ``message`` or ``status``
    #: what must be routed in arrival order: a consumer's messages (``message:<number>``), one message's status
    #: reports (``status:<provider message id>``); a plain column, so no pass reads the payload to find it
    lane: str | None = Field(default=None, max_length=250)
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    received_at: datetime = _when(default_factory=utcnow)
    processed_at: datetime | None = _when(default=None, nullable=True, index=True)
    attempts: int = 0
    #: why routing it failed (an exception's type and message, never the payload)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: not before this time is it tried again after a failure
    retry_at: datetime | None = _when(default=None, nullable=True)


class IdempotencyKey(SQLModel, table=True):
    """An API request made with an ``Idempotency-Key`` header, and what it was answered, so that a retry of it
    gets the same answer instead of doing the work again.

    Stored in the transaction that does the request's work: the key and what the request wrote are committed
    together or not at all. A key belongs to one caller and one endpoint; the unique constraint lets exactly
    one of two requests with the same key do the work, on every replica. Kept ``[api]
    idempotency_retention_hours``.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("caller", "endpoint", "key", name="uq_idempotency_keys_caller_endpoint_key"),)

    id: int | None = Field(default=None, primary_key=True)
    #: who asked: ``agent:<id>``, ``admin``, or a plugin's name for its own token
    caller: str = Field(max_length=100)
    #: the method and path template, e.g. ``POST /api/conversations/{conversation_id}/messages``
    endpoint: str = Field(max_length=200)
    key: str = Field(max_length=255)
    #: SHA-256 (hex) of the method, path and body: the same key with another request is refused
    fingerprint: str = Field(max_length=64)
    #: the answer's status and JSON body; set before the claiming transaction commits, so another transaction
    #: never sees them empty (an empty one would mean "still in progress")
    status: int | None = None
    response: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _when(default_factory=utcnow, index=True)


class AgentSession(SQLModel, table=True):
    """A short-lived credential of the browser pages: a session an agent or administrator signed in to, or a
    one-time sign-in code (``smsconnector demo`` prints one) that is exchanged for a session once.

    Only the token's SHA-256 is kept. A session expires; signing out deletes its row, so it stops working on
    every replica at once. ``agent_id`` is empty for an administrator's session, which ends with the admin token
    it stems from.
    """

    __tablename__ = "agent_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    #: ``session`` or ``code``
    kind: str = Field(max_length=8)
    #: ``agent`` or ``admin``
    role: str = Field(max_length=8)
    agent_id: int | None = Field(default=None, foreign_key="agents.id", ondelete="CASCADE")
    #: an administrator's: SHA-256 of the admin token it stems from, so that removing the token ends it
    admin_token_hash: str | None = Field(default=None, max_length=64)
    expires_at: datetime = _when(index=True)
    created_at: datetime = _when(default_factory=utcnow)
