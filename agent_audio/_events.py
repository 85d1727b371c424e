"""Event payloads: frozen dataclasses, one per event name, each carrying the turn id.

The track emits them with pyee (``track.on("turn_finished", handler)``), always
scheduled on the event loop, never inside ``recv()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._stats import TurnStats

__all__ = ["Interrupted", "Paused", "PlayoutStarted", "Resumed", "TurnFinished", "Underrun", "WordPlayed"]


@dataclass(frozen=True)
class PlayoutStarted:
    """``"playout_started"``: the first frame holding audio of a turn was handed out by ``recv()``."""

    turn_id: int
    """Id of the turn (see :attr:`agent_audio.Turn.id`)."""
    time_to_first_audio: float
    """Seconds from ``start_turn()`` to the ``recv()`` that returned the turn's first sample."""
    pts: int
    """pts (samples per channel since the track's first frame) of the turn's first sample."""


@dataclass(frozen=True)
class TurnFinished:
    """``"turn_finished"``: exactly once per turn, when it has played out or was interrupted.

    An interrupted turn finishes when its fade tail has been handed out.
    """

    turn_id: int
    """Id of the turn."""
    stats: TurnStats
    """The turn's counts at that moment (samples per channel at the track rate)."""


@dataclass(frozen=True)
class Interrupted:
    """``"interrupted"``: ``interrupt()`` stopped speech that was playing or queued."""

    turn_id: int
    """Id of the current turn at the call (the newest one that was interrupted)."""
    turn_ids: tuple[int, ...]
    """Ids of every turn the call interrupted, oldest first."""
    fade_samples: int
    """Samples per channel still to play under the fade (0 when cut or paused)."""
    dropped_samples: int
    """Samples per channel dropped at the call, over all interrupted turns."""


@dataclass(frozen=True)
class Paused:
    """``"paused"``: ``pause()`` took effect (a false-interruption candidate)."""

    turn_id: int | None
    """Id of the current turn, or None before the first turn."""


@dataclass(frozen=True)
class Resumed:
    """``"resumed"``: ``resume()`` took effect (or a pause timed out into a resume)."""

    turn_id: int | None
    """Id of the current turn, or None before the first turn."""
    paused_for: float
    """Seconds between the pause and this resume, on the track's clock."""


@dataclass(frozen=True)
class Underrun:
    """``"underrun"``: the queue ran dry in the middle of a turn that has started playing.

    Reported once per episode: the next one is reported only after audio played again.
    """

    turn_id: int
    """Id of the starving turn."""
    played_samples: int
    """Samples per channel of the turn played before it ran dry."""


@dataclass(frozen=True)
class WordPlayed:
    """``"word_played"``: playout passed the start of a word pushed with the audio (live captions).

    Scheduled like every event, after the ``recv()`` that handed out the word's first
    sample (within one frame duration of it being heard).
    """

    turn_id: int
    """Id of the turn."""
    index: int
    """Position of the word in its turn, from 0."""
    text: str
    """The word as pushed."""
    start_ms: float
    """Start of the word in milliseconds from the turn's first sample."""
    end_ms: float
    """End of the word in milliseconds from the turn's first sample (as known when it started)."""
    estimated: bool
    """True when the timing was spread from ``text=`` rather than given by the TTS."""
