"""Writing consent facts and reading a consumer's current state from them.

The ledger is the only source of truth: the state (opted out or not, which consents hold) is folded from a
consumer's events each time it is needed, so it can never drift from the evidence.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from smsconnector.store import bulk

from .models import CONFIRMATION, CONSENT, OPT_IN, OPT_OUT, REVOKE, CappedSend, LedgerEvent

#: Consent classes, weakest first: a consent covers its class and those below it.
CLASS_RANK = {"conversational": 0, "informational": 1, "marketing": 2}


def digest(text: str) -> str:
    """The SHA-256 kept beside a disclosure text, to match it against a versioned copy."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


@dataclass(slots=True)
class ConsentState:
    """A consumer's standing with one scope, folded from the ledger."""

    events: list[LedgerEvent] = field(default_factory=list)
    opt_out: LedgerEvent | None = None  #: the opt-out in force, when opted out
    last_opt_out_at: datetime | None = None
    #: id of the last opt-in: events after it belong to the opt-out in force
    opted_in_after: int = 0
    consents: dict[str, LedgerEvent] = field(default_factory=dict)
    confirmations: dict[int, LedgerEvent] = field(default_factory=dict)

    @property
    def opted_out(self) -> bool:
        return self.opt_out is not None

    def has_consent(self, minimum: str) -> bool:
        """A consent of class ``minimum`` or above holds."""
        return any(CLASS_RANK[c] >= CLASS_RANK[minimum] for c in self.consents)

    def pending_confirmation(self, text: str, brand_number: str) -> LedgerEvent | None:
        """The latest opt-out in force whose confirmation is ``text`` from ``brand_number``."""
        for event in reversed(self.events):
            if event.id is not None and event.id <= self.opted_in_after:
                return None
            if event.action == OPT_OUT and event.confirmation_text == text and event.brand_number == brand_number:
                return event
        return None


def fold(events: Sequence[LedgerEvent], *, opt_in_restores_consent: bool) -> ConsentState:
    """Replay events in order into the state they leave."""
    state = ConsentState(events=list(events))
    suspended: dict[str, LedgerEvent] = {}
    for event in events:
        if event.action == OPT_OUT:
            if state.opt_out is None:
                suspended = dict(state.consents)
                state.consents.clear()  # an opt-out revokes every consent given before it
            state.opt_out = event
            state.last_opt_out_at = event.occurred_at
        elif event.action == OPT_IN:
            if state.opt_out is not None and opt_in_restores_consent:
                state.consents = {**suspended, **state.consents}
            state.opt_out = None
            state.opted_in_after = event.id or 0
        elif event.action == CONSENT and event.consent_class in CLASS_RANK:
            state.consents[event.consent_class] = event
        elif event.action == REVOKE and event.consent_class in CLASS_RANK:
            rank = CLASS_RANK[event.consent_class]
            state.consents = {c: e for c, e in state.consents.items() if CLASS_RANK[c] < rank}
        elif event.action == CONFIRMATION and event.confirms_event_id is not None:
            state.confirmations[event.confirms_event_id] = event
    return state


#: built once: every inbound message reads its consumer's events
_EVENTS = (select(LedgerEvent).where(LedgerEvent.consumer_number == bindparam("consumer"),
                                     LedgerEvent.scope == bindparam("scope")).order_by(LedgerEvent.id))


_PAIR = ("consumer_number", "scope")


@functools.cache
def _events_of_many(dialect: str) -> Any:
    return select(LedgerEvent).where(bulk.among(LedgerEvent.__table__, _PAIR, dialect)).order_by(LedgerEvent.id)


#: where :func:`read_ahead` keeps the events it read, in ``session.info``: (consumer, scope) -> events, oldest first
_READ_AHEAD = "compliance.ledger_read_ahead"


async def state(session: AsyncSession, consumer: str, scope: str, *, opt_in_restores_consent: bool) -> ConsentState:
    """The consumer's current standing with ``scope`` (from what :func:`read_ahead` read in this transaction,
    when it read this consumer's events)."""
    rows = session.info.get(_READ_AHEAD, {}).get((consumer, scope))
    if rows is None:
        rows = (await session.exec(_EVENTS, params={"consumer": consumer, "scope": scope})).scalars().all()
    return fold(rows, opt_in_restores_consent=opt_in_restores_consent)


async def read_ahead(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> None:
    """Read the events of many (consumer, scope) pairs with one statement, for :func:`state` to use for the rest
    of the transaction; every write of this module forgets what it changes, so the next read sees it."""
    wanted = sorted(set(pairs))
    if not wanted:
        return
    read: dict[tuple[str, str], list[LedgerEvent]] = session.info.setdefault(_READ_AHEAD, {})
    for pair in wanted:
        read[pair] = []
    connection = await session.connection()
    rows = [dict(zip(_PAIR, pair, strict=True)) for pair in wanted]
    params = bulk.among_params(connection, LedgerEvent.__table__, rows)
    for event in (await session.exec(_events_of_many(connection.dialect.name), params=params)).scalars():
        read[(event.consumer_number, event.scope)].append(event)


def _forget(session: AsyncSession, consumer: str, scope: str) -> None:
    session.info.get(_READ_AHEAD, {}).pop((consumer, scope), None)


async def record(session: AsyncSession, **fields: Any) -> LedgerEvent:
    """Append one event; the disclosure's hash is kept beside its text."""
    if fields.get("disclosure_text") and not fields.get("disclosure_hash"):
        fields["disclosure_hash"] = digest(fields["disclosure_text"])
    event = LedgerEvent(**fields)
    session.add(event)
    await session.flush()
    _forget(session, event.consumer_number, event.scope)
    return event


async def claim_confirmation(session: AsyncSession, opt_out: LedgerEvent, message_id: int, now: datetime) -> bool:
    """Record that ``message_id`` is the one confirmation of ``opt_out``; false when another already is.

    The unique ``confirms_event_id`` decides between senders racing on different replicas.
    """
    stmt = _insert(session)(LedgerEvent).values(
        occurred_at=now, consumer_number=opt_out.consumer_number, scope=opt_out.scope,
        brand_number=opt_out.brand_number, action=CONFIRMATION, method="sms", message_id=message_id,
        confirms_event_id=opt_out.id, recorded_by="compliance",
    ).on_conflict_do_nothing(index_elements=["confirms_event_id"]).returning(LedgerEvent.id)
    _forget(session, opt_out.consumer_number, opt_out.scope)
    return (await session.exec(stmt)).scalar_one_or_none() is not None


async def confirmation_of(session: AsyncSession, opt_out_id: int) -> LedgerEvent | None:
    return (await session.exec(
        select(LedgerEvent).where(LedgerEvent.confirms_event_id == opt_out_id))).scalars().first()


async def recent_sends(session: AsyncSession, consumer: str, scope: str, classes: Sequence[str],
                       since: datetime, *, excluding: int) -> list[CappedSend]:
    """Capped sends to ``consumer`` from ``scope`` after ``since``, oldest first."""
    return list((await session.exec(
        select(CappedSend).where(CappedSend.consumer_number == consumer, CappedSend.scope == scope,
                                 CappedSend.message_class.in_(classes), CappedSend.sent_at > since,
                                 CappedSend.message_id != excluding)
        .order_by(CappedSend.sent_at)
    )).scalars().all())


async def count_send(session: AsyncSession, **values: Any) -> None:
    """Count a capped send once, however often its message is retried."""
    await session.exec(_insert(session)(CappedSend).values(**values)
                       .on_conflict_do_nothing(index_elements=["message_id"]))
