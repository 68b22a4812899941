"""The sender: drains the outbox through the send checks and the providers, with retries and throttling.

Every process that works runs one. A sender claims only the head of each recipient's queue -- a due row with
no earlier row for the same number still in the outbox -- with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL). So two messages to one consumer are never in flight at once, in any process, and a consumer's
messages leave in the order they were queued; the next one becomes claimable when the one before it has left
the outbox (accepted, failed or refused). A message waiting behind a retrying one waits with it; one that a
send check deferred (quiet hours for a marketing message, say) holds up nobody: the agent's reply to the
consumer who just wrote goes now, and the deferred message at its time.
A row leaves the outbox only once the provider accepted the message or it failed for good.

A send that fails for a retryable reason is tried again, with jittered exponential backoff, for as long as
``[sender] retry_for_seconds`` lasts from when the message was queued (a provider's outage shorter than that loses
nothing); meanwhile the message is ``retrying``, with the last error and the next attempt's time. Once the budget is
spent it fails for good with the provider's last code. A permanent failure is never retried.

Sends in flight at the same moment share transactions: their send checks run in one, and the acceptances
of the sends that finished together are recorded in one, rather than two commits per message. A sender
claims no more rows than it has free send slots, and claims again as soon as sends are recorded, so a
claimed row never waits in the process for another. A throttled number's slot is reserved in the check
transaction too (:mod:`.throttle`), in the database, so the rate holds across processes.

The same transaction marks each message going out as attempted (``outbox.attempted_at``) before the provider
is called. A sender that finds that mark on a row it claims -- its previous holder was killed, or lost the
provider's answer, before recording it -- asks the provider first (``smsconnector_find_sent``): a message the
provider has is recorded, not sent again. For a provider that cannot look its sends up, such a message is sent
again once the lease ends: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Row, bindparam, delete, exists, insert, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from . import status
from .decisions import ConsentSignal, Verdict
from .errors import PermanentSendError, RetryableSendError, UnknownProvider
from .events import Event, emit
from .messages import DeliveryStatus, Media, OutboundMessage, SendResult, utcnow
from .segments import segment
from .store.batching import Batcher, in_transaction
from .store.models import DeliveryPart, Message, OutboxEntry
from .throttle import Throttle

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)
#: the share of the lease a send may wait for its number's slot: the rest covers the checks and the send itself
HORIZON_SHARE = 0.25


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential, capped, with jitter so retries spread out."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def decide(verdicts: list[Verdict]) -> Verdict:
    """Combine the send checks' answers: any refusal wins, then the latest deferral, else allow."""
    refusals = [v for v in verdicts if v.action == "refuse"]
    if refusals:
        return refusals[0]
    deferrals = [v for v in verdicts if v.action == "defer" and v.until is not None]
    if deferrals:
        return max(deferrals, key=lambda v: v.until)  # type: ignore[arg-type,return-value]
    bounds = [v.validity_seconds for v in verdicts if v.validity_seconds is not None]
    return Verdict("allow", validity_seconds=min(bounds) if bounds else None)


class Sender:
    """The outbox drain of one process."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.config.sender
        # Never hold a row past its lease: a slot further ahead than this is not waited for.
        self.throttle = Throttle(self._rate_for, horizon_seconds=self.settings.lease_seconds * HORIZON_SHARE)
        self._wake = asyncio.Event()
        #: the outbox rows this sender holds, each being worked by a task of its own
        self._in_flight: set[int] = set()
        # Sends in flight together share their check and record transactions (one commit each, not one a send).
        self._checks = Batcher(in_transaction(app.store, self._check), max_batch=self.settings.batch_size)
        self._acceptances = Batcher(in_transaction(app.store, self._record_accepted),
                                    max_batch=self.settings.batch_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._poll_seconds = self.settings.poll_interval_seconds

    def _rate_for(self, number: str) -> float:
        configured = self.app.config.number(number)
        if configured is not None and configured.rate_per_second is not None:
            return configured.rate_per_second
        return self.settings.default_rate_per_second

    def on_event(self, event: Event) -> None:
        """Wake the drain when this process queued a message."""
        if event.kind == "outbox.queued":
            self._wake.set()

    def wake(self) -> None:
        """Another process queued messages (PostgreSQL's NOTIFY): look for due rows now."""
        self._wake.set()

    def start(self, *, poll_seconds: float | None = None) -> None:
        """Drain in the background, looking for rows nobody told it about every ``poll_seconds`` (default:
        ``[sender] poll_interval_seconds``)."""
        self._poll_seconds = poll_seconds or self.settings.poll_interval_seconds
        self._loop_task = asyncio.create_task(self._run(), name="smsconnector-sender")

    async def stop(self) -> None:
        """Stop claiming, let the sends in flight finish (for up to half a lease) and close the batchers."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        # Let in-flight sends finish and record their result: cancelling one mid-send would leave a
        # message the provider accepted still in the outbox, to be looked up (or, where the provider cannot
        # tell, sent again) after the restart.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.lease_seconds / 2)
        await self._checks.close()
        await self._acceptances.close()

    async def _run(self) -> None:
        while True:
            # Cleared before claiming: a send that leaves its slot meanwhile wakes the next round at once.
            self._wake.clear()
            limit = self._claimable()
            try:
                claimed = await self.drain_once()
            except Exception:
                log.exception("sender: claiming from the outbox failed; trying again")
                claimed = 0
            if 0 < limit <= claimed and self._claimable() > 0:
                continue  # a whole batch was due: more may be, and slots are free
            # Woken by a queued message or by a send leaving its slot (the next message to its recipient may
            # now be the head of the queue); rows that other processes made claimable are found by polling.
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            except TimeoutError:
                pass

    def _claimable(self) -> int:
        """How many rows this sender may claim now: one per free send slot, at most a batch."""
        return min(self.settings.batch_size, self.settings.concurrency - len(self._in_flight))

    async def drain_once(self) -> int:
        """Claim the due heads of the recipients' queues, as many as there are free send slots, and start
        their sends; how many were claimed."""
        limit = self._claimable()
        if limit <= 0:
            return 0
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        async with self.app.store.transaction() as session:
            rows = [Claim(*r) for r in (await session.exec(
                _DUE_HEADS, params={"now": now, "limit": limit})).all() if r.id not in self._in_flight]
            if not rows:
                return 0
            await session.exec(_LEASE, params={"ids": [r.id for r in rows], "until": lease})
            messages = {m.id: m for m in (await session.exec(
                _CLAIMED_MESSAGES, params={"ids": [r.message_id for r in rows]})).all()}
        for row in rows:
            self._in_flight.add(row.id)
            task = asyncio.create_task(self._work(row, _outbound(row, messages[row.message_id])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(rows)

    async def _work(self, row: Claim, message: OutboundMessage) -> None:
        try:
            await self._deliver(row, message)
        except Exception:
            # It may have failed after the provider took the message: keep its mark, so it is looked up first.
            log.exception("sender: outbox row %s failed unexpectedly; it will be retried", row.id)
            await self._retry_later(row, "internal error", code="internal", maybe_accepted=True)
        finally:
            self._in_flight.discard(row.id)
            self._wake.set()

    async def _deliver(self, row: Claim, message: OutboundMessage) -> None:
        if row.attempted_at is not None and await self._found_sent(row, message):
            return
        clearance = await self._checks.submit((row, message))
        verdict = clearance.verdict
        if verdict.action != "allow":
            self._count(row, DeliveryStatus.REFUSED if verdict.action == "refuse" else DeliveryStatus.DEFERRED)
            return
        if clearance.handed_back:
            return  # its number has no free slot within the horizon; it is due again when there is one
        if verdict.validity_seconds is not None:
            message = replace(message, validity_seconds=verdict.validity_seconds)
        loop = asyncio.get_running_loop()
        if clearance.send_at > loop.time():
            await asyncio.sleep(clearance.send_at - loop.time())
        if loop.time() >= clearance.lease_ends:
            # Another sender may hold the row by now, and send it: leave it to whoever claims it next.
            log.warning("outbox: message %s not sent: its lease ran out before its turn came", message.id)
            return
        try:
            result = await self.app.hooks.send(row.provider, message)
        except RetryableSendError as exc:
            await self._retry_later(row, exc.reason, code=exc.code, retry_after=exc.retry_after,
                                    maybe_accepted=exc.maybe_accepted)
        except PermanentSendError as exc:
            async with self.app.store.transaction() as session:
                await self._finish(session, row, DeliveryStatus.FAILED, exc.code, exc.reason)
                if exc.opted_out:
                    await self.app.hooks.consent_signal(ConsentSignal(
                        consumer_number=message.to_number, brand_number=message.from_number, action="opt_out",
                        source=f"{row.provider}:{exc.code}", provider=row.provider, message_id=message.id,
                    ), session)
            self._count(row, DeliveryStatus.FAILED)
        except UnknownProvider as exc:
            async with self.app.store.transaction() as session:
                await self._finish(session, row, DeliveryStatus.FAILED, "unknown_provider", exc.reason)
            self._count(row, DeliveryStatus.FAILED)
        else:
            await self._acceptances.submit((row, result))
            self._count(row, DeliveryStatus.SENT)

    async def _found_sent(self, row: Claim, message: OutboundMessage) -> bool:
        """Whether a previous attempt at ``row`` reached the provider, which then has the message: if so, its
        acceptance is recorded now, and the message is not sent again.

        Asked of the provider (``smsconnector_find_sent``) because the row was marked as attempted and never
        recorded: its previous sender stopped, or lost its answer, after clearing it to go. A provider that
        cannot tell finds nothing, and the message is sent again.
        """
        assert row.attempted_at is not None
        try:
            found = await self.app.hooks.find_sent(row.provider, message, row.attempted_at)
        except RetryableSendError as exc:
            await self._retry_later(row, f"could not ask the provider whether it has the message: {exc.reason}",
                                    code=exc.code, retry_after=exc.retry_after, maybe_accepted=True)
            return True
        if found is None:
            log.info("outbox: message %s was attempted before; %s has no record of it, sending it again",
                     message.id, row.provider)
            return False
        if await self._recorded_elsewhere(row, found):
            log.warning("outbox: message %s: %s's record %s belongs to another message; sending it again",
                        message.id, row.provider, found.provider_message_id)
            return False
        log.info("outbox: message %s was accepted by %s before as %s; recorded, not sent again", message.id,
                 row.provider, found.provider_message_id)
        await self._acceptances.submit((row, found))
        self._count(row, DeliveryStatus.SENT)
        return True

    async def _recorded_elsewhere(self, row: Claim, found: SendResult) -> bool:
        """Whether the provider's id ``found`` already belongs to another stored message (a lookup that matched
        an earlier, identical message)."""
        async with self.app.store.session() as session:
            return (await session.exec(_OTHER_WITH_PROVIDER_ID, params={
                "provider": row.provider, "provider_id": found.provider_message_id, "message": row.message_id,
            })).first() is not None

    async def _check(self, session: AsyncSession, items: list[tuple[Claim, OutboundMessage]]) -> list[Clearance]:
        """The send checks' verdicts on ``items``, with refusals and deferrals recorded, and the sending slots
        of the messages allowed, all in the same transaction.

        The items go to distinct recipients (only the head of a recipient's queue is ever claimed), and are
        checked in recipient order, then given their numbers' slots in number order: checks that lock per
        consumer (the compliance caps, on PostgreSQL) and the slots' rows are then locked in the same order on
        every replica, so that two batches cannot deadlock.
        """
        clearances: dict[int, Clearance] = {}
        allowed: list[tuple[Claim, OutboundMessage, Verdict]] = []
        for row, message in sorted(items, key=lambda item: item[1].to_number):
            verdict = decide(await self.app.hooks.check_outbound(message, session))
            if verdict.action == "refuse":
                await self._finish(session, row, DeliveryStatus.REFUSED, verdict.code, verdict.reason)
            elif verdict.action == "defer":
                assert verdict.until is not None
                # Quiet hours are not a provider's outage: the retry budget starts when the deferral ends.
                await self._reschedule(session, row, verdict.until, status=DeliveryStatus.DEFERRED,
                                       code=verdict.code, note=verdict.reason, count_attempt=False,
                                       budget_from=verdict.until)
            else:
                allowed.append((row, message, verdict))
                continue
            clearances[row.id] = Clearance(verdict)
        for row, message, verdict in sorted(allowed, key=lambda item: item[1].from_number):
            clearances[row.id] = await self._pace(session, row, message, verdict)
        going = [row.id for row, _ in items if clearances[row.id].sends]
        if going:
            # Marked before the provider call, in this commit rather than one of its own: after a crash, the
            # next sender asks the provider about these before sending them again. Their leases start again
            # too, so the wait for a slot and the send have the whole of one.
            now, lease_ends = utcnow(), asyncio.get_running_loop().time() + self.settings.lease_seconds
            await session.exec(_MARK_ATTEMPTED, params={
                "ids": going, "now": now, "until": now + timedelta(seconds=self.settings.lease_seconds)})
            for row_id in going:
                clearances[row_id] = replace(clearances[row_id], lease_ends=lease_ends)
        return [clearances[row.id] for row, _ in items]

    async def _pace(self, session: AsyncSession, row: Claim, message: OutboundMessage, verdict: Verdict) -> Clearance:
        """Reserve the slot of ``message``'s number, if it is throttled; hand the row back, due when the number
        is next free, when that is beyond the horizon (no attempt is counted)."""
        if not self.throttle.paces(message.from_number):
            return Clearance(verdict)
        slot = await self.throttle.reserve(session, message.from_number, _segments(message))
        if not slot.reserved:
            await self._reschedule(session, row, utcnow() + timedelta(seconds=slot.wait), count_attempt=False)
            return Clearance(verdict, handed_back=True)
        return Clearance(verdict, send_at=asyncio.get_running_loop().time() + slot.wait)

    async def _record_accepted(self, session: AsyncSession, sends: list[tuple[Claim, SendResult]]) -> list[None]:
        """Record the provider's acceptance of ``sends``: each message's provider id and status, its row gone.

        Plain statements, one each for all the sends (the ORM's load-modify-flush cost more than the sending).
        """
        found = {row.id: row for row in (await session.exec(
            _ACCEPTED_MESSAGES, params={"ids": [row.message_id for row, _ in sends]})).all()}
        now = utcnow()
        changes, parts = [], []
        for row, result in sends:
            message = found[row.message_id]
            # Never move a message back: a status report may have overtaken this acceptance.
            kept = result.status if DeliveryStatus(message.status).rank <= result.status.rank else message.status
            status_value = DeliveryStatus(kept).value
            # The error a retry or a deferral noted is over once the provider took the message; a report's is not.
            waited = DeliveryStatus(message.status).rank == 0
            changes.append({"message": message.id, "provider_id": result.provider_message_id,
                            "new_status": status_value, "segments": result.segments or len(result.part_ids) or None,
                            "now": now,
                            "error_code": None if waited else message.error_code,
                            "error_message": None if waited else message.error_message})
            # A provider that ids each part reports on each part: the parts' rows let a report find its message.
            parts.extend({"message_id": message.id, "sequence": n, "total": len(result.part_ids),
                          "status": status_value, "provider": row.provider, "provider_message_id": part_id,
                          "updated_at": now} for n, part_id in enumerate(result.part_ids, 1))
            emit(session, "message.status", message_id=message.id, conversation_id=message.conversation_id,
                 agent_id=message.agent_id, status=status_value, error_code=None)
        await session.exec(_RECORD_ACCEPTANCE, params=changes)
        if parts:
            await session.exec(_RECORD_PARTS, params=parts)
        await session.exec(_LEAVE_OUTBOX, params={"ids": [row.id for row, _ in sends]})
        for provider in {row.provider for row, _ in sends}:
            await status.release(self.app, session, provider,
                                 [i for row, result in sends if row.provider == provider for i in result.ids])
        return [None] * len(sends)

    def _count(self, row: Claim, result: str) -> None:
        """Count one row's outcome (a delivery status, or "retry") once the transaction recording it committed."""
        self.app.metrics.sends.labels(row.provider, result).inc()

    async def _finish(self, session: AsyncSession, row: Claim, status: DeliveryStatus,
                      code: str | None, reason: str) -> None:
        message = await session.get(Message, row.message_id)
        assert message is not None
        message.status, message.error_code, message.error_message = status.value, code, reason
        message.updated_at = utcnow()
        await session.exec(delete(OutboxEntry).where(OutboxEntry.id == row.id))
        emit(session, "message.status", message_id=message.id, conversation_id=message.conversation_id,
             agent_id=message.agent_id, status=message.status, error_code=code)
        log.info("outbox: message %s %s (%s)", message.id, status.value, code)

    async def _retry_later(self, row: Claim, reason: str, *, code: str | None, retry_after: float | None = None,
                           maybe_accepted: bool = False) -> None:
        """Try ``row`` again after a backoff, counting an attempt, while its retry budget lasts; once it is spent,
        record the message failed with the last code and reason. ``maybe_accepted``: the provider may have the
        message, so the row keeps its attempted mark."""
        attempts, now = row.attempts + 1, utcnow()
        deadline = row.created_at + timedelta(seconds=self.settings.retry_for_seconds)
        gave_up = now >= deadline
        async with self.app.store.transaction() as session:
            if gave_up:
                spent = _duration(now - row.created_at)
                await self._finish(session, row, DeliveryStatus.FAILED, code,
                                   f"gave up after {attempts} attempts over {spent}: {reason}")
            else:
                await self._reschedule(session, row, self._retry_at(attempts, now, deadline, retry_after),
                                       status=DeliveryStatus.RETRYING, code=code, note=reason, count_attempt=True,
                                       keep_attempted=maybe_accepted)
        self._count(row, DeliveryStatus.FAILED if gave_up else "retry")

    def _retry_at(self, attempts: int, now: datetime, deadline: datetime, retry_after: float | None) -> datetime:
        """When to try again after failed attempt number ``attempts``: after the backoff, or at the budget's end
        if that comes first (the last try is made then), but never before the provider's ``retry_after``."""
        delay = backoff(attempts, self.settings.backoff_base_seconds, self.settings.backoff_max_seconds)
        return now + timedelta(seconds=max(min(delay, (deadline - now).total_seconds()), retry_after or 0))

    async def _reschedule(self, session: AsyncSession, row: Claim, due: datetime, *,
                          status: DeliveryStatus | None = None, code: str | None = None, note: str | None = None,
                          count_attempt: bool, keep_attempted: bool = False, budget_from: datetime | None = None
                          ) -> None:
        """Give ``row`` back to the outbox, due at ``due``. Its attempted mark is cleared -- the provider does not
        have the message -- unless ``keep_attempted``. With ``status``, the message shows it, with ``code`` and
        ``note`` as its error, and a ``message.status`` event tells the agent when it is tried next.
        ``budget_from``: the retry budget counts from then (a deferral's end) instead of from when it was queued."""
        values: dict[str, object] = {"due_at": due, "lease_until": None}
        if not keep_attempted:
            values["attempted_at"] = None
        if count_attempt:
            values["attempts"] = OutboxEntry.attempts + 1
        if note is not None:
            values["last_error"] = note
        if budget_from is not None:
            values["created_at"] = budget_from
        await session.exec(update(OutboxEntry).where(OutboxEntry.id == row.id).values(**values))
        if status is not None:
            message = (await session.exec(
                update(Message).where(Message.id == row.message_id)
                .values(status=status.value, error_code=code, error_message=note, updated_at=utcnow())
                .returning(Message.conversation_id, Message.agent_id))).one()
            emit(session, "message.status", message_id=row.message_id, conversation_id=message.conversation_id,
                 agent_id=message.agent_id, status=status.value, error_code=code, next_attempt_at=due.isoformat())


@dataclass(frozen=True, slots=True)
class Clearance:
    """What the check transaction decided for one claimed row."""

    verdict: Verdict
    #: when the number's reserved slot starts, on the event loop's clock (0: the number is not throttled)
    send_at: float = 0.0
    #: the number had no free slot within the horizon: the row went back to the outbox, unsent
    handed_back: bool = False
    #: when the lease on the row ends, on the event loop's clock: past it, the message is not sent
    lease_ends: float = math.inf

    @property
    def sends(self) -> bool:
        """Whether the message goes to its provider now."""
        return self.verdict.action == "allow" and not self.handed_back


class Claim(NamedTuple):
    """An outbox row this sender holds the lease on."""

    id: int
    message_id: int
    provider: str
    attempts: int
    #: set when a previous attempt may have reached the provider (see ``Sender._found_sent``)
    attempted_at: datetime | None
    #: when the retry budget started: the message was queued, or a deferral of it ended
    created_at: datetime


_OUTBOX = OutboxEntry.__table__  # type: ignore[attr-defined]
_MESSAGES = Message.__table__  # type: ignore[attr-defined]
_RECORD_PARTS = insert(DeliveryPart.__table__)  # type: ignore[attr-defined]
_EARLIER = _OUTBOX.alias("earlier")
#: Due, unleased rows with no earlier row to the same recipient still in the outbox: the heads of the queues.
_DUE_HEADS = (
    select(_OUTBOX.c.id, _OUTBOX.c.message_id, _OUTBOX.c.provider, _OUTBOX.c.attempts, _OUTBOX.c.attempted_at,
           _OUTBOX.c.created_at)
    .where(_OUTBOX.c.due_at <= bindparam("now"),
           or_(_OUTBOX.c.lease_until.is_(None), _OUTBOX.c.lease_until < bindparam("now")),
           ~exists().where(_EARLIER.c.to_number == _OUTBOX.c.to_number, _EARLIER.c.id < _OUTBOX.c.id,
                           ~exists().where(_MESSAGES.c.id == _EARLIER.c.message_id,
                                           _MESSAGES.c.status == DeliveryStatus.DEFERRED.value)))
    .order_by(_OUTBOX.c.due_at, _OUTBOX.c.id).limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=_OUTBOX)
)
_LEASE = (
    update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True))).values(lease_until=bindparam("until"))
)
_MARK_ATTEMPTED = (
    update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(attempted_at=bindparam("now"), lease_until=bindparam("until"))
)
_OTHER_WITH_PROVIDER_ID = select(_MESSAGES.c.id).where(
    _MESSAGES.c.provider == bindparam("provider"), _MESSAGES.c.provider_message_id == bindparam("provider_id"),
    _MESSAGES.c.id != bindparam("message"))
_CLAIMED_MESSAGES = (
    select(_MESSAGES.c.id, _MESSAGES.c.from_number, _MESSAGES.c.to_number, _MESSAGES.c.body, _MESSAGES.c.media,
           _MESSAGES.c.conversation_id, _MESSAGES.c.message_class)
    .where(_MESSAGES.c.id.in_(bindparam("ids", expanding=True)))
)
_ACCEPTED_MESSAGES = (
    select(_MESSAGES.c.id, _MESSAGES.c.status, _MESSAGES.c.error_code, _MESSAGES.c.error_message,
           _MESSAGES.c.conversation_id, _MESSAGES.c.agent_id)
    .where(_MESSAGES.c.id.in_(bindparam("ids", expanding=True)))
)
_RECORD_ACCEPTANCE = (
    update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message"))
    .values(provider_message_id=bindparam("provider_id"), status=bindparam("new_status"),
            num_segments=bindparam("segments"), error_code=bindparam("error_code"),
            error_message=bindparam("error_message"), updated_at=bindparam("now"))
)
_LEAVE_OUTBOX = delete(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))


def _outbound(row: Claim, m: Row[Any]) -> OutboundMessage:
    """The message ``row`` sends, from its stored columns (``_CLAIMED_MESSAGES``)."""
    return OutboundMessage(
        id=m.id, provider=row.provider, from_number=m.from_number, to_number=m.to_number, text=m.body,
        media=tuple(Media(x["url"], x.get("content_type")) for x in m.media), conversation_id=m.conversation_id,
        message_class=m.message_class, attempt=row.attempts + 1,
    )


def _duration(elapsed: timedelta) -> str:
    """``elapsed`` for people: in hours from an hour on, else in minutes, else in seconds."""
    seconds = elapsed.total_seconds()
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} seconds"


def _segments(message: OutboundMessage) -> int:
    return max(1, segment(message.text).count) if message.text else 1


