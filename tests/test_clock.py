"""The real clock (agent_audio._clock).

Guards: MonotonicClock reads time.monotonic and never returns from sleep_until before
the deadline; a past deadline returns at once. (Real time, a few ms; cannot be flaky:
it only asserts a lower bound.)
"""

from __future__ import annotations

import time

from agent_audio import Clock, MonotonicClock
from agent_audio.testing import ManualClock


async def test_sleep_until_never_returns_early() -> None:
    clock = MonotonicClock()
    deadline = clock.now() + 0.01
    await clock.sleep_until(deadline)
    assert time.monotonic() >= deadline


async def test_past_deadline_returns_at_once() -> None:
    clock = MonotonicClock()
    before = clock.now()
    await clock.sleep_until(before - 1.0)
    assert clock.now() - before < 0.5


def test_both_clocks_satisfy_the_protocol() -> None:
    clocks: list[Clock] = [MonotonicClock(), ManualClock()]
    assert all(isinstance(c.now(), float) for c in clocks)
