"""``AgentAudioTrack``: the aiortc audio track a voice agent speaks through.

A thin shell: it paces frames on an injected clock, asks the playout engine for each
frame's samples (a value), runs them through the output stages, wraps them into an
:class:`av.AudioFrame`, and turns what the engine reports into pyee events. Audio
enters through the intake (:mod:`agent_audio._intake`); turns live in the turn book.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ._clock import Clock, MonotonicClock
from ._deferred import Deferred
from ._encoded import EncodedStream
from ._encoded_view import EncodedView
from ._engine import EngineEvent, PlayoutEngine
from ._errors import EncodedOutputError, InvalidAudioError, InvalidStateError, TrackClosedError
from ._events import Interrupted, Paused, Resumed
from ._format import AudioFormat
from ._input import PushData
from ._intake import Intake
from ._options import check_number
from ._playout import FrameEncoder, Playout
from ._recorder import Recorder
from ._stages import OutputStage, TapSet, VoiceTap
from ._stats import TrackMetrics
from ._turn import Turn, TurnBook

__all__ = ["MAX_FADE", "PAUSE_RAMP", "AgentAudioTrack"]

logger = logging.getLogger(__name__)

#: Seconds of the linear pause/resume ramp: long enough not to click, short enough
#: that a pause sounds immediate.
PAUSE_RAMP = 0.005
#: Longest accepted ``fade_out`` and ``speaking_grace``, in seconds.
MAX_FADE = 5.0
_TTFA_KEPT = 64  # turns whose time to first audio metrics() reports

Block = npt.NDArray[np.int16]
E = TypeVar("E", bound=FrameEncoder)


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
            0 dB to -60 dB, ending on exact zero), 0 to 5. 0 cuts at the next frame
            boundary. The 0.2 s default is what users of other agent frameworks ask for
            (livekit/agents issue 6165: 100-250 ms; videosdk-agents uses 0.4 s).
        speaking_grace: seconds (0 to 5) for which :attr:`is_speaking` stays True across
            a gap in a turn's audio (streaming TTS delivers in bursts).
        clock: where time comes from; default :class:`~agent_audio.MonotonicClock`.
            Tests pass :class:`agent_audio.testing.ManualClock`.
        max_queued: seconds of queued speech (all turns) above which :meth:`push`,
            :meth:`push_encoded` and :meth:`EncodedStream.push` wait (backpressure);
            None (default) never waits. TTS services synthesize much faster than real
            time, so unbounded, a long reply sits in memory and is paid for even when
            the user interrupts after a second (fastrtc users hand-rolled a 1 s cap for
            the same reason). A waiting push returns at once when its turn is
            interrupted or the track stops; what it still held is dropped and counted.
        stages: output stages (:class:`~agent_audio.OutputStage`), run in this order on
            every outgoing frame.
        taps: voice taps (:class:`~agent_audio.VoiceTap`), told in this order of queued
            voice and of pause, resume, interrupt and turn ends.

    Raises:
        InvalidAudioError: an option is out of range (message names expected and got).

    Events (pyee; payloads are frozen dataclasses from :mod:`agent_audio`):
    ``"playout_started"`` (:class:`PlayoutStarted`), ``"turn_finished"``
    (:class:`TurnFinished`), ``"interrupted"`` (:class:`Interrupted`), ``"paused"``
    (:class:`Paused`), ``"resumed"`` (:class:`Resumed`), ``"underrun"`` (:class:`Underrun`),
    ``"word_played"`` (:class:`WordPlayed`, for words pushed with the audio).
    They are scheduled with ``loop.call_soon``, never run inside ``recv()``; an
    exception in a handler is logged, not raised.

    Extend by composition: pass ``stages`` and ``taps`` (the mixing and tee tracks are
    such compositions); never override :meth:`recv`.

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
        stages: Sequence[OutputStage] = (),
        taps: Sequence[VoiceTap] = (),
    ) -> None:
        super().__init__()
        fmt = AudioFormat.for_track(sample_rate=sample_rate, channels=channels, frame_duration=frame_duration)
        self._fade_out = check_number("fade_out", fade_out, unit="seconds", high=MAX_FADE)
        self._speaking_grace = check_number("speaking_grace", speaking_grace, unit="seconds", high=MAX_FADE)
        if max_queued is not None:
            max_queued = check_number("max_queued", max_queued, unit="seconds or None", low_open=True, high=3600)
        if clock is not None and not all(callable(getattr(clock, name, None)) for name in ("now", "sleep_until")):
            raise InvalidAudioError(f"expected a Clock with now() and sleep_until(deadline), got {clock!r}")
        for stage in stages:
            if not callable(getattr(stage, "process", None)):
                raise InvalidAudioError(f"expected output stages with process(frame), got {stage!r}")
        self._format = fmt
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._engine = PlayoutEngine(
            channels=channels,
            fade_samples=round(self._fade_out * sample_rate),
            ramp_samples=round(PAUSE_RAMP * sample_rate),
        )
        self._stages = tuple(stages)
        self._taps = TapSet(taps)
        self._book = TurnBook(self, self._engine, fmt)
        self._intake = Intake(
            engine=self._engine,
            book=self._book,
            taps=self._taps,
            max_queued=None if max_queued is None else round(max_queued * sample_rate),
            dispatch=self._dispatch_now,
            live=self._is_live,
            now=self._clock.now,
        )
        self._deferred = Deferred(self.emit)
        self._playout = Playout(
            fmt=fmt,
            engine=self._engine,
            book=self._book,
            intake=self._intake,
            stages=self._stages,
            deferred=self._deferred,
            on_pause_timeout=self._pause_timed_out,
        )
        self._paused_at = 0.0
        self.on("error", _log_handler_error)

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

    @property
    def stages(self) -> tuple[OutputStage, ...]:
        """The output stages, in the order they run."""
        return self._stages

    # -- turns -----------------------------------------------------------------

    def start_turn(self) -> Turn:
        """Start a new agent reply and return its handle.

        An open current turn is ended first (its queued audio still plays; the new
        turn's audio follows it, or follows an interrupt's fade tail).

        Raises:
            TrackClosedError: the track was stopped.
        """
        self._intake.check_live()
        turn = self._intake.start_turn()
        self._playout.last_voiced_at = None
        return turn

    def end_turn(self, turn: Turn | None = None) -> None:
        """Mark synthesis of ``turn`` (default: the current turn) complete. No-op if already ended.

        The turn finishes, with one ``turn_finished`` event, once its queued audio has
        played (at once if it was interrupted and its fade has played). The
        resampler's tail is queued first; an encoded stream still open is ended.

        Raises:
            InvalidAudioError: ``turn`` is not a turn of this track.
        """
        if turn is None:
            turn = self._book.current
        elif not self._book.owns(turn):
            raise InvalidAudioError(f"expected a Turn of this track or None, got {turn!r}")
        if turn is not None:
            self._intake.end_turn(turn)

    @property
    def current_turn(self) -> Turn | None:
        """The most recently started turn (it may be finished), or None before the first."""
        return self._book.current

    # -- producers -------------------------------------------------------------

    async def push(
        self,
        data: PushData,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
        words: Sequence[tuple[str, float, float]] | None = None,
        text: str | None = None,
    ) -> None:
        """Queue speech for playout, and optionally the words it speaks.

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
            turn: the turn to push to. Default: the current turn unless it has ended
                (then a new turn starts). An interrupted turn that was not ended still
                takes turn-less pushes and drops them (logged once): push through the
                :class:`Turn` handle, and end a turn when its synthesis stops.
            words: the words this push speaks, ``(text, start, end)`` with times in
                seconds from the push's first sample (what TTS services with alignment
                send: ElevenLabs, Cartesia, Azure, Google). They become exact sample
                offsets in the turn, through resampling; a word may run past its push.
            text: the words without timings: spread over this push's samples in
                proportion to their characters, marked estimated. Not with ``words``.

        The words give the turn's heard text (:attr:`TurnStats.heard_text`, the words
        that played at full level; a word cut by the interrupt fade counts when at
        least 20 % of it played at full level) and ``"word_played"`` events as
        playout passes each word's start (live captions). Words for an interrupted
        turn are dropped with its audio.

        Anything not at the track format is resampled with PyAV's ``AudioResampler``,
        keeping its state across the pushes of a turn. Cost is linear in the samples
        pushed; a large push is converted in 0.25 s slices, yielding to the event loop
        between them. With ``max_queued`` set, waits before each slice while more than
        that is queued; returns at once if the turn is interrupted or the track stops.

        Raises:
            InvalidAudioError: malformed input or words (message names expected and
                got), or a turn of another track; nothing that was queued changes.
            InvalidStateError: the turn's encoded stream is still decoding (its audio and
                this push would interleave).
            TurnClosedError: ``turn`` was ended and not interrupted.
            TrackClosedError: the track was stopped.
        """
        await self._intake.push(data, sample_rate=sample_rate, channels=channels, turn=turn, words=words, text=text)

    async def push_encoded(
        self,
        chunk: bytes | bytearray | memoryview,
        *,
        format: str,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
        words: Sequence[tuple[str, float, float]] | None = None,
        text: str | None = None,
    ) -> None:
        """Queue the next chunk of an encoded TTS stream (split anywhere) for playout.

        Bytes for an interrupted turn are discarded without being decoded. The chunk
        goes to the turn's open :class:`EncodedStream`, opened on the first call (see
        :meth:`open_encoded` for the formats and what runs where). The stream ends, and
        the decoder's tail is queued, when the turn ends (:meth:`end_turn`). For several
        streams in one turn (one TTS request per sentence, each with its own header),
        use :meth:`open_encoded` and :meth:`EncodedStream.end`: each plays after the one
        before. The turn is chosen as for :meth:`push`. ``words``/``text``: as for
        :meth:`EncodedStream.push` (times from this chunk's first sample, placed after
        decoding).

        Raises:
            InvalidAudioError: ``chunk`` is not bytes-like, unknown ``format``, a
                different format than the turn's open stream, ``sample_rate`` missing
                for ``"pcm_s16le"`` or given for a format that carries its own. Nothing
                changes.
            TurnClosedError: ``turn`` was ended and not interrupted.
            TrackClosedError: the track was stopped.
        """
        await self._intake.push_encoded(
            chunk, format=format, sample_rate=sample_rate, channels=channels, turn=turn, words=words, text=text
        )

    def open_encoded(
        self,
        format: str,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
    ) -> EncodedStream:
        """Open an encoded stream for ``turn`` (default: chosen as for :meth:`push`).

        Args:
            format: one of ``"mp3"``, ``"ogg"`` (Opus or Vorbis in Ogg; ``"opus"`` is
                the same), ``"flac"``, ``"aac"`` (ADTS; ``"adts"`` is the same), ``"wav"``
                (16-bit PCM) or ``"pcm_s16le"`` (raw s16 little-endian interleaved).
            sample_rate: Hz, required for ``"pcm_s16le"``, refused for the others.
            channels: channel count for ``"pcm_s16le"`` (default the track's).
            turn: the turn to decode into.

        The turn does not finish while its stream is open: end the stream
        (:meth:`EncodedStream.end`) or the turn (which ends the stream). Once a stream is
        ended, the next one may be opened at once: its audio is held until the previous
        stream has delivered all of its own, and audio of later turns waits likewise.

        Raises:
            InvalidAudioError: unknown ``format`` or wrong ``sample_rate``/``channels``.
            InvalidStateError: the turn's previous stream is still open (not ended).
            TurnClosedError: ``turn`` was ended and not interrupted.
            TrackClosedError: the track was stopped.
        """
        return self._intake.open_encoded(format, sample_rate=sample_rate, channels=channels, turn=turn)

    def push_threadsafe(
        self,
        data: PushData,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
        format: str | None = None,
        words: Sequence[tuple[str, float, float]] | None = None,
        text: str | None = None,
    ) -> concurrent.futures.Future[None]:
        """Push from any thread: :meth:`push` (or :meth:`push_encoded` with ``format``) on the track's loop.

        Calls from one thread are queued in call order (each is scheduled with
        ``loop.call_soon_threadsafe`` and pushes take the track's push lock first come,
        first served), so every producer's audio keeps its order. ``data`` is used after
        this returns: do not reuse its buffer.

        Returns:
            A :class:`concurrent.futures.Future` that resolves when the audio is queued
            (or raises what :meth:`push` raised). Do not wait on it from the loop's thread.

        Raises:
            InvalidStateError: the track was created outside a running event loop and
                not used on one yet, or its loop is closed.
            InvalidAudioError: ``format`` given with data that is not bytes-like.
        """
        return self._intake.push_threadsafe(
            data, sample_rate=sample_rate, channels=channels, turn=turn, format=format, words=words, text=text
        )

    def start_recording(self, path: str | Path, *, format: str | None = None) -> Recorder:
        """Record every frame :meth:`recv` hands out from now on (what the listener hears).

        Args:
            path: file to write; replaced if it exists.
            format: ``"wav"`` (s16 PCM at the track format) or ``"ogg"`` (Opus, 48 kHz);
                default from the suffix of ``path``.

        The hot path pays one copy of the frame and a deque append (well under 5 us);
        encoding and writing run on a worker thread. Stop with :meth:`Recorder.stop`.

        Raises:
            InvalidStateError: a recording is already running on this track.
            InvalidAudioError: unknown ``format``.
        """
        current = self._playout.recorder
        if current is not None and not current.stopped:
            raise InvalidStateError(f"expected no recording running, got one to {current.path}")
        recorder = self._playout.recorder = Recorder(path, self._format, format=format)
        return recorder

    # -- control ---------------------------------------------------------------

    def pause(self, *, timeout: float | None = None, on_timeout: Literal["resume", "interrupt"] = "resume") -> None:
        """Go quiet at once for a possible false interruption, keeping the queue.

        From the next frame the voice ramps down over ``PAUSE_RAMP`` (5 ms) of queued
        samples from the gain heard now (at once when no voice is audible), then silence
        is sent while the clock runs on; pushes keep queueing. During an interrupt's
        fade, the fade plays on and the silence follows it. No-op if already paused.

        Args:
            timeout: seconds after which the pause decides by itself if neither
                :meth:`resume` nor :meth:`interrupt` was called; None waits forever.
                Checked at frame boundaries.
            on_timeout: ``"resume"`` or ``"interrupt"``.

        Raises:
            InvalidAudioError: ``timeout`` is negative or not finite, or ``on_timeout``
                is not one of the two actions.
        """
        if timeout is not None:
            timeout = check_number("timeout", timeout, unit="seconds or None")
        if on_timeout not in ("resume", "interrupt"):
            raise InvalidAudioError(f"expected on_timeout 'resume' or 'interrupt', got {on_timeout!r}")
        if not self._engine.pause():
            return
        now = self._clock.now()
        self._paused_at = now
        self._playout.pause_deadline = None if timeout is None else now + timeout
        self._playout.pause_action = on_timeout
        self._taps.control("paused")
        self._deferred.emit_later("paused", Paused(turn_id=self._current_id()))

    def resume(self) -> None:
        """Carry on from the exact sample where :meth:`pause` stopped, ramping up over 5 ms.

        Nothing is lost and nothing repeated. No-op if not paused.
        """
        if not self._engine.resume():
            return
        self._playout.pause_deadline = None
        self._taps.control("resumed")
        paused_for = self._clock.now() - self._paused_at
        self._deferred.emit_later("resumed", Resumed(turn_id=self._current_id(), paused_for=paused_for))

    def interrupt(self) -> None:
        """Stop speaking: a real interruption (barge-in). Does not close the track.

        From the next frame, the next ``fade_out`` seconds of queued speech play under
        an exponential fade from 0 dB to -60 dB ending on exact zero; everything after
        is dropped and counted, and audio still being pushed for the interrupted turns
        is dropped too. The fade starts from the gain the listener hears now: while
        paused, or before the turn's first frame, or in an underrun, what is queued is
        dropped at once, silently. The pause, if any, ends. A fade already running is
        not restarted. No-op when nothing is playing or queued. Costs O(chunks in the
        fade window), whatever is queued.
        """
        result = self._engine.interrupt()
        if not result.turns:
            return
        self._playout.pause_deadline = None
        ids = tuple(state.id for state in result.turns)
        self._deferred.release_later(result.garbage)
        self._deferred.release_later(self._intake.interrupted(ids))
        self._taps.control("interrupted", ids)
        self._deferred.emit_later(
            "interrupted",
            Interrupted(
                turn_id=ids[-1], turn_ids=ids, fade_samples=result.fade_samples, dropped_samples=result.dropped
            ),
        )
        self._dispatch_now(result.events)

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
        if self._engine.paused:
            return False
        playout = self._playout
        if playout.last_voiced:
            return True
        turn = self._book.current
        if turn is None or turn.ended or turn.interrupted or playout.last_voiced_at is None:
            return False
        return self._clock.now() - playout.last_voiced_at < self._speaking_grace

    def snapshot_playback(self) -> tuple[int, int]:
        """(played, pushed) samples per channel of the current turn; (0, 0) before any."""
        turn = self._book.current
        if turn is None:
            return (0, 0)
        stats = turn.stats
        return (stats.played_samples, stats.pushed_samples)

    def metrics(self) -> TrackMetrics:
        """A snapshot of the pacing and queue metrics (durations in seconds, counts in frames or samples)."""
        playout = self._playout
        pacer = playout.pacer
        return TrackMetrics(
            frames_sent=playout.frames_sent,
            late_frames=pacer.late_frames,
            reanchors=pacer.reanchors,
            underruns=self._engine.underruns,
            max_lateness=pacer.max_lateness,
            queued_samples=len(self._engine.queue),
            sample_rate=self.sample_rate,
            time_to_first_audio=dict(playout.ttfa),
            decode_errors=self._intake.decode_errors,
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
            EncodedOutputError: the track's output is encoded (:meth:`encoded_view`):
                its sender reads the view, and nothing else may take its frames.
        """
        if self._playout.encoder is not None:
            raise EncodedOutputError("expected recv() on the track's encoded view, got it on the track")
        return cast(av.AudioFrame, await self._next_output())  # frames: no encoder is set

    def encoded_view(self, encoder: E) -> EncodedView[E]:
        """From now on, end every outgoing block in ``encoder``; return the track its sender should read.

        Most applications call :func:`agent_audio.enable_opus_output`, which checks the
        negotiated codec and swaps the sender's track. This is the hook underneath:
        the track keeps pacing, stages, recorder, taps, events and metrics; only the
        last step changes, from building an :class:`av.AudioFrame` to
        ``encoder.emit(block, pts)``. :meth:`recv` refuses from then on.

        Args:
            encoder: a :class:`~agent_audio.FrameEncoder` for this track's format.

        Returns:
            An :class:`~agent_audio.EncodedView` whose ``recv()`` returns the packets.

        Raises:
            EncodedOutputError: the track already sent a frame (RTP time would jump:
                aiortc stamped those frames from its own sample count), or its output
                is already encoded.
            TrackClosedError: the track was stopped.
        """
        if self.readyState != "live":
            raise TrackClosedError("expected a live track for encoded output, got a stopped one")
        playout = self._playout
        if playout.encoder is not None:
            raise EncodedOutputError(f"expected a track whose output is not encoded yet, got {playout.encoder!r}")
        if playout.frames_sent:
            raise EncodedOutputError(
                f"expected a track that has not sent a frame yet, got {playout.frames_sent} frames sent"
            )
        playout.encoder = encoder
        view = EncodedView(track_id=self.id, produce=self._next_output, stop_track=self.stop, encoder=encoder)
        self.once("ended", view.stop)
        return view

    def stop(self) -> None:
        """End the track: drop what is queued, finish every turn, then end as aiortc does.

        Encoded streams still decoding are aborted, pushes waiting for room or between
        slices return, and a recording is closed. Every unfinished turn gets its
        ``turn_finished`` (``interrupted=True``) and its :meth:`Turn.wait_for_playout`
        returns. Pending events are emitted before aiortc removes all listeners. Stages
        with a ``close()`` are closed. Idempotent.
        """
        if self.readyState == "live":
            self._intake.close()
            result = self._engine.close()
            self._deferred.drop_garbage()
            self._dispatch_now(result.events)
            self._deferred.flush()
            self._playout.close()
        super().stop()

    # -- internals -------------------------------------------------------------

    async def _next_output(self) -> av.AudioFrame | av.Packet[Any]:
        """The next frame (or, with an encoder, packet), paced; silence after an internal fault."""
        if self.readyState != "live":
            raise MediaStreamError
        try:
            clock = self._clock
            now = clock.now()
            due = self._playout.pacer.due(now)
            if due > now:  # a frame already due goes out at once, without yielding
                await clock.sleep_until(due)
                now = clock.now()
                if self.readyState != "live":
                    raise MediaStreamError
            return self._playout.next_frame(now, due)
        except MediaStreamError:
            raise
        except Exception:
            self._playout.fault("producing a frame; sending silence")
            return self._playout.silence()

    def _is_live(self) -> bool:
        return self.readyState == "live"

    def _current_id(self) -> int | None:
        turn = self._book.current
        return None if turn is None else turn.id

    def _dispatch_now(self, events: Sequence[EngineEvent]) -> None:
        if events:
            self._playout.dispatch(events, self._clock.now())

    def _pause_timed_out(self, action: Literal["resume", "interrupt"]) -> None:
        """Called by the frame path: act on the loop's next turn, never inside ``recv()`` (taps run)."""
        apply = self.interrupt if action == "interrupt" else self.resume
        try:
            asyncio.get_running_loop().call_soon(apply)
        except RuntimeError:  # no loop running (synchronous use): act now
            apply()


def _log_handler_error(exc: BaseException) -> None:
    logger.error("agent_audio: an event handler raised", exc_info=exc)
