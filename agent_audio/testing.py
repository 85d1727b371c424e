"""Test helpers for code built on agent_audio: a virtual clock.

Modelled on trio's ``MockClock``: time only moves when a test moves it, or, with
``autojump``, jumps straight to the deadline a ``recv()`` waits for, so a test
drives minutes of playout in milliseconds with no real sleep.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math

__all__ = ["ManualClock"]


class ManualClock:
    """Virtual monotonic time, in seconds, starting at ``start``.

    Args:
        start: initial reading of :meth:`now`, in seconds.
        autojump: if True (default), :meth:`sleep_until` sets the time to the
            deadline at once (after yielding to the loop once), so ``recv()`` returns
            immediately with virtual time advanced by one frame. If False, sleepers
            wait until :meth:`advance` moves time past their deadline.

    Inject a stall (an event loop that was blocked) with :meth:`advance` between two
    ``recv()`` calls: the next frame is then that much late.
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = True) -> None:
        self._now = float(start)
        self.autojump = autojump
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """Current virtual time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper whose deadline passed.

        Raises:
            ValueError: ``seconds`` is negative or not finite (time is monotonic).
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"expected seconds >= 0, got {seconds!r}")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def sleep_until(self, deadline: float) -> None:
        """Return once virtual time reaches ``deadline`` (seconds).

        With ``autojump``, time jumps to ``deadline`` if it is ahead; the call yields
        to the event loop once either way, so other tasks interleave as they would
        with real sleeps.
        """
        if self.autojump or deadline <= self._now:
            if deadline > self._now:
                self._now = deadline
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        await future
