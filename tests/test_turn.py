"""The turn handle (agent_audio._turn).

Guards: ids count up from 1; stats are live snapshots satisfying conservation;
Turn.push/end act on that turn only; wait_for_playout returns the finished stats,
also for a turn interrupted before any audio arrived.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent_audio import AgentAudioTrack, InvalidAudioError
from agent_audio.testing import ManualClock

from helpers import ramp_signal, receive


async def test_ids_stats_and_conservation(track: AgentAudioTrack) -> None:
    a = track.start_turn()
    await a.push(ramp_signal(2000).tobytes())
    b = track.start_turn()
    assert (a.id, b.id) == (1, 2)
    await receive(track, 1)
    s = a.stats
    assert (s.pushed_samples, s.played_samples, s.queued_samples) == (2000, 960, 1040)
    assert s.pushed_samples == s.played_samples + s.dropped_samples + s.queued_samples
    assert "Turn 1 pushed=2000 played=960" in repr(a)


async def test_interrupt_before_any_audio_finishes_the_turn(track: AgentAudioTrack) -> None:
    turn = track.start_turn()
    track.interrupt()
    stats = await turn.wait_for_playout()
    assert stats.interrupted and stats.played_samples == 0
    await turn.push(ramp_signal(100).tobytes())  # late TTS audio: dropped, counted
    assert turn.stats.dropped_samples == 100 and turn.stats.pushed_samples == 100


async def test_wait_played_resolves_at_the_position_or_when_the_turn_finishes_first() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(np.ones(48000, np.int16))  # 1 s
    turn.end()
    at_half = asyncio.ensure_future(turn.wait_played(0.5))
    past_end = asyncio.ensure_future(turn.wait_played(5.0))
    for _ in range(24):
        await track.recv()
    assert not at_half.done()
    await track.recv()  # the 25th frame reaches 500 ms
    await asyncio.sleep(0)
    assert at_half.done() and at_half.result().played_samples == 24000
    assert not past_end.done()
    for _ in range(25):
        await track.recv()
    stats = await asyncio.wait_for(past_end, 1)  # the turn finished first
    assert stats.finished and stats.played_samples == 48000
    assert (await turn.wait_played(0.1)).played_samples == 48000  # already there: resolves at once
    with pytest.raises(InvalidAudioError):
        turn.wait_played(-1.0)
    track.stop()


async def test_stop_resolves_position_waiters() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    waiter = asyncio.ensure_future(turn.wait_played(1.0))
    await asyncio.sleep(0)
    track.stop()
    stats = await asyncio.wait_for(waiter, 1)
    assert stats.finished and stats.interrupted
