"""``AgentAudioTrack``: the aiortc audio track a voice agent speaks through.

A thin shell around :class:`~agent_audio._engine.PlayoutEngine`: it paces frames
on an injected clock, wraps samples into :class:`av.AudioFrame`, turns engine
events into pyee events, and keeps the metrics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ._clock import Clock, MonotonicClock
from ._decode import DEMUXERS
from ._encoded import EncodedStream
from ._engine import EventKind, PlayoutEngine
from ._errors import AgentAudioError, InvalidAudioError, TrackClosedError, TurnClosedError
from ._events import Interrupted, Paused, PlayoutStarted, Resumed, TurnFinished, Underrun
from ._format import AudioFormat
from ._input import InputNormalizer, PushData
from ._pacer import Pacer
from ._recorder import Recorder
from ._stats import TrackMetrics
from ._turn import Turn

__all__ = ["PAUSE_RAMP", "PUSH_SLICE", "AgentAudioTrack"]

logger = logging.getLogger(__name__)

#: Seconds of the linear pause/resume ramp: long enough not to click, short enough
#: that a pause sounds immediate.
PAUSE_RAMP = 0.005
#: Seconds of input converted between two yields to the event loop in a large push:
#: resampling 0.25 s with PyAV takes about 0.1-0.3 ms here.
PUSH_SLICE = 0.25
_TTFA_KEPT = 64  # turns whose time to first audio metrics() reports

Block = npt.NDArray[np.int16]


class AgentAudioTrack(MediaStreamTrack):
    """An aiortc audio track for an agent's speech, with turns, pause/resume and interrupt.

    Output: packed ``s16`` frames of ``frame_duration`` seconds at ``sample_rate`` Hz with
    ``channels`` channels (FFmpeg's default layout: ``"mono"``, ``"stereo"``...), ``pts``
    counting samples per channel and ``time_base = Fraction(1, sample_rate)``, as aiortc's
    encoders expect. The format never changes during the track's life. Frames are paced
    on ``clock``: frame *n* is due ``n * frame_duration`` seconds after the first ``recv()``.

    Args:
        sample_rate: output rate in Hz. 48000 (default) is the rate aiortc's Opus
            encoder works at, so nothing is resampled on the way out.
        channels: output channel count, 1 to 8 (aiortc's encoders take 1 or 2).
        frame_duration: seconds per frame (default 0.020, aiortc's ``AUDIO_PTIME``);
            must be a whole number of samples at ``sample_rate``.
        fade_out: seconds of queued speech played under the interrupt fade (exponential,
            0 dB to -60 dB, ending on exact zero). 0 cuts at the next frame boundary.
            The 0.2 s default is what users of other agent frameworks ask for
            (livekit/agents issue 6165: 100-250 ms; videosdk-agents uses 0.4 s).
        speaking_grace: seconds for which :attr:`is_speaking` stays True across a gap
            in a turn's audio (streaming TTS delivers in bursts).
        clock: where time comes from; default :class:`~agent_audio.MonotonicClock`.
            Tests pass :class:`agent_audio.testing.ManualClock`.
        max_queued: seconds of queued speech (all turns) above which :meth:`push`,
            :meth:`push_encoded` and :meth:`EncodedStream.push` wait (backpressure);
            None (default) never waits. TTS services synthesize much faster than real
            time, so unbounded, a long reply sits in memory and is paid for even when
            the user interrupts after a second; a bound of a few seconds keeps both
            small (fastrtc users hand-rolled a 1 s cap for the same reason). A waiting
            push returns at once when its turn is interrupted; what it still held is
            dropped and counted.

    Raises:
        InvalidAudioError: an option is out of range (message names expected and got).

    Events (pyee; payloads are frozen dataclasses from :mod:`agent_audio`):
    ``"playout_started"`` (:class:`PlayoutStarted`), ``"turn_finished"``
    (:class:`TurnFinished`), ``"interrupted"`` (:class:`Interrupted`), ``"paused"``
    (:class:`Paused`), ``"resumed"`` (:class:`Resumed`), ``"underrun"`` (:class:`Underrun`).
    They are scheduled with ``loop.call_soon``, never run inside ``recv()``; an
    exception in a handler is logged, not raised.

    Subclasses override hooks (:meth:`_process_output`, :meth:`_voice_queued`), never
    :meth:`recv`. All counters live in the engine, out of a hook's reach.

    Thread safety: like every asyncio object, call it from its event loop's thread. A
    producer on another thread uses :meth:`push_threadsafe` (ordered per producer) and
    controls with ``loop.call_soon_threadsafe(track.interrupt)``.
    """

    kind = "audio"

    def __init__(
        self,
        *,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_duration: float = 0.020,
        fade_out: float = 0.2,
        speaking_grace: float = 0.2,
        clock: Clock | None = None,
        max_queued: float | None = None,
    ) -> None:
        super().__init__()
        self._format = AudioFormat.for_track(sample_rate=sample_rate, channels=channels, frame_duration=frame_duration)
        for name, value in (("fade_out", fade_out), ("speaking_grace", speaking_grace)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidAudioError(f"expected {name} >= 0 seconds, got {value!r}")
        if max_queued is not None and (
            not isinstance(max_queued, (int, float)) or not math.isfinite(max_queued) or max_queued <= 0
        ):
            raise InvalidAudioError(f"expected max_queued > 0 seconds or None, got {max_queued!r}")
        self._fade_out = float(fade_out)
        self._max_queued = None if max_queued is None else round(max_queued * sample_rate)
        self._room: asyncio.Event | None = None  # set while a push waits for the queue to drain
        self._streams: dict[int, EncodedStream] = {}  # turn id -> its encoded stream still decoding
        self._decode_errors = 0
        self._recorder: Recorder | None = None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._speaking_grace = float(speaking_grace)
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._engine = PlayoutEngine(
            channels=channels,
            fade_samples=round(fade_out * sample_rate),
            ramp_samples=round(PAUSE_RAMP * sample_rate),
        )
        self._pacer = Pacer(self._format.frame_duration)
        self._av_format = av.AudioFormat("s16")
        self._av_layout = av.AudioLayout(self._format.layout)
        self._time_base = self._format.time_base
        self._handles: dict[int, Turn] = {}  # unfinished turns
        self._current: Turn | None = None
        self._push_lock = asyncio.Lock()
        self._pending_events: list[tuple[str, object]] = []
        self._flush_scheduled = False
        self._paused_at = 0.0
        self._pause_deadline: float | None = None
        self._pause_timeout_action: Literal["resume", "interrupt"] = "resume"
        self._last_voiced_at: float | None = None
        self._pts = 0
        self._frames_sent = 0
        self._fault_logged = False
        self._ttfa: OrderedDict[int, float] = OrderedDict()
        self._garbage: deque[deque[Any]] = deque()  # dropped chunks, released a few at a time
        self.on("error", self._log_handler_error)

    # -- format ----------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""
        return self._format.sample_rate

    @property
    def channels(self) -> int:
        """Output channel count."""
        return self._format.channels

    @property
    def frame_samples(self) -> int:
        """Samples per channel in each frame ``recv()`` returns."""
        return self._format.frame_samples

    @property
    def fade_out(self) -> float:
        """Seconds of the interrupt fade."""
        return self._fade_out

    # -- turns -----------------------------------------------------------------

    def start_turn(self) -> Turn:
        """Start a new agent reply and return its handle.

        An open current turn is ended first (its queued audio still plays; the new
        turn's audio follows it, or follows an interrupt's fade tail).

        Raises:
            TrackClosedError: the track was stopped.
        """
        self._check_live()
        return self._start_turn(InputNormalizer(self._format))

    def end_turn(self, turn: Turn | None = None) -> None:
        """Mark synthesis of ``turn`` (default: the current turn) complete.

        The turn finishes, with one ``turn_finished`` event, once its queued audio
        has played. The resampler's tail is queued first. No-op if already ended.
        """
        turn = turn if turn is not None else self._current
        if turn is None or turn._state.ended:
            return
        stream = self._streams.get(turn.id)
        if stream is not None:
            stream.end()  # its decoder's tail still comes: the turn completes when it has
        state = turn._state
        if not state.pushing:
            self._flush_tail(turn)
            self._synthesis_complete(turn)
        self._engine.end_turn(state)
        self._dispatch(self._clock.now())

    @property
    def current_turn(self) -> Turn | None:
        """The most recently started turn (it may be finished), or None before the first."""
        return self._current

    async def push(
        self,
        data: PushData,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
    ) -> None:
        """Queue speech for playout.

        Args:
            data: one of
                * ``bytes``/``bytearray``/``memoryview``: s16 little-endian interleaved PCM.
                  A chunk may end mid-sample; the partial sample waits for the next push.
                * ``numpy.ndarray``: int16, or float32/float64 in [-1, 1] (peaks up to 2.0
                  are clipped; larger ones are rejected), shape ``(n,)`` for mono or
                  ``(n, channels)``.
                * ``av.AudioFrame`` of any sample format, rate and layout.
            sample_rate: rate of bytes or array ``data`` in Hz; default the track's. For an
                ``av.AudioFrame`` it must be None or equal the frame's own rate.
            channels: channel count of bytes input (default the track's); for arrays,
                checked against the shape.
            turn: the turn to push to. Default: the current turn if it is open or was
                interrupted, else a new turn is started. Audio for an interrupted turn
                is dropped and counted, never played.

        Anything not at the track format is resampled with PyAV's ``AudioResampler``,
        keeping its state across the pushes of a turn. Cost is linear in the samples
        pushed; a large push is converted in 0.25 s slices, yielding to the event loop
        between them.

        With ``max_queued`` set, waits before each 0.25 s slice while more than that is
        queued, and returns at once if the turn is interrupted meanwhile.

        Raises:
            InvalidAudioError: malformed input (message names expected and got), or the
                turn's encoded stream is still decoding (its audio and this push would
                interleave); nothing that was queued changes.
            TurnClosedError: ``turn`` was ended and not interrupted.
            TrackClosedError: the track was stopped.
        """
        self._check_live()
        if turn is not None and turn._track is not self:
            raise InvalidAudioError(f"expected a Turn of this track, got {turn!r} of another track")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        async with self._push_lock:
            self._check_live()
            handle = turn if turn is not None else self._turn_for_push()
            stream = None if handle is None else self._streams.get(handle.id)
            if stream is not None:
                raise InvalidAudioError(
                    f"expected PCM pushes to a turn without an encoded stream decoding, got turn {stream.turn.id} "
                    f"decoding {stream.format!r}; push to its stream, or end it and wait for stream.finished"
                )
            if handle is not None and handle._state.ended and not handle._state.interrupted:
                raise TurnClosedError(
                    f"expected an open turn, got turn {handle.id}, already ended "
                    "(end_turn() or a newer start_turn()); start a new turn"
                )
            normalizer = handle._normalizer if handle is not None else InputNormalizer(self._format)
            prepared = normalizer.prepare(data, sample_rate=sample_rate, channels=channels)
            if handle is None:
                handle = self._start_turn(normalizer)
            state = handle._state
            state.pushing += 1
            try:
                step = max(1, round(prepared.sample_rate * PUSH_SLICE))
                big = prepared.source_samples > step
                for block in normalizer.convert(prepared, slice_samples=step):
                    if self._max_queued is not None:
                        await self._wait_for_room(handle)
                    self._enqueue(handle, block)
                    if big:
                        await asyncio.sleep(0)  # more than one slice: let the loop run between them
                        if self.readyState != "live":
                            break
            finally:
                self._pushing_done(handle)

    def _pushing_done(self, turn: Turn) -> None:
        """One push (or encoded stream) of ``turn`` is over; complete the turn if it was the last."""
        state = turn._state
        state.pushing -= 1
        if state.ended and not state.pushing:
            self._flush_tail(turn)
            self._synthesis_complete(turn)
            self._engine.settle(state)
            self._dispatch(self._clock.now())

    async def _wait_for_room(self, turn: Turn) -> None:
        """Backpressure: wait while more than ``max_queued`` is queued, unless ``turn`` is interrupted."""
        limit = self._max_queued
        if limit is None:
            return
        while len(self._engine.queue) > limit and not turn._state.interrupted and self.readyState == "live":
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()

    def _wake_pushers(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    async def push_encoded(
        self,
        chunk: bytes | bytearray | memoryview,
        *,
        format: str,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
    ) -> None:
        """Queue the next chunk of an encoded TTS stream (split anywhere) for playout.

        Bytes for an interrupted turn are discarded without being decoded. The chunk
        goes to the turn's open :class:`EncodedStream`, opened on the first
        call (see :meth:`open_encoded` for the formats and what runs where). The stream
        ends, and the decoder's tail is queued, when the turn ends
        (:meth:`end_turn`). For several streams in one turn (one TTS request per
        sentence, each with its own header), use :meth:`open_encoded` and
        :meth:`EncodedStream.end`.

        Raises:
            InvalidAudioError: unknown ``format``, a different format than the turn's
                open stream, ``sample_rate`` missing for ``"pcm_s16le"``, or given for a
                format that carries its own.
            TurnClosedError: ``turn`` was ended and not interrupted.
            TrackClosedError: the track was stopped.
        """
        self._check_live()
        handle = turn if turn is not None else self._turn_for_push()
        if handle is not None and handle._state.interrupted:
            if format not in DEMUXERS:
                raise InvalidAudioError(f"expected format in {list(DEMUXERS)}, got {format!r}")
            return  # a stale TTS task: its bytes are discarded undecoded
        stream = None if handle is None else self._streams.get(handle.id)
        if stream is None or stream.ended:
            stream = self.open_encoded(format, sample_rate=sample_rate, channels=channels, turn=handle)
        elif stream.format != format:
            raise InvalidAudioError(
                f"expected format {stream.format!r} (turn {stream.turn.id}'s open stream), got {format!r}"
            )
        await stream.push(chunk)

    def open_encoded(
        self,
        format: str,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
    ) -> EncodedStream:
        """Open an encoded stream for ``turn`` (default: the current open turn, or a new one).

        Args:
            format: one of ``"mp3"``, ``"ogg"`` (Opus or Vorbis in Ogg; ``"opus"`` is
                the same), ``"flac"``, ``"aac"`` (ADTS; ``"adts"`` is the same), ``"wav"``
                (16-bit PCM) or ``"pcm_s16le"`` (raw s16 little-endian interleaved).
            sample_rate: Hz, required for ``"pcm_s16le"``, refused for the others.
            channels: channel count for ``"pcm_s16le"`` (default the track's).
            turn: the turn to decode into.

        The turn does not finish while its stream is open: end the stream
        (:meth:`EncodedStream.end`) or the turn (which ends the stream).

        Raises:
            InvalidAudioError: unknown ``format`` or wrong ``sample_rate``/``channels``;
                or the turn already has a stream that is still decoding.
            TurnClosedError: ``turn`` was ended and not interrupted.
            TrackClosedError: the track was stopped.
        """
        self._check_live()
        if turn is not None and turn._track is not self:
            raise InvalidAudioError(f"expected a Turn of this track, got {turn!r} of another track")
        if turn is not None and turn._state.ended and not turn._state.interrupted:
            raise TurnClosedError(f"expected an open turn, got turn {turn.id}, already ended")
        handle = turn if turn is not None else self._turn_for_push()
        if handle is not None and handle.id in self._streams:
            raise InvalidAudioError(
                f"expected one encoded stream at a time per turn, got a second while turn {handle.id}'s "
                f"{self._streams[handle.id].format!r} stream is still decoding"
            )
        if handle is None:
            handle = self.start_turn()
        return EncodedStream(self, handle, format, sample_rate=sample_rate, channels=channels)

    def push_threadsafe(
        self,
        data: PushData,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
        format: str | None = None,
    ) -> concurrent.futures.Future[None]:
        """Push from any thread: :meth:`push` (or :meth:`push_encoded` with ``format``) on the track's loop.

        Calls from one thread are queued in call order (each one is scheduled with
        ``loop.call_soon_threadsafe`` and pushes take the track's push lock first come,
        first served), so every producer's audio keeps its order. ``data`` is used after
        this returns: do not reuse its buffer.

        Returns:
            A :class:`concurrent.futures.Future` that resolves when the audio is queued
            (or raises what :meth:`push` raised). Do not wait on it from the loop's thread.

        Raises:
            RuntimeError: the track was created outside a running event loop and has not
                been used on one yet, so there is no loop to hand the push to.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("expected a track created (or used) on a running event loop, got none to push to")
        if format is None:
            coro = self.push(data, sample_rate=sample_rate, channels=channels, turn=turn)
        else:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise InvalidAudioError(f"expected encoded bytes with format={format!r}, got {type(data).__name__}")
            coro = self.push_encoded(data, format=format, sample_rate=sample_rate, channels=channels, turn=turn)
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def start_recording(self, path: str | Path, *, format: str | None = None) -> Recorder:
        """Record every frame :meth:`recv` hands out from now on (what the listener hears).

        Args:
            path: file to write; replaced if it exists.
            format: ``"wav"`` (s16 PCM at the track format) or ``"ogg"`` (Opus, 48 kHz);
                default from the suffix of ``path``.

        The hot path pays one copy of the frame and a deque append (well under 5 us);
        encoding and writing run on a worker thread. Stop with :meth:`Recorder.stop`.

        Raises:
            AgentAudioError: a recording is already running on this track.
            InvalidAudioError: unknown ``format``.
        """
        if self._recorder is not None and not self._recorder.stopped:
            raise AgentAudioError(f"expected no recording running, got one to {self._recorder.path}")
        recorder = Recorder(path, self._format, format=format)
        self._recorder = recorder
        return recorder

    def _stream_opened(self, stream: EncodedStream) -> None:
        self._streams[stream.turn.id] = stream
        stream.turn._state.pushing += 1

    def _stream_closed(self, stream: EncodedStream) -> None:
        if self._streams.get(stream.turn.id) is stream:
            del self._streams[stream.turn.id]
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._pushing_done(stream.turn)

    # -- control ---------------------------------------------------------------

    def pause(self, *, timeout: float | None = None, on_timeout: Literal["resume", "interrupt"] = "resume") -> None:
        """Go quiet at once for a possible false interruption, keeping the queue.

        From the next frame the voice ramps down over ``PAUSE_RAMP`` (5 ms) of queued
        samples, then silence is sent while the clock runs on; pushes keep queueing.
        No-op if already paused.

        Args:
            timeout: seconds after which the pause decides by itself if neither
                :meth:`resume` nor :meth:`interrupt` was called; None waits forever.
                Checked at frame boundaries.
            on_timeout: ``"resume"`` or ``"interrupt"``.

        Raises:
            InvalidAudioError: ``timeout`` is negative or not finite, or ``on_timeout``
                is not one of the two actions.
        """
        if timeout is not None and (not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout < 0):
            raise InvalidAudioError(f"expected timeout >= 0 seconds or None, got {timeout!r}")
        if on_timeout not in ("resume", "interrupt"):
            raise InvalidAudioError(f"expected on_timeout 'resume' or 'interrupt', got {on_timeout!r}")
        if not self._engine.pause():
            return
        now = self._clock.now()
        self._paused_at = now
        self._pause_deadline = None if timeout is None else now + timeout
        self._pause_timeout_action = on_timeout
        self._on_pause()
        self._emit_later("paused", Paused(turn_id=self._current_id()))

    def resume(self) -> None:
        """Carry on from the exact sample where :meth:`pause` stopped, ramping up over 5 ms.

        Nothing is lost and nothing repeated. No-op if not paused.
        """
        if not self._engine.resume():
            return
        self._pause_deadline = None
        self._on_resume()
        paused_for = self._clock.now() - self._paused_at
        self._emit_later("resumed", Resumed(turn_id=self._current_id(), paused_for=paused_for))

    def interrupt(self) -> None:
        """Stop speaking: a real interruption (barge-in). Does not close the track.

        From the next frame, the next ``fade_out`` seconds of queued speech play under
        an exponential fade from 0 dB to -60 dB ending on exact zero; everything after
        is dropped and counted, and audio still being pushed for the interrupted turns
        is dropped too. While paused, what is queued is dropped at once and the pause
        ends. A fade already running is not restarted. No-op when nothing is playing
        or queued. Costs O(chunks in the fade window), whatever is queued.
        """
        result = self._engine.interrupt()
        if not result.turns:
            return
        self._pause_deadline = None
        resamplers: deque[object] = deque()
        for state in result.turns:
            stream = self._streams.get(state.id)
            if stream is not None:
                stream._abort()
            handle = self._handles.get(state.id)
            resampler = None if handle is None else handle._normalizer.reset()  # no tail for an interrupted turn
            if resampler is not None:
                resamplers.append(resampler)
        self._release_later(result.garbage)
        self._release_later(resamplers)
        self._wake_pushers()
        self._on_interrupt()
        ids = tuple(state.id for state in result.turns)
        self._emit_later(
            "interrupted",
            Interrupted(
                turn_id=ids[-1], turn_ids=ids, fade_samples=result.fade_samples, dropped_samples=result.dropped
            ),
        )
        self._dispatch(self._clock.now())

    # -- state -----------------------------------------------------------------

    @property
    def is_paused(self) -> bool:
        """Whether :meth:`pause` is in effect."""
        return self._engine.paused

    @property
    def is_speaking(self) -> bool:
        """Whether the agent is audibly speaking.

        True when the last frame carried voice, or when the current turn is open and
        its last voiced frame left less than ``speaking_grace`` seconds ago (bridging
        gaps in streaming TTS). False while paused.
        """
        engine = self._engine
        if engine.paused:
            return False
        if engine.last_voiced:
            return True
        turn = engine.current
        if turn is None or not turn.accepts_audio or self._last_voiced_at is None:
            return False
        return self._clock.now() - self._last_voiced_at < self._speaking_grace

    def snapshot_playback(self) -> tuple[int, int]:
        """(played, pushed) samples per channel of the current turn; (0, 0) before any."""
        state = self._engine.current
        return (0, 0) if state is None else (state.played, state.pushed)

    def metrics(self) -> TrackMetrics:
        """A snapshot of the pacing and queue metrics."""
        pacer = self._pacer
        return TrackMetrics(
            frames_sent=self._frames_sent,
            late_frames=pacer.late_frames,
            reanchors=pacer.reanchors,
            underruns=self._engine.underruns,
            max_lateness=pacer.max_lateness,
            queued_samples=len(self._engine.queue),
            sample_rate=self.sample_rate,
            time_to_first_audio=dict(self._ttfa),
            decode_errors=self._decode_errors,
        )

    # -- aiortc ----------------------------------------------------------------

    async def recv(self) -> av.AudioFrame:
        """The next frame, when it is due on the pacing grid.

        Returns:
            An :class:`av.AudioFrame`: packed s16, ``frame_samples`` samples per channel,
            ``pts`` continuous in samples, ``time_base = 1/sample_rate``. Silence when
            nothing is queued (underrun or idle) or while paused. Never None, never
            mutated after it is returned.

        Raises:
            MediaStreamError: the track was stopped (aiortc ends the sender). Nothing
                else: an internal fault is logged once with its traceback and the
                frame is silence.
        """
        if self.readyState != "live":
            raise MediaStreamError
        try:
            clock = self._clock
            now = clock.now()
            due = self._pacer.due(now)
            if due > now:  # a frame already due goes out at once, without yielding
                await clock.sleep_until(due)
                now = clock.now()
                if self.readyState != "live":
                    raise MediaStreamError
            return self._next_frame(now, due)
        except MediaStreamError:
            raise
        except Exception:
            if not self._fault_logged:
                self._fault_logged = True
                logger.exception("agent_audio: fault while producing a frame; sending silence")
            return self._build_frame(np.zeros((self.frame_samples, self.channels), dtype=np.int16))

    def stop(self) -> None:
        """End the track: drop what is queued, finish every turn, then end as aiortc does.

        Encoded streams still decoding are aborted, and a recording is closed.
        Unfinished turns get their ``turn_finished`` (with ``interrupted=True``) and
        their :meth:`Turn.wait_for_playout` returns. Pending events are emitted before
        aiortc removes all listeners.
        """
        if self.readyState == "live":
            for stream in list(self._streams.values()):
                stream._abort()
            if self._recorder is not None:
                self._recorder.close()  # the file is finished; recorder.stop() still waits for it
            self._wake_pushers()
            self._engine.interrupt(cut=True)
            self._garbage.clear()
            self._dispatch(self._clock.now())
            self._flush_events()
        super().stop()

    # -- hooks for subclasses --------------------------------------------------

    def _process_output(self, voice: Block) -> Block:
        """Hook: turn the voice block into what goes on the wire.

        Args:
            voice: int16, shape ``(frame_samples, channels)``, at the track format;
                possibly a read-only view; do not write to it.

        Returns:
            int16, C-contiguous, the same shape. The base returns ``voice``.
        """
        return voice

    def _voice_queued(self, turn: Turn, samples: Block) -> None:
        """Hook: ``samples`` (int16, ``(n, channels)``, track format) were queued for ``turn``.

        Called in push order, only for audio that will be played (not for audio
        dropped because its turn was interrupted). Do not write to ``samples``.
        """

    def _on_pause(self) -> None:
        """Hook: :meth:`pause` took effect (not called for a no-op pause)."""

    def _on_resume(self) -> None:
        """Hook: :meth:`resume` took effect (also when a pause timed out into a resume)."""

    def _on_interrupt(self) -> None:
        """Hook: :meth:`interrupt` stopped at least one turn (also a timed-out pause)."""

    def _on_turn_end(self, turn: Turn) -> None:
        """Hook: synthesis of ``turn`` is complete and all its audio was queued.

        Called once per turn that was not interrupted, after the last
        :meth:`_voice_queued` for it (the resampler's tail included).
        """

    # -- internals -------------------------------------------------------------

    def _synthesis_complete(self, turn: Turn) -> None:
        if not turn._state.interrupted:
            self._on_turn_end(turn)

    def _next_frame(self, now: float, due: float) -> av.AudioFrame:
        self._pacer.handed_out(now, due)
        if self._pause_deadline is not None and now >= self._pause_deadline:
            if self._pause_timeout_action == "interrupt":
                self.interrupt()
            else:
                self.resume()
        engine = self._engine
        block = engine.render(self.frame_samples)
        if engine.events:
            self._dispatch(now)
        if engine.last_voiced:
            self._last_voiced_at = now
        if self._room is not None and len(engine.queue) <= self._max_queued:  # type: ignore[operator]
            self._wake_pushers()
        return self._build_frame(self._process_output(block))

    def _build_frame(self, block: Block) -> av.AudioFrame:
        frame = av.AudioFrame(format=self._av_format, layout=self._av_layout, samples=self._format.frame_samples)
        frame.planes[0].update(block)  # type: ignore[arg-type]  # PyAV's stub says bytes; any buffer works
        if self._recorder is not None:
            self._recorder.put(block)
        frame.pts = self._pts
        frame.sample_rate = self._format.sample_rate
        frame.time_base = self._time_base
        self._pts += self._format.frame_samples
        self._frames_sent += 1
        return frame

    def _check_live(self) -> None:
        if self.readyState != "live":
            raise TrackClosedError("expected a live track, got a stopped one")

    def _current_id(self) -> int | None:
        return None if self._current is None else self._current.id

    def _start_turn(self, normalizer: InputNormalizer) -> Turn:
        previous = self._current
        if previous is not None and previous._state.accepts_audio:
            self.end_turn(previous)
        state = self._engine.start_turn()
        turn = Turn(self, state, normalizer, self._clock.now())
        self._handles[state.id] = turn
        self._current = turn
        self._last_voiced_at = None
        return turn

    def _turn_for_push(self) -> Turn | None:
        """The current turn if open or interrupted; None when a new one must start."""
        turn = self._current
        if turn is None or (turn._state.ended and not turn._state.interrupted):
            return None
        return turn

    def _enqueue(self, turn: Turn, block: Block) -> None:
        state = turn._state
        self._engine.enqueue(state, block)
        if not state.interrupted and len(block):
            self._voice_queued(turn, block)

    def _flush_tail(self, turn: Turn) -> None:
        tail = turn._normalizer.flush()
        if tail is not None:
            self._enqueue(turn, tail)

    def _dispatch(self, now: float) -> None:
        """Turn the engine's events into scheduled pyee events."""
        events, self._engine.events = self._engine.events, []
        for event in events:
            turn = self._handles.get(event.turn_id)
            if turn is None:
                continue
            if event.kind is EventKind.STARTED:
                ttfa = now - turn._started_at
                turn._time_to_first_audio = ttfa
                self._ttfa[turn.id] = ttfa
                if len(self._ttfa) > _TTFA_KEPT:
                    self._ttfa.popitem(last=False)
                self._emit_later("playout_started", PlayoutStarted(turn.id, ttfa, self._pts + event.offset))
            elif event.kind is EventKind.UNDERRUN:
                self._emit_later("underrun", Underrun(turn.id, turn._state.played))
            else:
                del self._handles[turn.id]
                stats = turn.stats
                turn._finish(stats)
                self._emit_later("turn_finished", TurnFinished(turn.id, stats))

    def _release_later(self, garbage: deque[Any]) -> None:
        """Free dropped chunks (and resamplers) over the next loop iterations, 256 per iteration.

        Freeing 60 s of queued speech at once would block the loop for milliseconds;
        a batch of 256 chunks costs well under 100 us.
        """
        if not garbage:
            return
        self._garbage.append(garbage)
        if len(self._garbage) > 1:
            return  # a release is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self._release_some)
        except RuntimeError:  # no loop running: free now
            self._garbage.clear()

    def _release_some(self) -> None:
        budget = 256
        while budget and self._garbage:
            batch = self._garbage[0]
            while budget and batch:
                batch.pop()
                budget -= 1
            if not batch:
                self._garbage.popleft()
        if self._garbage:
            asyncio.get_running_loop().call_soon(self._release_some)

    def _emit_later(self, name: str, payload: object) -> None:
        self._pending_events.append((name, payload))
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop running (synchronous use): emit now
            self._flush_events()
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush_events)

    def _flush_events(self) -> None:
        self._flush_scheduled = False
        events, self._pending_events = self._pending_events, []
        for name, payload in events:
            self.emit(name, payload)

    def _log_handler_error(self, exc: BaseException) -> None:
        logger.error("agent_audio: an event handler raised", exc_info=exc)
