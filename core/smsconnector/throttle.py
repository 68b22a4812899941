"""Per-sender-number pacing: carriers allow a number so many segments a second, so a burst queues here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Throttle:
    """Spaces sends from each number at its rate (segments per second); a rate of 0 means unthrottled.

    Each send reserves the next free slot of its number, so concurrent senders queue in order instead of
    all firing at once.
    """

    def __init__(self, rate_for: Callable[[str], float], clock: Callable[[], float] = time.monotonic) -> None:
        self._rate_for = rate_for
        self._clock = clock
        self._next_free: dict[str, float] = {}

    def paces(self, number: str) -> bool:
        """Whether sends from ``number`` are throttled at all (when not, counting their segments is wasted)."""
        return self._rate_for(number) > 0

    def delay(self, number: str) -> float:
        """Seconds until ``number`` may send again."""
        return max(0.0, self._next_free.get(number, 0.0) - self._clock())

    def reserve(self, number: str, segments: int) -> float:
        """Take the next slot for ``segments`` from ``number``; the seconds to wait before sending."""
        rate = self._rate_for(number)
        if rate <= 0:
            return 0.0
        now = self._clock()
        start = max(now, self._next_free.get(number, now))
        self._next_free[number] = start + segments / rate
        return start - now

    async def acquire(self, number: str, segments: int) -> None:
        """Wait for the slot reserved for ``segments`` from ``number``."""
        wait = self.reserve(number, segments)
        if wait > 0:
            await asyncio.sleep(wait)
