"""The main job: a scripted voice-agent conversation over a real aiortc peer connection.

Turn 1 plays to the end; turn 2 is paused for ``pause_for`` seconds (a false
interruption) and resumed; turn 3 is interrupted ``interrupt_at`` seconds in (a real
barge-in), while its TTS feeder keeps pushing stale audio that must be dropped. The
listener records what it receives; :mod:`agent_audio.demo.report` measures it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from agent_audio import (
    AgentAudioTrack,
    Interrupted,
    MixingAgentAudioTrack,
    Paused,
    PlayoutStarted,
    Resumed,
    TrackMetrics,
    Turn,
    TurnFinished,
    TurnStats,
    Underrun,
)

from .analysis import levels_dbfs, most_voiced
from .loopback import Loopback, ReceivedAudio
from .speech import bundled, load_speech, piper_chunks, sentences, turn_bounds
from .words import Chunk, Word, bundled_words, chunked, words_in

__all__ = ["FADE_OUT_RANGE", "MIN_TURN", "DemoError", "DemoOptions", "DemoRun", "run_demo", "wait_played"]

SOURCE_RATE = 24000  # Hz: what most TTS services send; the track resamples it to 48 kHz
CHUNK = 0.040  # seconds of audio per push, as a streaming TTS delivers it
SPEEDUP = 4.0  # the simulated TTS produces audio this many times faster than real time
MAX_TURN = 12.0  # seconds: long --input files are cut so the demo stays under a minute
AMBIENCE = "ambience.ogg"  # bundled bed, made by tools/make_ambience.py
#: Seconds of speech each of the three turns needs: the pause and the interrupt land
#: 1.5 s in or later, inside speech, with speech left after them.
MIN_TURN = 3.0
#: Seconds of ``fade_out`` the demo accepts (inclusive). The demo checks the fade on the
#: received audio, behind about 100 ms of receive path, with a 100 ms margin: a shorter
#: fade (0 is a hard cut, which the library allows) is all receive path and cannot pass.
FADE_OUT_RANGE = (0.1, 1.0)
#: Seconds any one step of the conversation may take (a turn's synthesis, its playout)
#: before the demo gives up with a one-line reason instead of waiting for ever.
STEP_TIMEOUT = 60.0

Chunks = AsyncIterator[Chunk]
T = TypeVar("T")


@dataclass(frozen=True)
class DemoOptions:
    """What to say and where to write.

    ``input`` is any file PyAV reads (default: the bundled sample); ``say`` is text for
    piper (the ``tts`` extra), streamed as it is synthesized. ``background`` is the bed
    mixed under the voice (default: the bundled ambience; None: no background).
    Seconds throughout.
    """

    out: Path = Path("agent_audio_demo")
    input: Path | None = None
    say: str | None = None
    background: Path | None = field(default_factory=lambda: bundled(AMBIENCE))
    fade_out: float = 0.2
    pause_at: float = 1.5
    pause_for: float = 0.6
    interrupt_at: float = 1.5
    gap: float = 0.5
    lead_in: float = 1.0
    tail: float = 1.0
    background_volume: float = 1.0


class DemoError(Exception):
    """The demo cannot run as asked (input too short, a step that never finished); one line, expected against got."""


@dataclass
class DemoRun:
    """Everything the conversation produced, for the report."""

    options: DemoOptions
    turns: list[TurnStats]
    marks: dict[str, float]
    """Monotonic seconds of ``pause``, ``resume`` and ``interrupt`` calls."""
    spans: list[tuple[float, float]]
    """Monotonic (playout started, turn finished) of each turn."""
    metrics: TrackMetrics
    received: ReceivedAudio
    log: list[str] = field(default_factory=list)
    recording: Path | None = None
    """``recording.wav``: every frame the track handed out, from the first to ``stop()``."""
    recorded_frames: int = 0
    """Frames in the recording."""
    received_frames: int = 0
    """Frames the listener received, counted once the last frame sent had time to arrive."""
    words: list[tuple[Word, ...] | None] = field(default_factory=list)
    """Per turn, the words pushed with its audio in seconds from the turn's first sample
    (None: the turn had no timed words: an ``--input`` file, or piper without alignments)."""
    interrupted_at: int | None = None
    """Turn 3's played samples (track rate) when ``interrupt()`` was called: where its fade began."""
    words_from: str | None = None
    """Where the word timings came from, for the report (None: no words)."""


async def run_demo(options: DemoOptions, progress: Callable[[str], None]) -> DemoRun:
    """Run the conversation; call ``progress`` with one line per event.

    Raises:
        DemoError: ``fade_out`` is outside :data:`FADE_OUT_RANGE`, a turn has less than
            :data:`MIN_TURN` seconds of speech, or a step took over :data:`STEP_TIMEOUT`.
        FileNotFoundError, AudioFileError: ``options.input`` is missing or not audio.
        RuntimeError: the peer connection did not come up, or ``say`` without the tts extra.
    """
    low, high = FADE_OUT_RANGE
    if not low <= options.fade_out <= high:
        raise DemoError(f"expected --fade-out from {low} to {high} s, got {options.fade_out}")
    start = time.monotonic()
    log: list[str] = []

    def say(line: str) -> None:
        line = f"[{time.monotonic() - start:6.2f} s] {line}"
        log.append(line)
        progress(line)

    sources, words_from = _sources(options)
    track = MixingAgentAudioTrack(fade_out=options.fade_out)
    if options.background is not None:
        await track.set_background(options.background, volume=options.background_volume)
    started: dict[int, float] = {}
    spans: list[tuple[float, float]] = []
    _narrate(track, say, started, spans)
    marks: dict[str, float] = {}
    say("connecting two RTCPeerConnections on this machine (ICE host candidates, DTLS-SRTP, Opus)")
    options.out.mkdir(parents=True, exist_ok=True)
    recorder = track.start_recording(options.out / "recording.wav")  # from the very first frame sent
    try:
        async with Loopback(track) as loopback:
            if options.background is not None:
                say(f"connected; background ambience alone for {options.lead_in} s")
                await asyncio.sleep(options.lead_in)
            say("turn 1 plays to the end")
            first, words = await _speak(track, sources[0])
            stats, pushed_words = [first], [words]
            await asyncio.sleep(options.gap)

            turn = track.start_turn()
            feed = _Feed(turn, sources[1])
            point = await feed.point_inside_speech(options.pause_at, after=0.2, turn_number=2)
            await _reach(turn, point, 2)
            say(f"turn 2: a false interruption {point:.2f} s in, paused for {options.pause_for} s")
            marks["pause"] = time.monotonic()
            track.pause()
            await asyncio.sleep(options.pause_for)
            marks["resume"] = time.monotonic()
            track.resume()
            stats.append(await _within(turn.wait_for_playout(), "turn 2's playout"))
            await _within(feed.task, "turn 2's speech")
            pushed_words.append(feed.timed_words())
            await asyncio.sleep(options.gap)

            turn = track.start_turn()
            feed = _Feed(turn, sources[2])
            point = await feed.point_inside_speech(options.interrupt_at, after=options.fade_out + 0.1, turn_number=3)
            await _reach(turn, point, 3)
            say(f"turn 3: a real interruption {point:.2f} s in, fading out over {options.fade_out} s")
            marks["interrupt"] = time.monotonic()
            interrupted_at = turn.stats.played_samples  # the fade begins at the next sample
            track.interrupt()
            await _within(turn.wait_for_playout(), "turn 3's fade")
            await _within(
                feed.task, "turn 3's speech"
            )  # the TTS feeder kept pushing; all of it was dropped and counted
            stats.append(turn.stats)
            pushed_words.append(feed.timed_words())
            # The background is measured without voice after the fade has ended: wait that out.
            await asyncio.sleep(max(options.tail, options.fade_out + 1.0))
            metrics = track.metrics()
            track.stop()  # the sender stops pulling frames: what was sent is what was recorded
            recording = await _within(recorder.stop(), "closing recording.wav", 10.0)
            await _drained(loopback)
            received_frames = len(loopback.listener.frames)
            received = loopback.listener.received()
    finally:  # an error or Ctrl-C: stop the frames and the recorder too
        track.stop()
    say(f"done: received {len(received.samples) / received.sample_rate:.2f} s of audio")
    return DemoRun(
        options,
        stats,
        marks,
        spans,
        metrics,
        received,
        log,
        recording,
        recorder.frames,
        received_frames,
        pushed_words,
        interrupted_at,
        words_from,
    )


async def wait_played(turn: Turn, seconds: float, *, timeout: float) -> TurnStats:
    """Wait until ``seconds`` of ``turn`` have played, or the turn finished first; return its stats then.

    The one place the demo waits for a play position (:meth:`agent_audio.Turn.wait_played`,
    resolved by the frame that reaches it), bounded by ``timeout``.

    Raises:
        asyncio.TimeoutError: neither happened within ``timeout`` seconds.
    """
    return await asyncio.wait_for(turn.wait_played(seconds), timeout)


async def _reach(turn: Turn, point: float, number: int) -> None:
    """Wait until ``point`` seconds of turn ``number`` have played (bounded); refuse a turn that ended first."""
    try:
        stats = await wait_played(turn, point, timeout=point + STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise DemoError(
            f"expected turn {number} to play {point:.2f} s within {STEP_TIMEOUT:.0f} s, it did not"
        ) from None
    if stats.played_ms < point * 1000 - 1:
        raise DemoError(
            f"expected turn {number} to play at least {point:.2f} s, got {stats.played_ms / 1000:.2f} s before it ended"
        )


async def _within(awaitable: Awaitable[T], what: str, timeout: float = STEP_TIMEOUT) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds. Raises DemoError naming ``what`` on timeout."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise DemoError(f"expected {what} to finish within {timeout:.0f} s, it did not") from None


def _narrate(
    track: AgentAudioTrack, say: Callable[[str], None], started: dict[int, float], spans: list[tuple[float, float]]
) -> None:
    def on_started(e: PlayoutStarted) -> None:
        started[e.turn_id] = time.monotonic()
        say(f"turn {e.turn_id}: playout started, time to first audio {e.time_to_first_audio * 1000:.1f} ms")

    def on_finished(e: TurnFinished) -> None:
        spans.append((started.get(e.turn_id, time.monotonic()), time.monotonic()))
        s = e.stats
        say(
            f"turn {e.turn_id}: finished, played {s.played_ms:.0f} of {s.pushed_ms:.0f} ms pushed, "
            f"dropped {s.dropped_ms:.0f} ms{' (interrupted)' if s.interrupted else ''}"
        )

    ms_per_sample = 1000.0 / track.sample_rate

    def on_interrupted(e: Interrupted) -> None:
        fade, dropped = e.fade_samples * ms_per_sample, e.dropped_samples * ms_per_sample
        say(f"turn {e.turn_id}: interrupted; {fade:.0f} ms fade tail, {dropped:.0f} ms dropped")

    def on_paused(e: Paused) -> None:
        say(f"turn {e.turn_id}: paused")

    def on_resumed(e: Resumed) -> None:
        say(f"turn {e.turn_id}: resumed after {e.paused_for * 1000:.0f} ms")

    def on_underrun(e: Underrun) -> None:
        say(f"turn {e.turn_id}: underrun after {e.played_samples * ms_per_sample:.0f} ms")

    track.on("playout_started", on_started)
    track.on("turn_finished", on_finished)
    track.on("interrupted", on_interrupted)
    track.on("paused", on_paused)
    track.on("resumed", on_resumed)
    track.on("underrun", on_underrun)


def _sources(options: DemoOptions) -> tuple[list[Callable[[], Chunks]], str | None]:
    """Three chunk sources, one per turn, and where their word timings come from (None: no words)."""
    if options.say is not None:
        return [partial(piper_chunks, text) for text in sentences(options.say, 3)], "piper's phoneme alignments"
    speech = load_speech(options.input, rate=SOURCE_RATE)
    # Only the bundled sample has word timings; a user's file is pushed without words.
    words = bundled_words() if options.input is None else None
    parts: list[tuple[npt.NDArray[np.float32], tuple[Word, ...] | None]] = []
    for start, end in turn_bounds(speech, SOURCE_RATE):
        end = min(end, start + round(MAX_TURN * SOURCE_RATE))
        turn_words = None if words is None else words_in(words, start / SOURCE_RATE, end / SOURCE_RATE)
        parts.append((speech[start:end], turn_words))
    if min(len(p) for p, _ in parts) < MIN_TURN * SOURCE_RATE:
        lengths = ", ".join(f"{len(p) / SOURCE_RATE:.1f}" for p, _ in parts)
        raise DemoError(
            f"expected speech for three turns of at least {MIN_TURN:.0f} s each in {options.input} (cut at its "
            f"longest pauses), got {len(speech) / SOURCE_RATE:.1f} s cut into {lengths} s"
        )
    source = None if words is None else "the bundled sample's word timings (data/speech.words.json)"
    return [partial(_paced, p, w) for p, w in parts], source


class _Feed:
    """A TTS stream pushed into a turn in a task, keeping a mono float copy of what it pushed."""

    def __init__(self, turn: Turn, source: Callable[[], Chunks]) -> None:
        self.blocks: list[npt.NDArray[np.float32]] = []
        self.rate = SOURCE_RATE
        self.seconds = 0.0
        self.words: list[Word] = []
        """Timed words pushed so far, in seconds from the turn's first sample."""
        self.untimed = False
        """Whether any push had no timed words (no words, or ``text=`` only)."""
        self._progress = asyncio.Event()
        self.task = asyncio.ensure_future(self._run(turn, source))

    async def _run(self, turn: Turn, source: Callable[[], Chunks]) -> None:
        try:
            async for chunk in source():
                await turn.push(chunk.audio, sample_rate=chunk.rate, words=chunk.words, text=chunk.text)
                if chunk.words is None:
                    self.untimed = True
                else:
                    self.words += [(text, self.seconds + start, self.seconds + end) for text, start, end in chunk.words]
                mono = chunk.audio.astype(np.float32).reshape(len(chunk.audio), -1).mean(axis=1)
                self.blocks.append(mono / 32768.0 if chunk.audio.dtype == np.int16 else mono)
                self.rate = chunk.rate
                self.seconds += chunk.seconds
                self._progress.set()
        finally:
            turn.end()
            self._progress.set()

    def timed_words(self) -> tuple[Word, ...] | None:
        """The words pushed, in seconds from the turn's first sample; None if any push had no timings."""
        return None if self.untimed else tuple(self.words)

    async def point_inside_speech(self, target: float, *, after: float, turn_number: int) -> float:
        """The most voiced instant within 2 s after ``target`` seconds of the turn, from what was pushed.

        Loud 150 ms before (the listener hears a frame about 100 ms after it leaves the
        track: aiortc's jitter buffer) and ``after`` seconds after, so the measured gap or
        fade is not hidden by a pause between words. Waits (at most :data:`STEP_TIMEOUT`)
        until that much is synthesized.

        Raises:
            DemoError: the turn has less than :data:`MIN_TURN` seconds of speech, or
                its synthesis took too long.
        """

        async def enough() -> None:
            while not self.task.done() and self.seconds < target + 2.0 + after:
                self._progress.clear()
                await self._progress.wait()

        await _within(enough(), f"turn {turn_number}'s first {target + 2.0 + after:.1f} s of speech")
        if self.task.done() and self.seconds < MIN_TURN:
            raise DemoError(
                f"expected at least {MIN_TURN:.0f} s of speech in turn {turn_number}, got {self.seconds:.1f} s "
                "(--say: give three longer sentences)"
            )
        audio = np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)
        earliest = min(target, max(0.2, self.seconds - after - 0.5))
        return most_voiced(levels_dbfs(audio, self.rate), start=earliest, search=2.0, before=0.15, after=after)


async def _paced(audio: npt.NDArray[np.float32], words: tuple[Word, ...] | None) -> Chunks:
    for chunk in chunked(audio, SOURCE_RATE, round(CHUNK * SOURCE_RATE), words):
        yield chunk
        await asyncio.sleep(CHUNK / SPEEDUP)


async def _speak(track: AgentAudioTrack, source: Callable[[], Chunks]) -> tuple[TurnStats, tuple[Word, ...] | None]:
    turn = track.start_turn()
    feed = _Feed(turn, source)
    await _within(feed.task, "turn 1's speech")
    return await _within(turn.wait_for_playout(), "turn 1's playout"), feed.timed_words()


async def _drained(loopback: Loopback, *, quiet: float = 0.2, limit: float = 2.0) -> None:
    """Wait until no frame has arrived for ``quiet`` seconds (frames still in flight), at most ``limit``."""
    deadline = time.monotonic() + limit
    count = -1
    while count != len(loopback.listener.frames) and time.monotonic() < deadline:
        count = len(loopback.listener.frames)
        await asyncio.sleep(quiet)
