"""How audio enters a track: pushes, encoded streams, thread-safe pushes, backpressure and turn ends.

:class:`Intake` is the track's producer side. Every way in (PCM, encoded, thread-safe)
goes through :meth:`TurnBook.resolve` to find its turn, through :func:`push_slices` to
be converted in slices that yield to the loop, and through :meth:`Intake.enqueue` to
the engine and the voice taps, in that order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._decode import check_format
from ._encoded import EncodedStream
from ._engine import EngineEvent, PlayoutEngine
from ._errors import InvalidAudioError, InvalidStateError, TrackClosedError
from ._input import InputNormalizer, Prepared, PushData
from ._order import ProducerOrder
from ._stages import TapSet
from ._turn import Turn, TurnBook
from ._turntext import StreamText, Words
from ._words import WordTimeline

__all__ = ["PUSH_SLICE", "Intake", "push_slices"]

#: Seconds of input converted between two yields to the event loop in a large push:
#: resampling 0.25 s with PyAV takes about 0.1-0.3 ms here.
PUSH_SLICE = 0.25

Block = npt.NDArray[np.int16]


async def push_slices(
    normalizer: InputNormalizer,
    prepared: Prepared,
    *,
    put: Callable[[Block], None],
    before: Callable[[], Awaitable[None]] | None = None,
    live: Callable[[], bool],
) -> None:
    """Convert validated input (from ``normalizer.prepare``) and ``put`` it in 0.25 s slices.

    The one push loop, for the voice and for a streamed background. Between slices of a
    push longer than one slice the loop runs (``sleep(0)``); the push stops early once
    ``live()`` is False. ``before`` (backpressure) is awaited before each slice.
    """
    step = max(1, round(prepared.sample_rate * PUSH_SLICE))
    big = prepared.source_samples > step
    for block in normalizer.convert(prepared, slice_samples=step):
        if before is not None:
            await before()
        put(block)
        if big:
            await asyncio.sleep(0)  # more than one slice: let the loop run between them
            if not live():
                return


class _StreamTarget:
    """Where one encoded stream's decoded audio goes: its turn, through the intake, in stream order."""

    def __init__(self, intake: Intake, turn: Turn, seq: int, text: StreamText) -> None:
        self._intake = intake
        self._turn = turn
        self._seq = seq
        self._text = text

    @property
    def interrupted(self) -> bool:
        return self._intake.book.state(self._turn).interrupted

    @property
    def bounded(self) -> bool:
        return self._intake.bounded

    def check_live(self) -> None:
        self._intake.check_live()

    async def wait_for_room(self) -> None:
        await self._intake.wait_for_room(self._turn, self._seq)

    def enqueue(self, block: Block) -> None:
        self._intake.enqueue(self._turn, block, self._seq, self._text)

    def words(self, offset: int, words: Words | None, text: str | None) -> None:
        self._intake.book.stream_words(self._turn, self._text, offset, words, text)

    def closed(self, stream: EncodedStream, errors: int) -> None:
        self._intake.stream_closed(self._turn, stream, self._text, self._seq, errors)


class Intake:
    """The producer side of one track.

    Args:
        engine: the playout engine.
        book: the track's turns.
        taps: the voice taps, called in order with queued voice and turn ends.
        max_queued: samples per channel queued (all turns) above which pushes wait; None never waits.
        dispatch: hands engine events (a turn finished) to the track.
        live: whether the track is still live.
        now: the track clock's current time in seconds.
    """

    def __init__(
        self,
        *,
        engine: PlayoutEngine,
        book: TurnBook,
        taps: TapSet,
        max_queued: int | None,
        dispatch: Callable[[Sequence[EngineEvent]], None],
        live: Callable[[], bool],
        now: Callable[[], float],
    ) -> None:
        self.book = book
        self.decode_errors = 0
        self._engine = engine
        self._taps = taps
        self._max_queued = max_queued
        self._dispatch = dispatch
        self._live = live
        self._now = now
        self._lock = asyncio.Lock()
        # A turn's audio never overtakes the turn (or stream) before it, see _order.
        self._order = ProducerOrder(
            queue=self._queue,
            hold=self._push_started,
            release=self._push_done,
            finalize=self._stream_done,
        )
        self.room: asyncio.Event | None = None
        """Set while a push waits for the queue to drain (checked after every frame)."""
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    @property
    def bounded(self) -> bool:
        """Whether pushes wait for room (``max_queued`` is set)."""
        return self._max_queued is not None

    def check_live(self) -> None:
        """Raise :class:`TrackClosedError` once the track was stopped."""
        if not self._live():
            raise TrackClosedError("expected a live track, got a stopped one")

    # -- turns -----------------------------------------------------------------

    def start_turn(self, normalizer: InputNormalizer | None = None) -> Turn:
        """End the open current turn (its audio still plays), then start and return a new one."""
        previous = self.book.current
        if previous is not None and self.book.state(previous).accepts_audio:
            self.end_turn(previous)
        return self.book.start(self._now(), normalizer)

    def end_turn(self, turn: Turn) -> None:
        """Mark synthesis of ``turn`` complete (no-op if it already was)."""
        state = self.book.state(turn)
        if state.ended:
            return
        stream = self.book.stream(turn)
        if stream is not None:
            stream.end()  # its decoder's tail still comes: the turn completes when it has
        if not state.pushing:
            self._synthesis_complete(turn)
        self._dispatch(self._engine.end_turn(state))

    def _synthesis_complete(self, turn: Turn) -> None:
        state = self.book.state(turn)
        if state.synthesized:
            return
        state.synthesized = True
        tail = self.book.normalizer(turn).flush()
        if tail is not None:
            self.enqueue(turn, tail, self._order.next())
        if not state.interrupted:
            self._taps.control("turn_ended", turn.id)

    def _push_started(self, turn: Turn) -> None:
        self._engine.push_started(self.book.state(turn))

    def _push_done(self, turn: Turn) -> None:
        state = self.book.state(turn)
        if state.ended and state.pushing == 1 and not state.finished:
            self._synthesis_complete(turn)
        self._dispatch(self._engine.push_done(state))

    def enqueue(self, turn: Turn, block: Block, seq: int, text: StreamText | None = None) -> None:
        """Queue a converted block of producer ``seq`` for ``turn``, in producer order."""
        self._order.put(seq, turn, block, text)

    def _queue(self, turn: Turn, block: Block, text: StreamText | None) -> None:
        """Queue ``block`` for ``turn`` (dropped and counted if it was interrupted); tell the taps."""
        if text is not None and text.start is None and len(block):
            self.book.stream_started(turn, text)
        if self._engine.enqueue(self.book.state(turn), block) and len(block):
            self.book.queued(turn)
            self._taps.voice_queued(turn.id, block)

    # -- pushes ----------------------------------------------------------------

    async def push(
        self,
        data: PushData,
        *,
        sample_rate: int | None,
        channels: int | None,
        turn: Turn | None,
        words: Words | None = None,
        text: str | None = None,
    ) -> None:
        """See :meth:`AgentAudioTrack.push`."""
        self.check_live()
        self.book.resolve(turn)  # refuse a foreign or ended turn before waiting for the lock
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        async with self._lock:
            self.check_live()
            handle = self.book.resolve(turn)
            stream = None if handle is None else self.book.stream(handle)
            if handle is not None and stream is not None:
                raise InvalidStateError(
                    f"expected PCM pushes to a turn without an encoded stream decoding, got turn {handle.id} "
                    f"decoding {stream.format!r}; push to its stream, or end it and wait for stream.finished"
                )
            normalizer = self.book.normalizer(handle) if handle is not None else InputNormalizer(self.book.fmt)
            prepared = normalizer.prepare(data, sample_rate=sample_rate, channels=channels)  # raises before a new turn
            if handle is None:
                if words is not None or text is not None:
                    WordTimeline(self.book.sample_rate).add(0, 0, words=words, text=text)  # refuse before a turn starts
                handle = self.start_turn(normalizer)
            self.book.place(handle, prepared.sample_rate, prepared.source_samples, words, text)
            self._push_started(handle)
            target = handle
            seq = self._order.next()
            try:
                await push_slices(
                    normalizer,
                    prepared,
                    put=lambda block: self.enqueue(target, block, seq),
                    before=None if self._max_queued is None else lambda: self.wait_for_room(target, seq),
                    live=self._live,
                )
            finally:
                self._push_done(handle)

    async def push_encoded(
        self,
        chunk: bytes | bytearray | memoryview,
        *,
        format: str,
        sample_rate: int | None,
        channels: int | None,
        turn: Turn | None,
        words: Words | None = None,
        text: str | None = None,
    ) -> None:
        """See :meth:`AgentAudioTrack.push_encoded`."""
        self.check_live()
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InvalidAudioError(f"expected encoded bytes, got {type(chunk).__name__}")
        check_format(format, sample_rate, channels)
        handle = self.book.resolve(turn)
        if handle is not None and self.book.state(handle).interrupted:
            return  # a stale TTS task: its bytes are discarded undecoded
        stream = None if handle is None else self.book.stream(handle)
        if stream is None or stream.ended:
            stream = self.open_encoded(format, sample_rate=sample_rate, channels=channels, turn=handle)
        elif stream.format != format:
            raise InvalidAudioError(
                f"expected format {stream.format!r} (turn {stream.turn.id}'s open stream), got {format!r}"
            )
        await stream.push(chunk, words=words, text=text)

    def open_encoded(
        self, format: str, *, sample_rate: int | None, channels: int | None, turn: Turn | None
    ) -> EncodedStream:
        """See :meth:`AgentAudioTrack.open_encoded`."""
        self.check_live()
        check_format(format, sample_rate, channels)
        handle = self.book.resolve(turn)
        open_stream = None if handle is None else self.book.stream(handle)
        if handle is not None and open_stream is not None and not open_stream.ended:
            raise InvalidStateError(
                f"expected one open encoded stream at a time per turn, got a second while turn {handle.id}'s "
                f"{open_stream.format!r} stream is open; end() it first (its audio still plays first)"
            )
        if handle is None:
            handle = self.start_turn()
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        tail = self.book.normalizer(handle).flush()  # PCM pushed before the stream plays before it
        if tail is not None:
            self.enqueue(handle, tail, self._order.next())
        seq = self._order.next()
        text = self.book.stream_opened(handle)
        stream = EncodedStream(
            _StreamTarget(self, handle, seq, text),
            handle,
            format,
            self.book.fmt,
            sample_rate=sample_rate,
            channels=channels,
        )
        self._order.stream_opened(seq)
        self.book.set_stream(handle, stream)
        self._push_started(handle)
        if self.book.state(handle).interrupted:
            stream.abort()  # a stale TTS task opening a stream: nothing is decoded, the turn still finishes
        return stream

    def stream_closed(self, turn: Turn, stream: EncodedStream, text: StreamText, seq: int, errors: int) -> None:
        """Encoded stream ``seq`` of ``turn`` has delivered (or dropped) all it decoded."""
        self._order.stream_closed(seq, turn, stream, text, errors)

    def _stream_done(self, turn: Turn, stream: EncodedStream, text: StreamText | None, errors: int) -> None:
        """A stream is done, in producer order: account it and let its turn go on."""
        self.decode_errors += errors
        if self.book.stream(turn) is stream:
            self.book.set_stream(turn, None)
        if text is not None:
            self.book.stream_closed(turn, text)
        self._push_done(turn)

    def push_threadsafe(
        self,
        data: PushData,
        *,
        sample_rate: int | None,
        channels: int | None,
        turn: Turn | None,
        format: str | None,
        words: Words | None = None,
        text: str | None = None,
    ) -> concurrent.futures.Future[None]:
        """See :meth:`AgentAudioTrack.push_threadsafe`."""
        loop = self.loop
        if loop is None:
            raise InvalidStateError("expected a track created (or used) on a running event loop, got none to push to")
        if loop.is_closed():
            raise InvalidStateError("expected the track's event loop to be running, got a closed loop")
        if format is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidAudioError(f"expected encoded bytes with format={format!r}, got {type(data).__name__}")
        coro: Any
        if format is None:
            coro = self.push(data, sample_rate=sample_rate, channels=channels, turn=turn, words=words, text=text)
        else:
            coro = self.push_encoded(
                data,  # type: ignore[arg-type]  # checked above: bytes-like
                format=format,
                sample_rate=sample_rate,
                channels=channels,
                turn=turn,
                words=words,
                text=text,
            )
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError as exc:  # the loop closed meanwhile
            coro.close()
            raise InvalidStateError(f"expected the track's event loop to be running, got {exc}") from None

    # -- backpressure ----------------------------------------------------------

    async def wait_for_room(self, turn: Turn, seq: int) -> None:
        """Wait while more than ``max_queued`` is queued, unless ``turn`` is interrupted or the track stopped.

        Audio held behind an older stream counts for producers that are held themselves
        (so held audio stays bounded), not for the stream they wait on (which must be
        able to finish, or nothing would ever be released).
        """
        limit = self._max_queued
        if limit is None:
            return
        state = self.book.state(turn)
        while self._queued_for_bound(seq) > limit and not state.interrupted and self._live():
            if self.room is None:
                self.room = asyncio.Event()
            await self.room.wait()

    def _queued_for_bound(self, seq: int) -> int:
        return len(self._engine.queue) + (self._order.held_samples if self._order.blocked(seq) else 0)

    def frame_played(self) -> None:
        """After each frame: wake waiting pushes once the queue is back under the bound (each re-checks its own)."""
        if self.room is not None and len(self._engine.queue) <= self._max_queued:  # type: ignore[operator]
            self.wake_pushers()

    def wake_pushers(self) -> None:
        """Let every waiting push re-check (after an interrupt or a stop)."""
        if self.room is not None:
            self.room.set()
            self.room = None

    # -- control ---------------------------------------------------------------

    def interrupted(self, turn_ids: Sequence[int]) -> deque[object]:
        """Turns were interrupted: abort their streams, forget their resamplers' state.

        Returns:
            The dropped resamplers, to free off the caller's path (freeing PyAV's filter
            graph costs 0.2-0.4 ms).
        """
        resamplers: deque[object] = deque()
        for turn_id in turn_ids:
            turn = self.book.get(turn_id)
            if turn is None:
                continue
            stream = self.book.stream(turn)
            if stream is not None:
                stream.abort()
            resampler = self.book.normalizer(turn).reset()  # no tail for an interrupted turn
            if resampler is not None:
                resamplers.append(resampler)
        self._order.drop_held(  # audio held for an interrupted turn: counted as pushed and dropped now
            lambda turn: self.book.state(turn).interrupted,
            lambda turn, block: self._engine.enqueue(self.book.state(turn), block),
        )
        self.wake_pushers()
        return resamplers

    def close(self) -> None:
        """The track stops: abort every stream, forget held audio, release every waiting push."""
        for turn in self.book.unfinished():
            stream = self.book.stream(turn)
            if stream is not None:
                stream.abort()
        self._order.clear()
        self.wake_pushers()
