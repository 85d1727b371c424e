"""The turn handle (agent_audio._turn).

Guards: ids count up from 1; stats are live snapshots satisfying conservation;
Turn.push/end act on that turn only; wait_for_playout returns the finished stats,
also for a turn interrupted before any audio arrived.
"""

from __future__ import annotations

from agent_audio import AgentAudioTrack

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
