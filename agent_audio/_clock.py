"""The clock the track paces on: monotonic seconds plus a way to sleep until a deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock"]


class Clock(Protocol):
    """A monotonic time source that a track paces its frames on.

    Library code never reads the wall clock; it asks a ``Clock``. Production code
    uses :class:`MonotonicClock`; tests use :class:`agent_audio.testing.ManualClock`.
    """

    def now(self) -> float:
        """Return the current time in seconds on a monotonic scale (arbitrary epoch)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (seconds, same scale as :meth:`now`).

        A deadline in the past returns after yielding to the event loop once.
        """
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic` and the event loop's timers.

    A sleep is an :func:`asyncio.sleep` of the delay computed against
    :func:`time.monotonic`, so a loop whose own clock has another epoch (uvloop)
    still wakes at the right moment.
    """

    def now(self) -> float:
        """Return :func:`time.monotonic` in seconds."""
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` (seconds on the :func:`time.monotonic` scale).

        Raises:
            asyncio.CancelledError: if the awaiting task is cancelled.
        """
        delay = deadline - time.monotonic()
        # asyncio.sleep(<=0) only yields once; a late frame is not delayed further.
        await asyncio.sleep(delay if delay > 0 else 0)
