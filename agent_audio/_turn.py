"""Turns: the public :class:`Turn` handle, and :class:`TurnBook`, the one owner of every turn's records.

The book keeps, per turn, the engine's account, the input normalizer (resampler state
across the turn's pushes), the encoded stream still decoding, the start time, the
time to first audio, and the waiters; and it holds the single rule that decides which
turn a push belongs to (:meth:`TurnBook.resolve`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from ._engine import PlayoutEngine, TurnState
from ._errors import InvalidAudioError, TurnClosedError
from ._events import WordPlayed
from ._format import AudioFormat
from ._input import InputNormalizer, PushData
from ._options import check_number
from ._stats import TurnStats
from ._turntext import StreamText, TurnText, Words

if TYPE_CHECKING:
    from ._encoded import EncodedStream

__all__ = ["Turn", "TurnBook", "TurnOwner"]

logger = logging.getLogger(__name__)


class TurnOwner(Protocol):
    """What a :class:`Turn` hands its calls to: the track that made it."""

    async def push(
        self,
        data: PushData,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
        words: Words | None = None,
        text: str | None = None,
    ) -> None: ...

    async def push_encoded(
        self,
        chunk: bytes | bytearray | memoryview,
        *,
        format: str,
        sample_rate: int | None = None,
        channels: int | None = None,
        turn: Turn | None = None,
        words: Words | None = None,
        text: str | None = None,
    ) -> None: ...

    def open_encoded(
        self, format: str, *, sample_rate: int | None = None, channels: int | None = None, turn: Turn | None = None
    ) -> EncodedStream: ...

    def end_turn(self, turn: Turn | None = None) -> None: ...


class Turn:
    """One agent reply. Made by :meth:`AgentAudioTrack.start_turn`, not directly.

    Every sample pushed for the turn carries its id. Counts are in samples per channel
    at the track's sample rate; durations are in seconds unless the name ends in ``_ms``.
    Pushing through the handle rather than the track is what keeps a TTS task that
    outlives its turn from leaking audio into the next one.
    """

    def __init__(self, owner: TurnOwner, book: TurnBook, state: TurnState, normalizer: InputNormalizer) -> None:
        self._owner = owner
        self._book = book
        self._state = state
        self._normalizer = normalizer
        self._stream: EncodedStream | None = None
        self._started_at = 0.0
        self._ttfa: float | None = None
        self._final: TurnStats | None = None
        self._done = asyncio.Event()
        self._dropping_logged = False
        self._text = TurnText(book.sample_rate)

    def __repr__(self) -> str:
        s = self._state
        return f"<Turn {s.id} pushed={s.pushed} played={s.played} dropped={s.dropped} interrupted={s.interrupted}>"

    @property
    def id(self) -> int:
        """Turn id: 1 for the track's first turn, then counting up."""
        return self._state.id

    @property
    def interrupted(self) -> bool:
        """Whether ``interrupt()`` (or ``stop()``) cut the turn short."""
        return self._state.interrupted

    @property
    def ended(self) -> bool:
        """Whether synthesis was marked complete (:meth:`end`, a newer turn, or an interrupt and :meth:`end`)."""
        return self._state.ended

    @property
    def finished(self) -> bool:
        """Whether the turn has played out, or was interrupted and its fade tail played."""
        return self._state.finished

    @property
    def decoding(self) -> bool:
        """Whether an encoded stream is still decoding into the turn (its audio is not all queued yet)."""
        return self._stream is not None

    @property
    def stats(self) -> TurnStats:
        """The turn's account right now (a snapshot; counts in samples per channel)."""
        return self._book.stats(self)

    async def push(
        self,
        data: PushData,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        words: Words | None = None,
        text: str | None = None,
    ) -> None:
        """Push audio (and its words) for this turn: :meth:`AgentAudioTrack.push` with ``turn=self``."""
        await self._owner.push(data, sample_rate=sample_rate, channels=channels, turn=self, words=words, text=text)

    async def push_encoded(
        self,
        chunk: bytes | bytearray | memoryview,
        *,
        format: str,
        sample_rate: int | None = None,
        channels: int | None = None,
        words: Words | None = None,
        text: str | None = None,
    ) -> None:
        """Push encoded TTS bytes for this turn: :meth:`AgentAudioTrack.push_encoded` with ``turn=self``."""
        await self._owner.push_encoded(
            chunk, format=format, sample_rate=sample_rate, channels=channels, turn=self, words=words, text=text
        )

    def open_encoded(
        self, format: str, *, sample_rate: int | None = None, channels: int | None = None
    ) -> EncodedStream:
        """Open an encoded stream for this turn: :meth:`AgentAudioTrack.open_encoded` with ``turn=self``."""
        return self._owner.open_encoded(format, sample_rate=sample_rate, channels=channels, turn=self)

    def end(self) -> None:
        """Mark synthesis complete: :meth:`AgentAudioTrack.end_turn` for this turn."""
        self._owner.end_turn(self)

    async def wait_for_playout(self) -> TurnStats:
        """Wait until the turn has finished (played out, or interrupted and faded).

        Waits as long as the turn is open: end it (:meth:`end`), or bound the wait with
        :func:`asyncio.wait_for`. ``stop()`` on the track finishes every turn.

        Returns:
            The stats carried by the turn's ``turn_finished`` event.
        """
        await self._done.wait()
        assert self._final is not None
        return self._final

    def wait_played(self, seconds: float) -> Awaitable[TurnStats]:
        """Wait until ``seconds`` of the turn have been handed out by ``recv()``, or the turn finished first.

        Resolves on the frame that reaches the position (checked at every frame, so
        within one frame duration of it), with the turn's stats at that moment: compare
        ``stats.played_samples`` to tell the two outcomes apart. Like
        :meth:`wait_for_playout`, it waits while the turn is open and nothing plays.

        Args:
            seconds: position in the turn, in seconds of played audio, >= 0.

        Raises:
            InvalidAudioError: ``seconds`` is negative, not finite, or not a number.
            RuntimeError: called outside a running event loop (asyncio's own error).
        """
        seconds = check_number("seconds", seconds, unit="seconds")
        return self._book.wait_played(self, round(seconds * self._book.sample_rate))


class TurnBook:
    """Every turn's records, and the rule that decides which turn a push belongs to.

    Args:
        owner: the track the turns belong to.
        engine: the playout engine whose turn accounts the book mirrors.
        fmt: the track format (for each turn's input normalizer).
    """

    def __init__(self, owner: TurnOwner, engine: PlayoutEngine, fmt: AudioFormat) -> None:
        self.sample_rate = fmt.sample_rate
        self.fmt = fmt
        self.current: Turn | None = None
        self._owner = owner
        self._engine = engine
        self._open: dict[int, Turn] = {}  # unfinished turns by id
        self.worded: list[Turn] = []
        """Turns with words whose captions (``word_played``) are not all sent yet."""
        self.waiters: list[tuple[int, Turn, asyncio.Future[TurnStats]]] = []
        """Position waiters: (target samples, turn, future); checked after every frame while not empty."""

    def start(self, now: float, normalizer: InputNormalizer | None = None) -> Turn:
        """Register a new turn (the caller ended the previous one) and make it current.

        Args:
            now: the track clock's time in seconds (the turn's start, for TTFA).
            normalizer: the normalizer that validated the push starting the turn, if any.
        """
        state = self._engine.start_turn()
        turn = Turn(self._owner, self, state, normalizer if normalizer is not None else InputNormalizer(self.fmt))
        turn._started_at = now
        self._open[turn.id] = turn
        self.current = turn
        return turn

    def resolve(self, turn: Turn | None) -> Turn | None:
        """The turn a push belongs to; None when the push must start a new turn.

        The one rule: a push that names a turn goes to it (an ended turn refuses it,
        an interrupted one drops it). A push that names none goes to the current turn
        unless that turn is ended or finished; once a turn has ended (``end_turn()``,
        or a newer ``start_turn()``), the next push starts a new turn. An interrupted
        turn that was not ended still takes turn-less pushes, as stale audio of its TTS
        task, and drops them: that is logged once per turn with what to do.

        Raises:
            InvalidAudioError: ``turn`` is not a :class:`Turn` of this track.
            TurnClosedError: ``turn`` was ended and not interrupted.
        """
        if turn is not None:
            if not self.owns(turn):
                raise InvalidAudioError(f"expected a Turn of this track or None, got {turn!r}")
            if turn._state.ended and not turn._state.interrupted:
                raise TurnClosedError(
                    f"expected an open turn, got turn {turn.id}, already ended "
                    "(end_turn() or a newer start_turn()); start a new turn"
                )
            return turn
        current = self.current
        if current is None or current._state.ended:
            return None
        if current._state.interrupted and not current._dropping_logged:
            current._dropping_logged = True
            logger.warning(
                "agent_audio: dropping audio pushed without a turn: turn %d was interrupted and not ended. "
                "Push through the Turn handle, and call end_turn() when its synthesis stops (or start_turn() "
                "for the next reply)",
                current.id,
            )
        return current

    def owns(self, turn: object) -> bool:
        """Whether ``turn`` is a :class:`Turn` of this book's track."""
        return isinstance(turn, Turn) and turn._book is self

    def state(self, turn: Turn) -> TurnState:
        """The engine's account of ``turn``."""
        return turn._state

    def normalizer(self, turn: Turn) -> InputNormalizer:
        """The input normalizer (resampler state) of ``turn``."""
        return turn._normalizer

    def stream(self, turn: Turn) -> EncodedStream | None:
        """The encoded stream of ``turn`` still decoding, or None."""
        return turn._stream

    def set_stream(self, turn: Turn, stream: EncodedStream | None) -> None:
        """Record (or clear) the encoded stream decoding into ``turn``."""
        turn._stream = stream

    def get(self, turn_id: int) -> Turn | None:
        """The unfinished turn with this id, or None."""
        return self._open.get(turn_id)

    def unfinished(self) -> list[Turn]:
        """Every turn not finished yet, oldest first."""
        return list(self._open.values())

    def stats(self, turn: Turn) -> TurnStats:
        """A snapshot of ``turn``'s account."""
        s = turn._state
        heard = turn._text.heard(s)
        return TurnStats(
            turn_id=s.id,
            sample_rate=self.sample_rate,
            pushed_samples=s.pushed,
            played_samples=s.played,
            dropped_samples=s.dropped,
            queued_samples=self._engine.queued_for(s),
            interrupted=s.interrupted,
            finished=s.finished,
            time_to_first_audio=turn._ttfa,
            heard_words=() if heard is None else heard.words,
            partial_word=None if heard is None else heard.partial,
            heard_text="" if heard is None else heard.text,
        )

    def started(self, turn: Turn, now: float) -> float:
        """The turn's first sample was handed out at ``now``; returns its time to first audio (seconds)."""
        turn._ttfa = now - turn._started_at
        return turn._ttfa

    def finished(self, turn: Turn) -> TurnStats:
        """The turn finished: freeze its stats, wake its waiters, forget it."""
        stats = self.stats(turn)
        turn._final = stats
        turn._stream = None
        del self._open[turn.id]
        turn._done.set()
        if self.waiters:
            self.wake_played()
        return stats

    def wait_played(self, turn: Turn, target: int) -> asyncio.Future[TurnStats]:
        """A future resolving once ``target`` samples of ``turn`` played, or it finished."""
        future: asyncio.Future[TurnStats] = asyncio.get_running_loop().create_future()
        if turn._state.finished or turn._state.played >= target:
            future.set_result(turn.stats)
        else:
            self.waiters.append((target, turn, future))
        return future

    def wake_played(self) -> None:
        """Resolve every position waiter whose turn reached its position or finished."""
        keep = []
        for item in self.waiters:
            target, turn, future = item
            if future.done():  # cancelled by its waiter
                continue
            if turn._state.finished or turn._state.played >= target:
                future.set_result(turn.stats)
            else:
                keep.append(item)
        self.waiters = keep

    # -- words -------------------------------------------------------------------

    def place(self, turn: Turn, source_rate: int, source_samples: int, words: Words | None, text: str | None) -> None:
        """Account a push to ``turn`` and place its words (see :meth:`TurnText.place`)."""
        if turn._text.place(turn._state, source_rate, source_samples, words, text):
            self._caption(turn)

    def stream_opened(self, turn: Turn) -> StreamText:
        """An encoded stream opens on ``turn``; returns the record of its words."""
        return turn._text.stream_opened(turn._state)

    def stream_words(self, turn: Turn, stream: StreamText, offset: int, words: Words | None, text: str | None) -> None:
        """Words of a push to ``turn``'s stream, ``offset`` decoded samples into it."""
        if turn._text.stream_words(turn._state, stream, offset, words, text):
            self._caption(turn)

    def stream_started(self, turn: Turn, stream: StreamText) -> None:
        """The stream's first decoded sample is about to be queued."""
        turn._text.stream_started(turn._state, stream)
        if turn._text.timeline is not None:
            self._caption(turn)

    def stream_closed(self, turn: Turn, stream: StreamText) -> None:
        """``turn``'s stream queued all it decoded."""
        if turn._text.stream_closed(turn._state, stream):
            self._caption(turn)

    def queued(self, turn: Turn) -> None:
        """Audio of ``turn`` was queued."""
        turn._text.queued(turn._state)

    def captions(self) -> list[WordPlayed]:
        """``word_played`` payloads for every word whose start played since the last call."""
        out: list[WordPlayed] = []
        done = False
        for turn in self.worded:
            state = turn._state
            if state.played > turn._text.caption_due:  # else no word starts in what played since
                out += turn._text.captions(state)
            done = done or state.finished
        if done:
            self.worded = [turn for turn in self.worded if not turn._state.finished]
        return out

    def _caption(self, turn: Turn) -> None:
        if turn not in self.worded and not turn._state.finished:
            self.worded.append(turn)
