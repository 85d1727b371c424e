"""Contract with aiortc: our frames through aiortc's own encoders and a real peer connection.

Guards:
- every frame the track returns is accepted by aiortc's Opus, PCMU and PCMA encoders
  and its audio-level computation, at the rates and layouts aiortc supports;
- (real clock, marked ``realclock``) over a real RTCPeerConnection pair on this
  machine (ICE, DTLS-SRTP, Opus), the listener receives the pushed speech, and after
  ``interrupt()`` the received audio goes below -40 dBFS within fade_out + 300 ms.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from aiortc import rtp
from aiortc.codecs.g711 import PcmaEncoder, PcmuEncoder
from aiortc.codecs.opus import OpusEncoder

from agent_audio import AgentAudioTrack
from agent_audio._analysis import levels_dbfs, silence_after
from agent_audio._loopback import Loopback
from agent_audio._speech import load_speech
from agent_audio.testing import ManualClock

from helpers import tone


@pytest.mark.parametrize(("rate", "channels"), [(48000, 1), (48000, 2), (16000, 1), (8000, 2)])
async def test_frames_pass_through_aiortc_encoders(rate: int, channels: int) -> None:
    track = AgentAudioTrack(sample_rate=rate, channels=channels, clock=ManualClock())
    await track.push(tone(0.5, 24000), sample_rate=24000)
    encoders = [OpusEncoder(), PcmuEncoder(), PcmaEncoder()]
    sizes = [0, 0, 0]
    for _ in range(25):
        frame = await track.recv()
        assert rtp.compute_audio_level_dbov(frame) < 127
        for i, encoder in enumerate(encoders):
            payloads, _ = encoder.encode(frame)
            sizes[i] += sum(len(p) for p in payloads)
    assert all(size > 0 for size in sizes)
    track.stop()


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
    before = levels[times < interrupted_at]
    assert np.mean(10 ** (before / 10)) > 10 ** (-35 / 10), "the listener should hear speech"
    to_silence = silence_after(times, levels, interrupted_at, float(times[-1]))
    assert to_silence <= 0.2 + 0.3
    stats = turn.stats
    assert stats.interrupted and stats.played_samples + stats.dropped_samples == stats.pushed_samples
