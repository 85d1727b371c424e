"""A real aiortc peer connection on this machine (agent_audio.demo.loopback), on the real clock.

Guards (marked ``realclock``): over a real RTCPeerConnection pair (ICE host candidates,
DTLS-SRTP, Opus) the listener receives the pushed speech, with arrival times for every
frame; after ``interrupt()`` the received audio goes below -40 dBFS within
fade_out + 300 ms; the turn's account stays exact.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from agent_audio import AgentAudioTrack
from agent_audio.demo.analysis import levels_dbfs, silence_after
from agent_audio.demo.loopback import Loopback
from agent_audio.demo.speech import load_speech


@pytest.mark.realclock
async def test_listener_hears_speech_and_silence_after_interrupt() -> None:
    track = AgentAudioTrack(fade_out=0.2)
    speech = load_speech(None, rate=24000)[: 24000 * 4]
    async with Loopback(track) as loopback:
        turn = track.start_turn()
        await turn.push(speech, sample_rate=24000)
        turn.end()
        await asyncio.sleep(2.0)
        interrupted_at = time.monotonic()
        track.interrupt()
        await turn.wait_for_playout()
        await asyncio.sleep(0.8)
        received = loopback.listener.received()
    track.stop()
    rate = received.sample_rate
    levels = levels_dbfs(received.samples, rate)
    times = received.times()[:: rate // 100][: len(levels)]
    assert len(received.arrivals) == len(received.starts) and np.all(np.diff(received.arrivals) >= 0)
    before = levels[times < interrupted_at]
    assert np.mean(10 ** (before / 10)) > 10 ** (-35 / 10), "the listener should hear speech"
    to_silence = silence_after(times, levels, interrupted_at, float(times[-1]))
    assert to_silence <= 0.2 + 0.3
    stats = turn.stats
    assert stats.interrupted and stats.played_samples + stats.dropped_samples == stats.pushed_samples
