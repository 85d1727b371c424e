"""The playout engine: which samples go out next, and the per-turn account of them.

Synchronous and clock-free: the shell asks :meth:`PlayoutEngine.render` for the next
``n`` samples per channel at each frame and gets a :class:`Rendered` value back: the
int16 block of shape ``(n, channels)``, whether it holds voice, a bound of its peak,
and what happened meanwhile (a turn's first sample played, a turn finished, an
underrun began). Every other call that can finish a turn returns its events too, so
the shell never reads the engine's state after the fact.

Invariant, for every turn at every moment (counts in samples per channel at the
track rate)::

    pushed == played + dropped + queued

The fade and the pause ramp start from the gain the listener hears now: when the last
rendered block held no voice (nothing of the turn has played yet, or an underrun, or a
hold), a pause holds at once and an interrupt drops at once, so nobody hears a click of
a reply that was never audible. A pause during an interrupt's fade does not freeze the
fade: the interrupted turn plays its tail and finishes, and the hold applies after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ._gain import apply_gain, fade_gains, ramp_down, ramp_up
from ._queue import UNKNOWN_PEAK, Peaks, SampleQueue

__all__ = ["EngineEvent", "EventKind", "InterruptResult", "PlayoutEngine", "Rendered", "TurnState"]

Block = npt.NDArray[np.int16]


class EventKind(Enum):
    """What the engine reports to the shell."""

    STARTED = "playout_started"
    FINISHED = "turn_finished"
    UNDERRUN = "underrun"


@dataclass(frozen=True)
class EngineEvent:
    """One thing that happened during an engine call."""

    kind: EventKind
    turn_id: int
    offset: int = 0
    """Samples per channel into the rendered block where it happened (0 outside render)."""


_NO_EVENTS: tuple[EngineEvent, ...] = ()
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (the per-frame path)


class Rendered(NamedTuple):
    """What one :meth:`PlayoutEngine.render` call produced."""

    samples: Block
    """int16, shape ``(n, channels)``; possibly a read-only view of a queued chunk."""
    voiced: bool
    """Whether any voice sample at non-zero gain is in the block."""
    peak: int
    """An upper bound of ``abs()`` over ``samples`` (:data:`UNKNOWN_PEAK` when not known)."""
    turn_id: int | None
    """The turn the block's last voice sample belongs to, or None without voice."""
    events: Sequence[EngineEvent]
    """What happened while rendering, in order."""


@dataclass(frozen=True)
class InterruptResult:
    """What one :meth:`PlayoutEngine.interrupt` call did."""

    turns: list[TurnState]
    """Turns newly marked interrupted, oldest first (empty: nothing was playing)."""
    fade_samples: int
    """Samples per channel left to play in the interrupt window."""
    dropped: int
    """Samples per channel dropped by the call, over all turns."""
    garbage: deque[tuple[int, Block, Peaks | None]]
    """The dropped chunks, not yet freed: release them off the caller's path."""
    events: Sequence[EngineEvent]
    """Turns that finished at the call (nothing left to play)."""


@dataclass(eq=False)
class TurnState:
    """The mutable account of one turn (samples per channel at the track rate)."""

    id: int
    pushed: int = 0
    played: int = 0
    dropped: int = 0
    ended: bool = False
    """Synthesis is complete: no more audio will be accepted."""
    interrupted: bool = False
    finished: bool = False
    """Played out (or interrupted and its fade tail played); ``turn_finished`` was reported."""
    pushing: int = 0
    """Pushes and open streams under way for the turn; a turn does not finish meanwhile."""
    synthesized: bool = False
    """The shell has queued the turn's last audio (its resampler tail) and reported its end."""
    full_level_end: int | None = None
    """Played samples at which the interrupt fade (or the ramp of a pause it cut) began."""

    @property
    def accepts_audio(self) -> bool:
        """Whether a push to this turn would be queued (not interrupted, not ended)."""
        return not (self.interrupted or self.ended)


class PlayoutEngine:
    """Turn-tagged sample queue with pause/resume ramps and interrupt fade.

    Args:
        channels: channel count of every block (1 to 8).
        fade_samples: length of the interrupt fade in samples per channel; 0 cuts.
        ramp_samples: length of the pause/resume ramp in samples per channel, >= 1.
    """

    def __init__(self, *, channels: int, fade_samples: int, ramp_samples: int) -> None:
        self.channels = channels
        self.fade_samples = fade_samples
        self.ramp_samples = max(1, ramp_samples)
        self.queue = SampleQueue()
        self.turns: dict[int, TurnState] = {}
        """Turns not yet finished, by id."""
        self.current: TurnState | None = None
        self.paused = False
        self.underruns = 0
        self._events: list[EngineEvent] = []
        self._audible = False  # the last rendered block held voice at non-zero gain
        self._next_id = 1
        self._gain = 1.0  # pause gain once the current ramp (if any) completes
        self._ramp: npt.NDArray[np.float32] | None = None
        self._ramp_pos = 0
        self._ramp_from = 1.0  # gain before the current ramp started
        self._fade_len = 0  # samples in the interrupt window, 0 when not fading
        self._fade_pos = 0
        self._fade_flat = False  # window shaped by a pause ramp instead of the fade curve
        self._starved = False
        self._pause_mark: tuple[int, int] | None = None  # (turn id, played) when the last pause began

    # -- turns ---------------------------------------------------------------

    def start_turn(self) -> TurnState:
        """Start a new turn; the caller ends the open current turn first."""
        turn = TurnState(id=self._next_id)
        self._next_id += 1
        self.turns[turn.id] = turn
        self.current = turn
        self._starved = False
        return turn

    def end_turn(self, turn: TurnState) -> Sequence[EngineEvent]:
        """Mark synthesis of ``turn`` complete; it finishes once its audio has played."""
        turn.ended = True
        return self.settle(turn)

    def settle(self, turn: TurnState) -> Sequence[EngineEvent]:
        """Finish ``turn`` now if nothing more can come for it."""
        self._finish_if_done(turn, 0)
        return self._take_events()

    def push_started(self, turn: TurnState) -> None:
        """A push or an encoded stream began for ``turn``: it does not finish until :meth:`push_done`."""
        turn.pushing += 1

    def push_done(self, turn: TurnState) -> Sequence[EngineEvent]:
        """A push or stream of ``turn`` is over; the turn may finish now."""
        if turn.pushing:
            turn.pushing -= 1
        return self.settle(turn)

    def enqueue(self, turn: TurnState, samples: Block) -> bool:
        """Queue int16 ``samples`` of shape ``(n, channels)`` for ``turn``.

        Audio for an interrupted or finished turn is counted as pushed and dropped at
        once. The shell refuses new pushes to an ended turn; one under way completes.

        Returns:
            Whether the samples were queued (False: dropped).
        """
        turn.pushed += len(samples)
        if turn.interrupted or turn.finished:
            turn.dropped += len(samples)
            return False
        if len(samples):
            self.queue.append(turn.id, samples, measure=True)  # block peaks bound the frames cut from it
        return True

    def queued_for(self, turn: TurnState) -> int:
        """Samples per channel of ``turn`` still queued."""
        return self.queue.queued_for(turn.id)

    # -- control -------------------------------------------------------------

    def pause(self) -> bool:
        """Ramp the voice down from the gain heard now, then hold. False if already paused.

        During an interrupt's fade the fade plays on; the hold begins after it.
        """
        if self.paused:
            return False
        self.paused = True
        if self._fade_len:
            self._pause_mark = None  # the fade goes on; the hold begins after it
            return True
        head = self.queue.head_turn()
        turn = None if head is None else self.turns.get(head)
        self._pause_mark = None if turn is None else (turn.id, turn.played)
        gain = self._current_gain() if self._audible else 0.0
        count = min(len(self.queue), max(1, round(gain * self.ramp_samples)))
        self._set_ramp(ramp_down(gain, count) if gain > 0 and count else None, 0.0)
        return True

    def resume(self) -> bool:
        """Ramp back up from the exact sample where pause stopped. False if not paused."""
        if not self.paused:
            return False
        self.paused = False
        if self._fade_len:
            return True  # paused during a fade: the fade went on, nothing to undo
        gain = self._current_gain()
        count = max(1, round((1.0 - gain) * self.ramp_samples))
        self._set_ramp(ramp_up(gain, count) if gain < 1.0 else None, 1.0)
        return True

    def interrupt(self, *, cut: bool = False) -> InterruptResult:
        """Fade out what is queued over ``fade_samples`` and drop the rest.

        The fade starts from the gain heard now. Nothing is faded when the listener
        hears no voice (held, starved, or the next samples belong to a turn that has
        not played yet): everything is dropped at once. While a pause ramp is running,
        the window is the rest of that ramp. Either way the pause ends (the next turn
        plays without a resume). A fade already running keeps its window; only audio
        queued after it is dropped. ``cut=True`` drops everything at once.
        """
        head = self.queue.head_turn()
        if cut:
            window = 0
            self._fade_len = self._fade_pos = 0
            self._ramp = None
        elif self._fade_len:
            window = self._fade_len - self._fade_pos
        elif self._ramp is not None and self.paused:
            window = len(self._ramp) - self._ramp_pos
            self._fade_flat = True
        elif self.paused or not self._audible or head is None or not self.turns[head].played:
            window = 0
        else:
            window = min(len(self.queue), self.fade_samples)
            self._fade_flat = False
        if not self._fade_len and window:
            self._fade_len, self._fade_pos = window, 0
        mark = self._pause_mark if self.paused else None
        if not window:
            self._ramp = None
        self.paused = False
        self._gain = 1.0  # at once, or once the rest of the window has played
        dropped, garbage = self.queue.truncate(window)
        for turn_id, count in dropped.items():
            self.turns[turn_id].dropped += count
        hit = [t for t in self.turns.values() if not t.interrupted]
        for turn in hit:
            turn.interrupted = True
            turn.full_level_end = min(turn.played, mark[1]) if mark is not None and mark[0] == turn.id else turn.played
        for turn in list(self.turns.values()):  # also turns interrupted before, whose window was cut
            self._finish_if_done(turn, 0)
        return InterruptResult(hit, len(self.queue), sum(dropped.values()), garbage, self._take_events())

    def close(self) -> InterruptResult:
        """Drop everything and finish every turn now, pushes under way or not (the track stopped)."""
        result = self.interrupt(cut=True)
        for turn in list(self.turns.values()):
            turn.pushing = 0
            self._finish_if_done(turn, 0)
        return InterruptResult(result.turns, 0, result.dropped, result.garbage, [*result.events, *self._take_events()])

    # -- rendering -----------------------------------------------------------

    def render(self, n: int) -> Rendered:
        """The next ``n`` samples per channel, with what happened while rendering them.

        Consumes queued samples unless paused (held after the ramp). Samples the
        queue cannot supply are silence. The block may be a read-only view of a
        queued chunk; it is never written to afterwards.
        """
        queue = self.queue
        if self._ramp is None and not self._fade_len and not self.paused:
            taken = queue.take(n)
            if taken is not None:  # fast path: one frame from the head chunk, no copy
                turn = self.turns[taken[0]]
                if not turn.played:
                    self._events.append(EngineEvent(EventKind.STARTED, turn.id, 0))
                turn.played += n
                if not turn.accepts_audio:
                    self._finish_if_done(turn, n)
                self._starved = False
                self._audible = True
                events = self._events
                if events:
                    self._events = []
                    return Rendered(taken[1], True, taken[2], turn.id, events)
                return _new(Rendered, (taken[1], True, taken[2], turn.id, _NO_EVENTS))
            pieces = queue.read(n)
            out = np.zeros((n, self.channels), dtype=np.int16)
            pos = self._copy(pieces, out, 0, None)
            self._audible = pos > 0
            if pos < n:
                self._note_starved(pos)
            return Rendered(
                out, pos > 0, queue.read_peak if pos else 0, pieces[-1][0] if pieces else None, self._take_events()
            )
        return self._render_shaped(n)

    def _render_shaped(self, n: int) -> Rendered:
        out = np.zeros((n, self.channels), dtype=np.int16)
        pos = 0
        voiced = False
        last_turn: int | None = None
        while pos < n and len(self.queue):
            if self.paused and self._ramp is None and not self._fade_len:
                break  # holding: time runs on, the queue waits
            want = n - pos
            if self._ramp is not None:
                want = min(want, len(self._ramp) - self._ramp_pos)
            if self._fade_len:
                want = min(want, self._fade_len - self._fade_pos)
            pieces = self.queue.read(want)
            got = sum(len(block) for _, block in pieces)
            if self._ramp is not None:
                gains = self._ramp[self._ramp_pos : self._ramp_pos + got].copy()
                self._ramp_pos += got
                if self._ramp_pos == len(self._ramp):
                    self._ramp = None
            else:
                gains = np.full(got, self._gain, dtype=np.float32)
            if self._fade_len:
                if not self._fade_flat:
                    gains *= fade_gains(self._fade_pos, got, self._fade_len)
                self._fade_pos += got
                if self._fade_pos == self._fade_len:
                    self._fade_len = self._fade_pos = 0
                    if self.paused:  # paused during the fade: hold from here
                        self._ramp, self._gain = None, 0.0
            if bool(gains.any()):
                voiced = True
                last_turn = pieces[-1][0]
            pos = self._copy(pieces, out, pos, gains)
        self._audible = voiced
        if pos < n and not (self.paused and self._ramp is None):
            self._note_starved(pos)
        return Rendered(out, voiced, UNKNOWN_PEAK if pos else 0, last_turn, self._take_events())

    def _copy(
        self,
        pieces: list[tuple[int, Block]],
        out: Block,
        pos: int,
        gains: npt.NDArray[np.float32] | None,
    ) -> int:
        start = pos
        for _, block in pieces:
            end = pos + len(block)
            if gains is None:
                out[pos:end] = block
            else:
                out[pos:end] = apply_gain(block, gains[pos - start : end - start])
            pos = end
        self._account(pieces, start)
        return pos

    def _account(self, pieces: list[tuple[int, Block]], offset: int) -> None:
        if not pieces:
            return
        self._starved = False
        ends: dict[int, int] = {}  # turn id -> offset just after its last sample in the block
        for turn_id, block in pieces:
            turn = self.turns[turn_id]
            if turn.played == 0:
                self._events.append(EngineEvent(EventKind.STARTED, turn_id, offset))
            turn.played += len(block)
            offset += len(block)
            ends[turn_id] = offset
        for turn_id, end in ends.items():
            self._finish_if_done(self.turns[turn_id], end)

    def _note_starved(self, offset: int) -> None:
        turn = self.current
        if turn is None or not turn.accepts_audio or turn.played == 0 or self._starved:
            return
        self._starved = True
        self.underruns += 1
        self._events.append(EngineEvent(EventKind.UNDERRUN, turn.id, offset))

    def _finish_if_done(self, turn: TurnState, offset: int) -> None:
        if turn.finished or turn.accepts_audio or turn.pushing or self.queue.queued_for(turn.id):
            return
        turn.finished = True
        del self.turns[turn.id]
        self._events.append(EngineEvent(EventKind.FINISHED, turn.id, offset))

    def _take_events(self) -> Sequence[EngineEvent]:
        events = self._events
        if not events:
            return _NO_EVENTS
        self._events = []
        return events

    def _current_gain(self) -> float:
        """Gain of the most recently played sample (1.0 at rest, 0.0 when held)."""
        if self._ramp is None:
            return self._gain
        if self._ramp_pos == 0:
            return self._ramp_from
        return float(self._ramp[self._ramp_pos - 1])

    def _set_ramp(self, ramp: npt.NDArray[np.float32] | None, settle: float) -> None:
        self._ramp_from = self._current_gain()
        self._ramp, self._ramp_pos, self._gain = ramp, 0, settle
