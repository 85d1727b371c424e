"""Contract with aiortc: our frames through aiortc's own encoders.

Guards: every frame the track returns is accepted by aiortc's Opus, PCMU and PCMA
encoders and its audio-level computation, at the rates and layouts aiortc supports.
The real peer connection is tested in test_loopback.py.
"""

from __future__ import annotations

import pytest
from aiortc import rtp
from aiortc.codecs.g711 import PcmaEncoder, PcmuEncoder
from aiortc.codecs.opus import OpusEncoder

from agent_audio import AgentAudioTrack
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
