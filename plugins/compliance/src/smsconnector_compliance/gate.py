"""The send gate: what the sender asks before every send, and what the preview endpoint shows agents.

In order: the length limit; the opt-out (nothing but the one confirmation); the consent the message class needs;
then, for the classes they cover, the per-24-hours caps and the quiet hours, which defer rather than refuse.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from smsconnector.plugin import AGENT_TEXT_LIMIT, OutboundMessage, Verdict
from smsconnector.store.models import Message

from . import ledger
from .hours import Week, next_opening, zone
from .ledger import ConsentState
from .location import Location, locate
from .models import LedgerEvent
from .settings import NumberRules, Policy

ALLOW = Verdict("allow")
_LEVEL_NEEDS = {"express": "informational", "written": "marketing"}
_CONSENT_NAMES = {"express": "prior express consent (informational or marketing)",
                  "written": "prior express written consent for marketing"}


async def check(policy: Policy, session: AsyncSession, message: OutboundMessage, now: datetime, *,
                dry_run: bool = False) -> Verdict:
    """Decide on one outbound message; ``dry_run`` decides without recording a confirmation or a capped send."""
    if len(message.text) > AGENT_TEXT_LIMIT:
        return Verdict.refuse("too_long", f"message is {len(message.text)} characters; the limit is "
                                          f"{AGENT_TEXT_LIMIT} characters")
    rules = policy.rules(message.from_number, message.provider)
    standing = await ledger.state(session, message.to_number, rules.scope,
                                  opt_in_restores_consent=policy.settings.opt_in_restores_consent)
    if standing.opted_out:
        return await _while_opted_out(rules, policy, session, message, standing, now, dry_run)
    if message.message_class == "compliance":
        return ALLOW  # keyword replies: never deferred, never capped
    refusal = await _consent(policy, rules, session, message, standing, now)
    if refusal is not None:
        return refusal
    return await _timing(policy, rules, session, message, now, dry_run)


async def _while_opted_out(rules: NumberRules, policy: Policy, session: AsyncSession, message: OutboundMessage,
                           standing: ConsentState, now: datetime, dry_run: bool) -> Verdict:
    if message.message_class == "compliance":
        opt_out = standing.pending_confirmation(message.text, message.from_number)
        if opt_out is not None and opt_out.id is not None:
            claimed = standing.confirmations.get(opt_out.id)
            if claimed is None and (dry_run or await ledger.claim_confirmation(session, opt_out, message.id, now)):
                return ALLOW
            claimed = claimed or await ledger.confirmation_of(session, opt_out.id)
            if claimed is not None and claimed.message_id == message.id:
                return ALLOW  # a retry of the confirmation itself
            return Verdict.refuse("opted_out", f"{message.to_number} opted out and their one opt-out confirmation "
                                               f"was already sent (message {claimed.message_id if claimed else '?'})")
        if policy.settings.help_when_opted_out and message.text in rules.help_texts:
            return ALLOW
    assert standing.opt_out is not None
    return Verdict.refuse("opted_out", opted_out_reason(message.to_number, rules.brand, standing.opt_out))


def opted_out_reason(consumer: str, brand: str, event: LedgerEvent) -> str:
    """Why nothing can be sent, in words an agent can act on."""
    when = event.occurred_at.strftime("%Y-%m-%d %H:%M UTC")
    if event.method in ("keyword", "phrase"):
        how = f"by texting '{event.raw_text.strip() if event.raw_text else event.matched}'"
    elif event.method == "provider":
        how = f"as reported by the provider ({event.source})"
    else:
        how = f"recorded by {event.recorded_by} ({event.method}{': ' + event.source if event.source else ''})"
    return (f"{consumer} opted out of messages from {brand} on {when} {how}. Nothing can be sent to them until "
            "they text START to opt back in.")


async def _consent(policy: Policy, rules: NumberRules, session: AsyncSession, message: OutboundMessage,
                   standing: ConsentState, now: datetime) -> Verdict | None:
    level = getattr(policy.settings.consent, message.message_class)
    if level == "none":
        return None
    if level in _LEVEL_NEEDS:
        if standing.has_consent(_LEVEL_NEEDS[level]):
            return None
        return Verdict.refuse("no_consent", f"{message.message_class} messages need the consumer's "
                                            f"{_CONSENT_NAMES[level]}; none is recorded for {message.to_number} "
                                            f"with {rules.brand}")
    if standing.consents:
        return None
    hours = policy.settings.consent.exchange_hours
    since = now - timedelta(hours=hours)
    if standing.last_opt_out_at is not None and standing.last_opt_out_at > since:
        since = standing.last_opt_out_at  # an opt-out ends the exchange; only a later text starts a new one
    texted = (await session.exec(
        select(Message.id).where(Message.direction == "inbound", Message.from_number == message.to_number,
                                 Message.to_number == message.from_number, Message.created_at >= since).limit(1)
    )).scalars().first()
    if texted is not None:
        return None
    return Verdict.refuse("no_consent", f"{message.to_number} has not texted {message.from_number} in the last "
                                        f"{hours:g} hours and no consent is recorded: a {message.message_class} "
                                        "message needs the consumer to have started the exchange")


@dataclass(frozen=True, slots=True)
class Window:
    """The window that applies to one recipient, in the zones it must hold in."""

    week: Week
    zones: tuple[ZoneInfo, ...]
    located: bool

    def describe(self) -> str:
        labels = "; ".join(dict.fromkeys(self.week.labels))
        where = ", ".join(z.key for z in self.zones) + ("" if self.located else ", the brand's zone: the "
                                                                                "recipient's is unknown")
        return f"{self.week.describe()}{f' ({labels})' if labels else ''} in {where}"


def window(policy: Policy, rules: NumberRules, location: Location) -> Window | None:
    """Federal, state, country and brand windows for this recipient, intersected; ``None`` when none applies."""
    quiet = policy.settings.quiet_hours
    windows = policy.windows
    weeks: list[Week] = []
    if location.known:
        names = location.area_zones if quiet.zones == "area_code" else location.zones
        names = names if quiet.several_zones == "all" else location.zones[:1]
        country = location.country
    else:
        names = (rules.time_zone,)
        country = location.country or locate(rules.number).country
    if country in quiet.regions and country in windows:
        weeks.append(windows[country].week())
        if quiet.states:
            weeks.extend(rule.week() for _, rule in policy.state_rows(location, windows))
    if rules.window is not None:
        weeks.append(rules.window.week())
    if not weeks:
        return None
    zones = tuple(z for z in map(zone, names) if z is not None)
    if not zones:
        zones, located = (ZoneInfo(rules.time_zone),), False
    else:
        located = location.known
    return Window(reduce(lambda a, b: a & b, weeks), zones, located)


async def _timing(policy: Policy, rules: NumberRules, session: AsyncSession, message: OutboundMessage,
                  now: datetime, dry_run: bool) -> Verdict:
    cls = message.message_class
    location = locate(message.to_number)
    caps = policy.settings.caps
    quiet = policy.settings.quiet_hours
    not_before, cap_reason = now, ""
    capped = policy.cap(location) if cls in caps.classes else None
    region, limit = capped or (None, None)
    if limit is not None:
        if session.bind.dialect.name == "postgresql" and not dry_run:
            # Two replicas must not both send the last allowed message: serialize per consumer until commit.
            await session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_lock_key(message.to_number)))
        window_start = now - timedelta(hours=caps.window_hours)
        sent = await ledger.recent_sends(session, message.to_number, rules.scope, caps.classes, window_start,
                                         excluding=message.id)
        if len(sent) >= limit:
            not_before = sent[len(sent) - limit].sent_at + timedelta(hours=caps.window_hours)
            cap_reason = (f"{message.to_number} already got {len(sent)} {cls} messages from {rules.brand} in the "
                          f"last {caps.window_hours:g} hours; {region} allows {limit}")
    applies = window(policy, rules, location) if cls in quiet.classes else None
    validity: int | None = None
    if applies is not None:
        opening = next_opening(applies.week, applies.zones, not_before, inclusive_end=quiet.end == "inclusive",
                               min_open_seconds=quiet.min_validity_seconds)
        if opening.open_now and not_before == now:
            assert opening.until is not None
            # Bound the provider's queue so that it cannot deliver the message after the window closes.
            validity = int((opening.until - now).total_seconds())
        elif not opening.open_now:
            if opening.start is None:
                return Verdict.refuse("no_sending_window", f"no time in the next weeks is allowed for {cls} "
                                                           f"messages to {message.to_number}: {applies.describe()}")
            reason = f"quiet hours for {cls} messages: allowed {applies.describe()}"
            return Verdict.defer("daily_cap" if cap_reason else "quiet_hours",
                                 _deferred(cap_reason + "; then " + reason if cap_reason else reason,
                                           opening.start, applies.zones[0]), opening.start)
    if not_before > now:
        return Verdict.defer("daily_cap", _deferred(cap_reason, not_before, None), not_before)
    if limit is not None and not dry_run:
        await ledger.count_send(session, message_id=message.id, consumer_number=message.to_number, scope=rules.scope,
                                brand_number=message.from_number, message_class=cls, region=region,
                                sent_at=now)
    return Verdict("allow", validity_seconds=validity)


def _deferred(reason: str, until: datetime, tz: ZoneInfo | None) -> str:
    local = until.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if tz is not None else ""
    return f"{reason}; deferred to {until.strftime('%Y-%m-%d %H:%M UTC')}" + (f" ({local})" if local else "")


def _lock_key(number: str) -> int:
    return int.from_bytes(hashlib.sha256(b"compliance-cap:" + number.encode()).digest()[:8], "big", signed=True)

