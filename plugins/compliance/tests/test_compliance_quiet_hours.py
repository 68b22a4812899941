"""Quiet hours and caps, decided by the real send gate at fixed clocks, in the recipient's zones."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smsconnector.app import App
from smsconnector.config import load_config
from smsconnector.messages import MessageClass, OutboundMessage
from smsconnector.sender import decide
from smsconnector.testing import BRAND_NUMBER

MIAMI, PENSACOLA, AUSTIN, BALTIMORE = "+13055550142", "+18504441234", "+15125550123", "+14105550123"
TALLAHASSEE, HARTFORD, BRIDGEPORT, HOUSTON = "+18506441234", "+18605550123", "+12033351234", "+17132221234"
IDAHO, NEWFOUNDLAND, TOLL_FREE = "+12085550123", "+17095550123", "+18005550123"
INVALID_US, INVALID_UK, PARIS, DELHI = "+15555550123", "+447700900123", "+33612345678", "+919812345678"
#: consent is tested elsewhere, and caps only where a test sets them: in the table only the clock matters
CLOCK_ONLY = {"consent": {"conversational": "none", "informational": "none", "marketing": "none"},
              "caps": {"limits": {}}}


def at(local: str, zone: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    label: str
    to: str
    now: datetime
    expect: str  #: allow or defer
    until: datetime | None = None  #: for defer
    validity: int | None = None  #: for allow
    message_class: MessageClass = "marketing"
    settings: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("Florida inside its 08-20 window: provider may hold it until 20:00", MIAMI,
         at("2026-07-15 19:30", "America/New_York"), "allow", validity=1800),
    Case("Florida at 20:00 exactly: outside (the end is exclusive)", MIAMI,
         at("2026-07-15 20:00", "America/New_York"), "defer", until=at("2026-07-16 08:00", "America/New_York")),
    Case("Florida with 30 s left: too little to deliver, next morning", MIAMI,
         at("2026-07-15 19:59:30", "America/New_York"), "defer", until=at("2026-07-16 08:00", "America/New_York")),
    Case("850 spans Central and Eastern: Pensacola at 19:30 Central waits, it is 20:30 in Tallahassee", PENSACOLA,
         at("2026-07-15 19:30", "America/Chicago"), "defer", until=at("2026-07-16 08:00", "America/Chicago")),
    Case("850 spans Central and Eastern: Tallahassee at 08:30 Eastern waits for 08:00 in Pensacola", TALLAHASSEE,
         at("2026-07-15 08:30", "America/New_York"), "defer", until=at("2026-07-15 08:00", "America/Chicago")),
    Case("policy zones=number: Pensacola's exchange is Central, 19:30 there", PENSACOLA,
         at("2026-07-15 19:30", "America/Chicago"), "allow", validity=1800,
         settings={"quiet_hours": {"zones": "number"}}),
    Case("Connecticut opens at 09:00: Hartford (860) at 08:30 waits", HARTFORD,
         at("2026-07-15 08:30", "America/New_York"), "defer", until=at("2026-07-15 09:00", "America/New_York")),
    Case("Connecticut opens at 09:00: Bridgeport (203) at 08:30 waits too", BRIDGEPORT,
         at("2026-07-15 08:30", "America/New_York"), "defer", until=at("2026-07-15 09:00", "America/New_York")),
    Case("Connecticut closes at 20:00: Bridgeport at 19:30", BRIDGEPORT,
         at("2026-07-15 19:30", "America/New_York"), "allow", validity=1800),
    Case("Texas on a Sunday at 10:00: Houston (713) waits for noon", HOUSTON,
         at("2026-07-19 10:00", "America/Chicago"), "defer", until=at("2026-07-19 12:00", "America/Chicago")),
    Case("Texas on a Sunday at 10:00: not before noon", AUSTIN,
         at("2026-07-19 10:00", "America/Chicago"), "defer", until=at("2026-07-19 12:00", "America/Chicago")),
    Case("Texas on Saturday night: Sunday noon", AUSTIN,
         at("2026-07-18 21:30", "America/Chicago"), "defer", until=at("2026-07-19 12:00", "America/Chicago")),
    Case("Texas on a Monday at 08:30: 09:00", AUSTIN,
         at("2026-07-13 08:30", "America/Chicago"), "defer", until=at("2026-07-13 09:00", "America/Chicago")),
    Case("Maryland at 20:15: next morning 08:00", BALTIMORE,
         at("2026-07-15 20:15", "America/New_York"), "defer", until=at("2026-07-16 08:00", "America/New_York")),
    Case("Maryland at 07:59: the next minute", BALTIMORE,
         at("2026-07-15 07:59", "America/New_York"), "defer", until=at("2026-07-15 08:00", "America/New_York")),
    Case("Idaho, two zones: 08:30 Mountain is 07:30 Pacific, wait for 08:00 Pacific", IDAHO,
         at("2026-07-15 08:30", "America/Boise"), "defer", until=at("2026-07-15 08:00", "America/Los_Angeles")),
    Case("Idaho, two zones: 20:30 Mountain ends at 21:00 Mountain", IDAHO,
         at("2026-07-15 20:30", "America/Boise"), "allow", validity=1800),
    Case("Newfoundland, half-hour zone: 09:15 there is 08:45 in Halifax; CRTC opens 09:00 Halifax", NEWFOUNDLAND,
         at("2026-07-15 09:15", "America/St_Johns"), "defer", until=at("2026-07-15 09:00", "America/Halifax")),
    Case("Newfoundland at 21:10: closes at 21:30 St John's, before Halifax", NEWFOUNDLAND,
         at("2026-07-15 21:10", "America/St_Johns"), "allow", validity=1200),
    Case("toll-free: location unknown, brand zone with the strictest US window (09:00, Connecticut/Texas)",
         TOLL_FREE, at("2026-07-15 08:30", "America/New_York"), "defer",
         until=at("2026-07-15 09:00", "America/New_York")),
    Case("toll-free in the evening: the strictest window ends at 20:00", TOLL_FREE,
         at("2026-07-15 19:00", "America/New_York"), "allow", validity=3600),
    Case("invalid US number on a Sunday: strictest window opens at noon (Texas)", INVALID_US,
         at("2026-07-19 11:00", "America/New_York"), "defer", until=at("2026-07-19 12:00", "America/New_York")),
    Case("invalid UK number: no UK rule, no brand window", INVALID_UK,
         at("2026-07-15 23:00", "America/New_York"), "allow"),
    Case("conversational reply at 23:00: not a solicitation, not deferred", MIAMI,
         at("2026-07-15 23:00", "America/New_York"), "allow", message_class="conversational"),
    Case("informational at 23:00: not covered by default", MIAMI,
         at("2026-07-15 23:00", "America/New_York"), "allow", message_class="informational"),
    Case("compliance reply at 23:00: never deferred", MIAMI,
         at("2026-07-15 23:00", "America/New_York"), "allow", message_class="compliance"),
    Case("DST starts overnight: Saturday 21:30 EST waits for Sunday 08:00 EDT (12:00 UTC, not 13:00)", MIAMI,
         at("2026-03-07 21:30", "America/New_York"), "defer", until=utc("2026-03-08 12:00")),
    Case("DST ends overnight: Saturday 20:30 EDT waits for Sunday 08:00 EST (13:00 UTC)", MIAMI,
         at("2026-10-31 20:30", "America/New_York"), "defer", until=utc("2026-11-01 13:00")),
    Case("France on Saturday night: Sunday is closed, Monday 08:00", PARIS,
         at("2026-07-11 22:00", "Europe/Paris"), "defer", until=at("2026-07-13 08:00", "Europe/Paris")),
    Case("France before a public holiday (14 July): Wednesday 08:00", PARIS,
         at("2026-07-13 21:45", "Europe/Paris"), "defer", until=at("2026-07-15 08:00", "Europe/Paris")),
    Case("India promotional window 09-21 IST", DELHI,
         at("2026-07-15 21:30", "Asia/Kolkata"), "defer", until=at("2026-07-16 09:00", "Asia/Kolkata")),
    Case("policy end=inclusive: 20:00:00 itself is still allowed in Florida", MIAMI,
         at("2026-07-15 20:00", "America/New_York"), "allow", validity=1,
         settings={"quiet_hours": {"end": "inclusive", "min_validity_seconds": 1}}),
    Case("policy states=false: federal 21:00 only", MIAMI,
         at("2026-07-15 20:30", "America/New_York"), "allow", validity=1800,
         settings={"quiet_hours": {"states": False}}),
    Case("brand window 10-18 narrows the legal one", MIAMI,
         at("2026-07-15 09:00", "America/New_York"), "defer", until=at("2026-07-15 10:00", "America/New_York"),
         settings={"numbers": {BRAND_NUMBER: {"quiet_hours": {"hours": "10:00-18:00"}}}}),
    Case("policy several_zones=first: Idaho judged by Boise alone", IDAHO,
         at("2026-07-15 08:30", "America/Boise"), "allow", validity=45000,
         settings={"quiet_hours": {"several_zones": "first"}}),
    Case("policy classes includes informational: deferred too", MIAMI,
         at("2026-07-15 23:00", "America/New_York"), "defer", until=at("2026-07-16 08:00", "America/New_York"),
         message_class="informational", settings={"quiet_hours": {"classes": ["marketing", "informational"]}}),
    Case("policy regions without CA: Newfoundland unrestricted", NEWFOUNDLAND,
         at("2026-07-15 06:00", "America/St_Johns"), "allow", settings={"quiet_hours": {"regions": ["US"]}}),
]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """One migrated database; an app per distinct setting on top of it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('quiet') / 'quiet.db'}"
    made: dict[str, App] = {}

    def app_for(settings: dict[str, Any]) -> App:
        key = repr(settings)
        if key not in made:
            config = load_config(env={}, overrides={
                "database_url": url, "numbers": [{"number": BRAND_NUMBER, "provider": "simulator"}],
                "plugins": {"compliance": {**CLOCK_ONLY, **settings}}})
            made[key] = App(config)
            made[key].upgrade_database()
        return made[key]

    yield app_for
    for app in made.values():
        loop.run_until_complete(app.store.close())


_ids = itertools.count(1)


def check(app: App, loop: asyncio.AbstractEventLoop, to: str, now: datetime, message_class: MessageClass) -> Any:
    app.plugin("compliance").clock = lambda: now
    message = OutboundMessage(id=next(_ids), provider="simulator", from_number=BRAND_NUMBER, to_number=to,
                              text="20% off this weekend", message_class=message_class)

    async def run() -> Any:
        async with app.store.transaction() as session:
            return decide(await app.hooks.check_outbound(message, session))

    return loop.run_until_complete(run())


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_quiet_hours(apps: Any, loop: asyncio.AbstractEventLoop, case: Case) -> None:
    verdict = check(apps(case.settings), loop, case.to, case.now, case.message_class)

    assert verdict.action == case.expect, verdict.reason
    if case.expect == "defer":
        assert verdict.until == case.until
        assert verdict.code == "quiet_hours"
        assert "deferred to" in verdict.reason
    else:
        assert verdict.validity_seconds == case.validity


def test_a_deferral_names_the_window_and_the_zone(apps: Any, loop: asyncio.AbstractEventLoop) -> None:
    verdict = check(apps({}), loop, AUSTIN, at("2026-07-19 10:00", "America/Chicago"), "marketing")

    assert verdict.reason == (
        "quiet hours for marketing messages: allowed Mon-Sat 09:00-21:00; Sun 12:00-21:00 (US federal, "
        "47 CFR 64.1200(c)(1); Texas, SB 140) in America/Chicago; deferred to 2026-07-19 17:00 UTC "
        "(2026-07-19 12:00 CDT)")


def test_the_daily_cap_defers_the_fourth_marketing_message_until_the_first_leaves_the_window(
        apps: Any, loop: asyncio.AbstractEventLoop) -> None:
    app = apps({"caps": {"window_hours": 24}})
    first = at("2026-07-15 09:00", "America/New_York")
    sends = [check(app, loop, BALTIMORE, first + timedelta(hours=h), "marketing") for h in (0, 1, 2)]
    fourth = check(app, loop, BALTIMORE, first + timedelta(hours=3), "marketing")
    other_state = check(app, loop, AUSTIN, first + timedelta(hours=3), "marketing")

    assert [s.action for s in sends] == ["allow"] * 3
    assert (fourth.action, fourth.code, fourth.until) == ("defer", "daily_cap", first + timedelta(hours=24))
    assert "already got 3 marketing messages" in fourth.reason and "US-MD allows 3" in fourth.reason
    assert other_state.action == "allow"  # Texas has no cap


def test_a_cap_that_frees_up_at_night_waits_for_the_morning(apps: Any, loop: asyncio.AbstractEventLoop) -> None:
    app = apps({"caps": {"window_hours": 12}})
    first = at("2026-07-15 10:00", "America/New_York")
    for h in (0, 1, 2):
        check(app, loop, MIAMI, first + timedelta(minutes=h), "marketing")
    fourth = check(app, loop, MIAMI, first + timedelta(hours=4), "marketing")

    # The cap frees up at 22:00, when Florida's window is closed: the next morning at 08:00.
    assert (fourth.action, fourth.code, fourth.until) == ("defer", "daily_cap", at("2026-07-16 08:00",
                                                                                   "America/New_York"))


def test_a_window_that_never_opens_is_refused_with_the_reason(apps: Any, loop: asyncio.AbstractEventLoop) -> None:
    app = apps({"numbers": {BRAND_NUMBER: {"quiet_hours": {"hours": "closed"}}}})
    verdict = check(app, loop, MIAMI, at("2026-07-15 12:00", "America/New_York"), "marketing")

    assert (verdict.action, verdict.code) == ("refuse", "no_sending_window")


def test_a_retried_message_counts_once_against_the_cap(apps: Any, loop: asyncio.AbstractEventLoop) -> None:
    app = apps({"caps": {"window_hours": 48}})
    now = at("2026-07-20 10:00", "America/New_York")
    app.plugin("compliance").clock = lambda: now
    message = OutboundMessage(id=999_999, provider="simulator", from_number=BRAND_NUMBER, to_number=BALTIMORE,
                              text="offer", message_class="marketing")

    async def attempt() -> Any:
        async with app.store.transaction() as session:
            return decide(await app.hooks.check_outbound(message, session))

    verdicts = [loop.run_until_complete(attempt()) for _ in range(5)]

    assert [v.action for v in verdicts] == ["allow"] * 5
