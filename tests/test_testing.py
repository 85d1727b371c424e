"""The virtual clock (agent_audio.testing).

Guards: autojump moves time to the deadline and still yields to the loop; without
autojump, sleepers wake in deadline order exactly when advance() passes their deadline;
time never goes backwards.
"""

from __future__ import annotations

import asyncio

import pytest

from agent_audio.testing import ManualClock


async def test_autojump_jumps_and_yields() -> None:
    clock = ManualClock(10.0)
    other_ran = False

    async def other() -> None:
        nonlocal other_ran
        other_ran = True

    task = asyncio.ensure_future(other())
    await clock.sleep_until(12.5)
    assert clock.now() == 12.5 and other_ran
    await clock.sleep_until(1.0)  # past: no jump back
    assert clock.now() == 12.5
    await task


async def test_manual_advance_wakes_sleepers_in_order() -> None:
    clock = ManualClock(autojump=False)
    woke: list[float] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append(deadline)

    tasks = [asyncio.ensure_future(sleeper(d)) for d in (0.3, 0.1, 0.2)]
    await asyncio.sleep(0)
    clock.advance(0.15)
    await asyncio.sleep(0)
    assert woke == [0.1]
    clock.advance(0.2)
    await asyncio.gather(*tasks)
    assert woke == [0.1, 0.2, 0.3]


def test_time_never_goes_backwards() -> None:
    with pytest.raises(ValueError, match="expected seconds >= 0, got -1"):
        ManualClock().advance(-1)
