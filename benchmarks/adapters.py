"""One small adapter per output track measured by ``benchmarks/compare.py``.

Every adapter drives its track through the same operations, with 24 kHz mono s16
bytes in (what TTS services send), so every track does the same work:

* ``make(kind, bypass=...)``: a track of ``kind`` (``"base"``, ``"mixing"``, ``"tee"``);
  ``bypass`` makes every frame due at once (pacing bypassed) after :meth:`Adapter.start`.
* ``push`` / ``push_background``: queue speech / background bytes, as the peer's own
  API takes them.
* ``recv``: one frame; ``frame_seconds`` of audio each.
* ``interrupt``: the peer's own interrupt (None when the track has none).

Peers are imported lazily: one that is not installed is reported with the reason, not
dropped. They live in a separate virtual environment made from
``benchmarks/requirements-peers.txt``; the package itself never depends on them.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Adapter", "DueClock", "FloorTrack", "LoopWatch", "NullSink", "frame_samples", "load_adapters"]

RATE = 24000
KINDS = ("base", "mixing", "tee")

Samples = npt.NDArray[np.int16]


class DueClock:
    """Pacing bypassed: every read is a frame (plus 0.1 us, against rounding) later, so every frame is due."""

    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        self._now += 0.0200001
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("a frame that is already due must not sleep")


class LoopWatch:
    """A task ticking beside some work: :attr:`longest` is the longest the event loop was blocked, in seconds.

    Use as ``async with LoopWatch() as watch: ...``.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self._running = True
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while self._running:
            await asyncio.sleep(0)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.ensure_future(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._running = False
        assert self._task is not None
        await self._task


class NullSink:
    """An avatar sink that takes the audio and does nothing (the tee workload's one sink)."""

    async def handle_audio_input(self, data: bytes) -> None:
        pass


def frame_samples(frame: Any) -> Samples:
    """Mono int16 samples of an ``av.AudioFrame`` (the first channel of packed audio)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    return np.asarray(data.reshape(-1, channels)[:, 0] if channels > 1 else data.reshape(-1), dtype=np.int16)


class Adapter:
    """The common face of one output track implementation."""

    name = ""
    kinds: tuple[str, ...] = ("base",)
    #: Seconds of audio per recv() (None: no recv, the output is inside a native SDK).
    frame_seconds: float | None = 0.02
    #: Why it cannot run here (None: it can).
    error: str | None = None
    #: Whether it plays pushed audio (aiortc's silence track is the baseline for recv and pacing only).
    takes_audio = True
    #: A reference measured beside the peers (recv and pacing only), not a track users would pick.
    reference = False

    def make(self, kind: str, *, bypass: bool = False) -> Any:
        raise NotImplementedError

    async def start(self, track: Any, *, bypass: bool = False) -> None:
        """Called once before measuring: anchor the pacing (and move it to the past if ``bypass``)."""

    async def push(self, track: Any, data: bytes) -> None:
        raise NotImplementedError

    async def push_background(self, track: Any, data: bytes) -> None:
        raise NotImplementedError(f"{self.name} has no mixing track")

    async def recv(self, track: Any) -> Any:
        return await track.recv()

    #: The track's own interrupt, or None (see ``interrupt_note``).
    interrupt: Callable[[Any], None] | None = None
    interrupt_note = ""

    def close(self, track: Any) -> None:
        track.stop()


class AgentAudio(Adapter):
    """agent_audio's tracks, at 24 kHz output (as the peers): nothing is resampled."""

    name = "agent_audio"
    kinds = KINDS

    def make(self, kind: str, *, bypass: bool = False) -> Any:
        from agent_audio import AgentAudioTrack, MixingAgentAudioTrack, TeeAgentAudioTrack

        clock = DueClock() if bypass else None
        cls = {"base": AgentAudioTrack, "mixing": MixingAgentAudioTrack, "tee": TeeAgentAudioTrack}[kind]
        track = cls(sample_rate=RATE, clock=clock)
        if isinstance(track, TeeAgentAudioTrack):
            track.add_sink(NullSink())
        return track

    async def push(self, track: Any, data: bytes) -> None:
        await track.push(data, sample_rate=RATE)

    async def push_background(self, track: Any, data: bytes) -> None:
        await track.push_background(data, sample_rate=RATE)

    @staticmethod
    def _interrupt(track: Any) -> None:
        track.interrupt()

    interrupt = _interrupt


class VideoSDK(Adapter):
    """videosdk-agents' ``videosdk.agents.room.output_stream`` tracks (24 kHz mono, frames built on push)."""

    name = "videosdk-agents"
    kinds = KINDS

    def __init__(self) -> None:
        try:
            self._module = importlib.import_module("videosdk.agents.room.output_stream")
        except Exception as exc:  # ImportError, or a dependency failing at import
            self.error = f"not installed ({type(exc).__name__}: {exc})"

    def make(self, kind: str, *, bypass: bool = False) -> Any:
        m = self._module
        loop = asyncio.get_running_loop()
        if kind == "base":
            return m.CustomAudioStreamTrack(loop)
        if kind == "mixing":
            return m.MixingCustomAudioStreamTrack(loop)
        return m.TeeCustomAudioStreamTrack(loop, sinks=[NullSink()])

    async def start(self, track: Any, *, bypass: bool = False) -> None:
        await track.recv()  # anchors _start
        if bypass:
            track._start -= 3600.0

    async def push(self, track: Any, data: bytes) -> None:
        await track.add_new_bytes(data)

    async def push_background(self, track: Any, data: bytes) -> None:
        await track.add_background_bytes(data)

    @staticmethod
    def _interrupt(track: Any) -> None:
        track.interrupt()

    interrupt = _interrupt


class Pipecat(Adapter):
    """pipecat-ai's SmallWebRTC ``RawAudioTrack`` (10 ms frames)."""

    name = "pipecat"
    frame_seconds = 0.01
    interrupt_note = "RawAudioTrack has no interrupt: pipecat stops feeding it, and what it already holds plays out"

    def __init__(self) -> None:
        try:
            self._module = importlib.import_module("pipecat.transports.smallwebrtc.transport")
        except Exception as exc:
            self.error = f"not installed ({type(exc).__name__}: {exc})"

    def make(self, kind: str, *, bypass: bool = False) -> Any:
        return self._module.RawAudioTrack(sample_rate=RATE)

    async def start(self, track: Any, *, bypass: bool = False) -> None:
        track._start = time.time()  # its grid starts at construction; start it when recv() does, as the others
        await track.recv()
        if bypass:
            track._start -= 3600.0

    async def push(self, track: Any, data: bytes) -> None:
        track.add_audio_bytes(data)


class LiveKit(Adapter):
    """livekit's ``rtc.AudioSource``: frames go to the native SDK, which paces and sends them.

    There is no recv() to measure: pacing and the wire are inside the Rust core. The
    queue is sized to hold a whole reply (capture_frame waits for room otherwise).
    """

    name = "livekit"
    frame_seconds = None
    interrupt_note = "clear_queue(); the output is inside the native SDK, so time to quiet is not observable"

    def __init__(self) -> None:
        try:
            self._rtc = importlib.import_module("livekit.rtc")
        except Exception as exc:
            self.error = f"not installed ({type(exc).__name__}: {exc})"

    def make(self, kind: str, *, bypass: bool = False) -> Any:
        return self._rtc.AudioSource(RATE, 1, queue_size_ms=120_000)

    async def push(self, track: Any, data: bytes) -> None:
        samples = len(data) // 2
        await track.capture_frame(self._rtc.AudioFrame(data, RATE, 1, samples))

    @staticmethod
    def _interrupt(track: Any) -> None:
        track.clear_queue()

    interrupt = _interrupt

    def close(self, track: Any) -> None:
        self._closing = asyncio.ensure_future(track.aclose())  # kept: a task nobody holds may be collected


class FloorTrack:
    """The least a ``recv()``-paced track costs: a wait on the shared clock, then one new frame.

    No queue, no turns, no counters: it waits on ``clock`` until the frame is due (the
    grid anchored at the first call, 20 ms per frame, never re-anchored) and returns a new
    ``av.AudioFrame`` of silence (s16 mono, 480 samples at 24 kHz, ``pts`` in samples),
    as every aiortc track must (a frame handed to aiortc may be held by a relay or a
    recorder, so it cannot be reused).
    """

    kind = "audio"

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._anchor: float | None = None
        self._index = 0

    async def recv(self) -> Any:
        import av

        now = self._clock.now()
        if self._anchor is None:
            self._anchor = now
        due = self._anchor + self._index * 0.02
        if due > now:
            await self._clock.sleep_until(due)
        frame = av.AudioFrame(format="s16", layout="mono", samples=RATE // 50)
        frame.planes[0].update(_SILENCE)
        frame.pts = self._index * (RATE // 50)
        frame.sample_rate = RATE
        frame.time_base = _TIME_BASE
        self._index += 1
        return frame

    def stop(self) -> None:
        pass


_SILENCE = bytes(2 * RATE // 50)
_TIME_BASE = Fraction(1, RATE)


class PacingFloor(Adapter):
    """A reference, not a peer: :class:`FloorTrack` on agent_audio's clock (the shared 1 ms timers).

    Its CPU per paced frame and its largest N are what any track driven by aiortc's
    ``await track.recv()`` loop pays at least in this event loop, before doing any work of
    its own: a task wake-up, the benchmark's bookkeeping and one ``av.AudioFrame``.
    """

    name = "pacing floor"
    takes_audio = False
    reference = True
    interrupt_note = "a reference that plays silence: nothing to push, hold or interrupt"

    def make(self, kind: str, *, bypass: bool = False) -> Any:
        from agent_audio import MonotonicClock

        return FloorTrack(DueClock() if bypass else MonotonicClock())

    async def start(self, track: Any, *, bypass: bool = False) -> None:
        await track.recv()

    async def push(self, track: Any, data: bytes) -> None:
        pass  # it plays silence: a reference for recv and pacing only


class AiortcSilence(Adapter):
    """aiortc's own ``AudioStreamTrack`` (silence, 8 kHz, 20 ms): the baseline every track pays at least."""

    name = "aiortc silence"
    takes_audio = False
    interrupt_note = "plays silence: nothing to push, hold or interrupt"

    def make(self, kind: str, *, bypass: bool = False) -> Any:
        from aiortc.mediastreams import AudioStreamTrack

        return AudioStreamTrack()

    async def start(self, track: Any, *, bypass: bool = False) -> None:
        await track.recv()
        if bypass:
            track._start -= 3600.0

    async def push(self, track: Any, data: bytes) -> None:
        pass  # it plays silence: the baseline for recv and pacing only


def _quiet_peers() -> None:
    # videosdk logs every interrupt at INFO and pipecat logs through loguru at DEBUG.
    logging.getLogger("videosdk").setLevel(logging.WARNING)
    try:
        from loguru import logger  # type: ignore[import-not-found,unused-ignore]

        logger.remove()
    except ImportError:
        pass


def load_adapters() -> list[Adapter]:
    """Every adapter, in report order; peers that cannot be imported carry their ``error``."""
    _quiet_peers()
    return [AgentAudio(), VideoSDK(), Pipecat(), LiveKit(), AiortcSilence(), PacingFloor()]
