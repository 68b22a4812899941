"""Sending windows: weekly hours in the recipient's local time, and the next instant every zone allows.

A window is a set of local-time intervals per weekday, optionally closed on a country's public holidays. Rules
combine by intersection (federal and state and brand). A recipient with several possible zones gets the
instants that are inside the window in *all* of them. Boundaries are computed per local date, so DST changes
move them correctly; a boundary that falls in a DST gap starts at the first minute that exists after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, field_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
#: how far ahead the next open instant is looked for; a window closed for longer is treated as misconfigured
HORIZON_DAYS = 15

Interval = tuple[int, int]  # minutes since local midnight, [start, end)
Span = tuple[datetime, datetime]  # UTC, [start, end)


def parse_hours(value: str) -> tuple[Interval, ...]:
    """``"08:00-21:00"`` or ``"10:00-13:00, 14:00-20:00"``; ``"closed"`` for none; ``24:00`` ends the day."""
    if value.strip().lower() == "closed":
        return ()
    intervals = []
    for part in value.split(","):
        m = _RANGE.match(part)
        if m is None:
            raise ValueError(f"'{part.strip()}' is not HH:MM-HH:MM")
        sh, sm, eh, em = map(int, m.groups())
        start, end = sh * 60 + sm, eh * 60 + em
        if sm > 59 or em > 59 or start > 1440 or end > 1440 or start >= end:
            raise ValueError(f"'{part.strip()}' is not a range within one day")
        intervals.append((start, end))
    return _merge(intervals)


def _merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _intersect(a: Sequence[tuple[Any, Any]], b: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Intersect two sorted lists of disjoint [start, end) intervals."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


class Rule(BaseModel):
    """A sending window as configured: ``hours`` for every day, a weekday key to override one day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: str = "00:00-24:00"
    mon: str | None = None
    tue: str | None = None
    wed: str | None = None
    thu: str | None = None
    fri: str | None = None
    sat: str | None = None
    sun: str | None = None
    #: closed on this country's public holidays (``"FR"``, or ``"US-TX"`` for a state's), via ``holidays``
    holidays: str | None = None
    #: shown in the reason given to the agent, e.g. "Florida, Fla. Stat. 501.616(6)"
    label: str = ""

    @field_validator("hours", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _valid_hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hours(value)
        return value

    @field_validator("holidays")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None:
            _holidays(value, date.today().year)
        return value

    def week(self) -> Week:
        days = tuple(parse_hours(getattr(self, d) if getattr(self, d) is not None else self.hours) for d in DAYS)
        return Week(days, frozenset({self.holidays}) if self.holidays else frozenset(),
                    (self.label,) if self.label else ())


@cache
def _holidays(code: str, year: int) -> frozenset[date]:
    country, _, subdivision = code.partition("-")
    try:
        return frozenset(holidays.country_holidays(country, subdiv=subdivision or None, years=year))
    except NotImplementedError:
        raise ValueError(f"no public holidays are known for '{code}'") from None


@dataclass(frozen=True, slots=True)
class Week:
    """Allowed local-time intervals for each weekday (Monday first), and the holiday calendars that close it."""

    days: tuple[tuple[Interval, ...], ...]
    closed_on: frozenset[str] = frozenset()
    labels: tuple[str, ...] = ()

    def __and__(self, other: Week) -> Week:
        days = tuple(tuple(_intersect(a, b)) for a, b in zip(self.days, other.days, strict=True))
        return Week(days, self.closed_on | other.closed_on, self.labels + other.labels)

    def describe(self) -> str:
        """``08:00-20:00 daily`` or ``Mon-Sat 09:00-21:00, Sun 12:00-21:00``, for reasons shown to agents."""
        def fmt(intervals: tuple[Interval, ...]) -> str:
            return ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in intervals) or "closed"

        groups: list[tuple[str, str, str]] = []
        for name, intervals in zip(DAYS, self.days, strict=True):
            text = fmt(intervals)
            if groups and groups[-1][2] == text:
                groups[-1] = (groups[-1][0], name, text)
            else:
                groups.append((name, name, text))
        if len(groups) == 1:
            out = f"{groups[0][2]} daily"
        else:
            out = "; ".join(f"{a.title()}{'' if a == b else '-' + b.title()} {t}" for a, b, t in groups)
        return out + (f"; closed on public holidays ({', '.join(sorted(self.closed_on))})" if self.closed_on else "")

    def closed(self, day: date) -> bool:
        return any(day in _holidays(code, day.year) for code in self.closed_on)


def zone(name: str) -> ZoneInfo | None:
    """The zone, or ``None`` for ``Etc/Unknown`` and names this system does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_to_utc(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The first UTC instant at which the wall clock in ``tz`` on ``day`` reads ``minute`` (or later, in a gap)."""
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    candidates = [wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)]
    instant = min(candidates)
    # fold=0 is the first of two ambiguous readings; in a gap neither reading exists, so walk forward to the
    # first minute whose wall time is at or past the boundary (the transition itself).
    while instant.astimezone(tz).replace(tzinfo=None) < wall:
        instant += timedelta(minutes=1)
    return instant


def open_spans(week: Week, tz: ZoneInfo, start: datetime, *, inclusive_end: bool = False,
               days: int = HORIZON_DAYS) -> list[Span]:
    """The UTC spans in which ``week`` allows sending in ``tz``, from the local day before ``start``."""
    first = start.astimezone(tz).date() - timedelta(days=1)
    spans: list[Span] = []
    for offset in range(days + 2):
        day = first + timedelta(days=offset)
        if week.closed(day):
            continue
        for s, e in week.days[day.weekday()]:
            begin, end = local_to_utc(day, s, tz), local_to_utc(day, e, tz)
            if inclusive_end:
                end += timedelta(seconds=1)  # "not after 21:00": 21:00:00 itself is still allowed
            if begin < end:
                spans.append((begin, end))
    merged: list[Span] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


@dataclass(frozen=True, slots=True)
class Opening:
    """When a message may go: ``now`` inside a window (``until`` it closes), or the next ``start``."""

    open_now: bool
    start: datetime | None  #: the next open instant when closed now; ``None`` when nothing opens in the horizon
    until: datetime | None  #: when the current window closes, when open now


def next_opening(week: Week, zones: Sequence[ZoneInfo], now: datetime, *, inclusive_end: bool = False,
                 min_open_seconds: float = 0) -> Opening:
    """Whether ``now`` is inside ``week`` in every zone, else the first instant that is.

    A window that closes within ``min_open_seconds`` counts as closed: a message sent then could not be
    delivered before the window shuts.
    """
    common: list[Span] | None = None
    for tz in zones:
        spans = open_spans(week, tz, now, inclusive_end=inclusive_end)
        common = spans if common is None else _intersect(common, spans)
    for begin, end in common or []:
        if end <= now or (end - max(begin, now)).total_seconds() < min_open_seconds:
            continue
        if begin <= now:
            return Opening(True, None, end)
        return Opening(False, begin, None)
    return Opening(False, None, None)
