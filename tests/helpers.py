"""Shared test helpers: the one frame assertion, signal makers, and a recv loop."""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import cast

import av
import numpy as np
import numpy.typing as npt

from agent_audio import AgentAudioTrack
from agent_audio.demo.speech import encode_stream

Block = npt.NDArray[np.int16]


def assert_frame(frame: object, track: AgentAudioTrack, *, pts: int | None = None) -> Block:
    """Assert ``frame`` has exactly the track's format and return its samples as ``(n, channels)``."""
    assert isinstance(frame, av.AudioFrame), f"expected av.AudioFrame, got {type(frame)!r}"
    assert frame.format.name == "s16", frame.format.name
    assert frame.format.is_packed
    assert len(frame.layout.channels) == track.channels, frame.layout.name
    assert frame.sample_rate == track.sample_rate, frame.sample_rate
    assert frame.samples == track.frame_samples, frame.samples
    assert frame.time_base == Fraction(1, track.sample_rate), frame.time_base
    if pts is not None:
        assert frame.pts == pts, f"expected pts {pts}, got {frame.pts}"
    samples = frame.to_ndarray().reshape(-1, track.channels)
    assert samples.dtype == np.int16
    return cast(Block, samples)


def ramp_signal(n: int, channels: int = 1, *, start: int = 1) -> Block:
    """Distinct non-zero int16 samples ``start, start+1, ...`` (wrapping below 30000), shape ``(n, channels)``.

    Every sample is identifiable, so a test can tell exactly which ones were played.
    """
    values = (np.arange(n, dtype=np.int64) + start - 1) % 30000 + 1
    return np.repeat(values.astype(np.int16)[:, None], channels, axis=1)


def tone(seconds: float, rate: int, *, freq: float = 440.0, amplitude: float = 0.5) -> npt.NDArray[np.float32]:
    """A float32 mono sine, shape ``(round(seconds * rate),)``."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


async def receive(track: AgentAudioTrack, frames: int) -> Block:
    """``recv()`` ``frames`` frames, assert each one's format and pts, return all samples concatenated."""
    out = []
    for _ in range(frames):
        expected_pts = track.metrics().frames_sent * track.frame_samples
        frame = await track.recv()
        out.append(assert_frame(frame, track, pts=expected_pts))
    return np.concatenate(out) if out else np.zeros((0, track.channels), np.int16)


SPEECH_SECONDS = 3.0


@functools.cache
def source_speech() -> npt.NDArray[np.float32]:
    """The first 3 s of the bundled speech, float32 mono at 24 kHz."""
    from agent_audio.demo.speech import load_speech

    return load_speech(None, rate=24000)[: round(SPEECH_SECONDS * 24000)]


@functools.cache
def encoded_speech(name: str) -> bytes:
    """3 s of the bundled speech, encoded as ``ENCODINGS[name]`` says (Ogg pages every 20 ms)."""
    return encode_stream(source_speech(), 24000, name)
