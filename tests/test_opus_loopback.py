"""Opus output over a real aiortc peer connection on this machine, against the frame path.

Guards (marked ``realclock``): with :func:`agent_audio.enable_opus_output` the listener
receives the speech; the RTP timestamps it sees never go back and step only by whole
frames, through a pause, a resume and an interrupt; digital silence (before the reply,
during the pause, after the fade) decodes to exact zeros; the received audio goes silent
after ``interrupt()`` as fast as on the frame path; closing the peer connection stops
the track.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from agent_audio import AgentAudioTrack, OpusStats, TurnStats, enable_opus_output
from agent_audio.demo.analysis import levels_dbfs, silence_after
from agent_audio.demo.speech import load_speech

FADE = 0.2
FRAME = 960  # 20 ms at 48 kHz, the RTP clock of Opus


@dataclass
class Heard:
    """What the listener received: per frame its pts (RTP time), arrival time and int16 mono samples."""

    pts: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    frames: list[npt.NDArray[np.int16]] = field(default_factory=list)

    async def read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame) and frame.pts is not None
            self.pts.append(int(frame.pts))
            self.arrivals.append(time.monotonic())
            self.frames.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0].copy())


@dataclass
class Session:
    heard: Heard
    interrupted_at: float
    paused_at: float
    resumed_at: float
    turn: TurnStats
    opus: OpusStats | None
    track_state: str


async def speak_over_a_peer_connection(*, encoded: bool) -> Session:
    """One reply with a pause, a resume and an interrupt, sent as frames or as the track's own Opus packets."""
    config = RTCConfiguration(iceServers=[])  # host candidates only: aioice never offers 127.0.0.1
    agent, remote = RTCPeerConnection(config), RTCPeerConnection(config)
    heard = Heard()
    tasks: list[asyncio.Task[None]] = []
    remote.on("track", lambda track: tasks.append(asyncio.ensure_future(heard.read(track))))
    connected = asyncio.Event()

    @agent.on("connectionstatechange")
    def _state() -> None:
        if agent.connectionState == "connected":
            connected.set()

    track = AgentAudioTrack(fade_out=FADE)
    sender = agent.addTrack(track)
    await agent.setLocalDescription(await agent.createOffer())
    if "typ host" not in agent.localDescription.sdp:
        pytest.skip("no ICE host candidate: this machine has no network interface besides loopback")
    await remote.setRemoteDescription(agent.localDescription)
    await remote.setLocalDescription(await remote.createAnswer())
    await agent.setRemoteDescription(remote.localDescription)
    view = enable_opus_output(agent, sender) if encoded else None  # after the answer, before the first frame
    try:
        await asyncio.wait_for(connected.wait(), 10)
        await asyncio.sleep(0.4)  # silence before the reply
        turn = track.start_turn()
        await turn.push(load_speech(None, rate=24000)[: 24000 * 4], sample_rate=24000)
        turn.end()
        await asyncio.sleep(1.0)
        paused_at = time.monotonic()
        track.pause()
        await asyncio.sleep(0.6)
        resumed_at = time.monotonic()
        track.resume()
        await asyncio.sleep(1.0)
        interrupted_at = time.monotonic()
        track.interrupt()
        await turn.wait_for_playout()
        await asyncio.sleep(0.8)
    finally:
        await agent.close()
        await remote.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Session(
        heard=heard,
        interrupted_at=interrupted_at,
        paused_at=paused_at,
        resumed_at=resumed_at,
        turn=turn.stats,
        opus=None if view is None else view.encoder.stats(),
        track_state=track.readyState,
    )


def zero_runs(samples: npt.NDArray[np.int16]) -> list[tuple[int, int]]:
    """(start, length) of every run of exact zeros, in samples."""
    padded = np.concatenate([[1], samples != 0, [1]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def to_zeros(session: Session) -> float:
    """Seconds from ``interrupt()`` to the arrival of the first sample of the final run of exact zeros."""
    samples = np.concatenate(session.heard.frames)
    start, _ = zero_runs(samples)[-1]
    return session.heard.arrivals[start // FRAME] + (start % FRAME) / 48000 - session.interrupted_at


def to_silence(session: Session) -> float:
    heard = session.heard
    samples = np.concatenate(heard.frames).astype(np.float64) / 32768.0
    levels = levels_dbfs(samples, 48000)
    starts = np.arange(len(heard.frames)) * FRAME
    arrivals = np.asarray(heard.arrivals)
    window = np.arange(len(levels)) * 480  # levels_dbfs's 10 ms windows
    frame_of = np.searchsorted(starts, window, side="right") - 1
    times = arrivals[frame_of] + (window - starts[frame_of]) / 48000
    return silence_after(times, levels, session.interrupted_at, float(times[-1]))


@pytest.mark.realclock
async def test_opus_output_over_a_peer_connection_keeps_rtp_time_and_silence_exact() -> None:
    opus = await speak_over_a_peer_connection(encoded=True)
    frames = await speak_over_a_peer_connection(encoded=False)
    heard = opus.heard
    assert len(heard.frames) > 150, "the listener should receive about 4 s of audio"
    steps = np.diff(np.asarray(heard.pts))
    assert (steps > 0).all() and (steps % FRAME == 0).all(), f"RTP time must step by whole frames, got {set(steps)}"
    assert np.mean(steps == FRAME) > 0.98  # a lost packet at most, here and there
    samples = np.concatenate(heard.frames)
    assert levels_dbfs(samples.astype(np.float64) / 32768, 48000).max() > -25, "the listener should hear speech"
    runs = zero_runs(samples)
    assert runs[0][0] == 0 and runs[0][1] >= 0.2 * 48000, "silence before the reply decodes to exact zeros"
    assert runs[-1][0] + runs[-1][1] == len(samples) and runs[-1][1] >= 0.4 * 48000, "silence after the fade"
    pause = 0.6 - 0.005 - 0.08  # the pause minus its ramp, the hangover and the codec's lookahead
    assert any(length >= pause * 48000 for start, length in runs[1:-1]), "silence in the pause is exact zeros"
    assert opus.opus is not None and opus.opus.silence > 20
    assert opus.turn.interrupted and opus.turn.played_samples + opus.turn.dropped_samples == opus.turn.pushed_samples
    assert opus.track_state == "ended"  # closing the peer connection stopped the view, hence the track
    # Below -40 dBFS within the fade plus 300 ms, as on the frame path (tests/test_loopback.py).
    assert to_silence(opus) <= FADE + 0.3 and to_silence(frames) <= FADE + 0.3
    # The fade ends in exact zeros at the same moment: the -40 dBFS crossing itself moves by a
    # frame or two with where in a word the interrupt lands, so the exact end is compared.
    opus_zeros, frames_zeros = to_zeros(opus), to_zeros(frames)
    assert opus_zeros <= frames_zeros + 0.03, f"opus {opus_zeros:.3f} s, frames {frames_zeros:.3f} s"
