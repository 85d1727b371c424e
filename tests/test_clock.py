"""The real clock (MonotonicClock) and its shared per-loop ticker.

Guards: sleepers whose deadlines round to the same 1 ms slot share one event-loop
timer; nobody wakes more than half a slot early; a cancelled sleeper neither breaks
nor delays the others of its slot; a past deadline resolves at once; one clock works
across event loops. These run on the real clock (there is no other way to test it),
with deadlines a few milliseconds ahead; every assertion is a bound the design
guarantees (a lower bound on wake-up times, counts), never a timing hope.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agent_audio import Clock, MonotonicClock
from agent_audio._clock import TICK
from agent_audio.testing import ManualClock


class TimerCount:
    """Counts the ``call_later`` calls of the running loop (one per armed slot)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        original = loop.call_later

        def counting(delay: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            self.delays.append(delay)
            return original(delay, callback, *args, **kwargs)

        loop.call_later = counting  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        del asyncio.get_running_loop().call_later  # the instance attribute: the method shows again


def slot_start(ahead: float) -> float:
    """The start (seconds, monotonic scale) of the slot about ``ahead`` seconds from now."""
    return round((time.monotonic() + ahead) / TICK) * TICK


async def sleeper(clock: MonotonicClock, deadline: float, woke: dict[float, float]) -> None:
    await clock.sleep_until(deadline)
    woke[deadline] = time.monotonic()


async def test_one_timer_per_slot_and_never_more_than_half_a_slot_early() -> None:
    timers = TimerCount()
    timers.install()
    clock, other = MonotonicClock(), MonotonicClock()  # two clocks on one loop share the ticker
    base = slot_start(0.02)
    same_slot = [base - 0.4 * TICK, base, base + 0.4 * TICK]
    next_slot = base + TICK
    woke: dict[float, float] = {}
    tasks = [asyncio.ensure_future(sleeper(clock, d, woke)) for d in same_slot]
    tasks.append(asyncio.ensure_future(sleeper(other, next_slot, woke)))
    tasks.append(asyncio.ensure_future(sleeper(other, base + 0.1 * TICK, woke)))
    try:
        await asyncio.gather(*tasks)
    finally:
        timers.uninstall()
    assert len(timers.delays) == 2, f"expected one timer per slot (2), got {len(timers.delays)}"
    for deadline, at in woke.items():
        assert at >= deadline - TICK / 2, f"woke {(deadline - at) * 1e3:.3f} ms early"
    assert len(woke) == 5


async def test_a_cancelled_sleeper_leaves_its_slot_to_the_others() -> None:
    clock = MonotonicClock()
    deadline = slot_start(0.01)
    woke: dict[float, float] = {}
    cancelled = asyncio.ensure_future(clock.sleep_until(deadline))
    survivor = asyncio.ensure_future(sleeper(clock, deadline, woke))
    await asyncio.sleep(0)
    cancelled.cancel()
    await survivor
    assert cancelled.cancelled()
    assert woke[deadline] >= deadline - TICK / 2


async def test_a_past_deadline_resolves_on_the_next_iterations() -> None:
    clock = MonotonicClock()
    future = clock.sleep_until(time.monotonic() - 1.0)
    assert not future.done()  # it yields to the loop first
    for _ in range(3):
        await asyncio.sleep(0)
        if future.done():
            break
    assert future.done()


def test_one_clock_across_event_loops() -> None:
    clock = MonotonicClock()

    async def wait_a_little() -> float:
        deadline = time.monotonic() + 0.002
        await clock.sleep_until(deadline)
        return time.monotonic() - deadline

    for _ in range(2):  # each asyncio.run has its own loop; futures must belong to it
        assert asyncio.run(wait_a_little()) >= -TICK / 2


async def test_outside_a_running_loop_is_an_error() -> None:
    clock = MonotonicClock()

    def call() -> None:
        clock.sleep_until(0.0)

    with pytest.raises(RuntimeError):
        await asyncio.get_running_loop().run_in_executor(None, call)


def test_both_clocks_satisfy_the_protocol() -> None:
    clocks: list[Clock] = [MonotonicClock(), ManualClock()]
    assert all(isinstance(c.now(), float) for c in clocks)
