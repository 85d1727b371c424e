"""Shared test helpers: the one frame assertion, signal makers, and a recv loop."""

from __future__ import annotations

import functools
import io
from fractions import Fraction
from typing import cast

import av
import numpy as np
import numpy.typing as npt

from agent_audio import AgentAudioTrack

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
        expected_pts = track._pts
        frame = await track.recv()
        out.append(assert_frame(frame, track, pts=expected_pts))
    return np.concatenate(out) if out else np.zeros((0, track.channels), np.int16)


#: name -> (format for push_encoded, codec, FFmpeg muxer, codec rate, layout)
ENCODINGS: dict[str, tuple[str, str, str, int, str]] = {
    "mp3": ("mp3", "libmp3lame", "mp3", 24000, "mono"),
    "opus": ("ogg", "libopus", "ogg", 48000, "mono"),
    "vorbis": ("ogg", "vorbis", "ogg", 24000, "stereo"),  # FFmpeg's own encoder takes stereo only
    "flac": ("flac", "flac", "flac", 24000, "mono"),
    "aac": ("aac", "aac", "adts", 24000, "mono"),
    "wav": ("wav", "pcm_s16le", "wav", 24000, "mono"),
}
SPEECH_SECONDS = 3.0


@functools.cache
def source_speech() -> npt.NDArray[np.float32]:
    """The first 3 s of the bundled speech, float32 mono at 24 kHz."""
    from agent_audio._speech import load_speech

    return load_speech(None, rate=24000)[: round(SPEECH_SECONDS * 24000)]


@functools.cache
def encoded_speech(name: str) -> bytes:
    """3 s of the bundled speech encoded with PyAV as ``ENCODINGS[name]`` says.

    Ogg pages are cut every 20 ms, as streaming TTS services send them (FFmpeg's muxer
    default is 1 s pages, which no streaming decoder can start before).
    """
    _, codec, muxer, rate, layout = ENCODINGS[name]
    buffer = io.BytesIO()
    options = {"page_duration": "20000"} if muxer == "ogg" else {}
    with av.open(buffer, "w", format=muxer, options=options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        sample_format = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
        frame = av.AudioFrame.from_ndarray(source_speech().reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 24000
        for part in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(part))
        container.mux(stream.encode(None))
    return buffer.getvalue()
