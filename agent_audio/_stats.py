"""Snapshots of a turn's account and of the track's pacing metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._words import HeardWord, PartialWord

__all__ = ["TrackMetrics", "TurnStats"]


@dataclass(frozen=True)
class TurnStats:
    """One turn's account, in samples per channel at the track rate.

    ``pushed_samples == played_samples + dropped_samples + queued_samples`` always.
    Units: ``*_samples`` are samples per channel at ``sample_rate`` Hz (exact);
    ``*_ms`` are milliseconds; ``time_to_first_audio`` is in seconds, like every
    option and every other duration the package reports without a unit suffix.

    Attributes:
        turn_id: id of the turn.
        sample_rate: track rate in Hz (the unit of the counts).
        pushed_samples, played_samples, dropped_samples, queued_samples: samples per channel.
        interrupted, finished: bools.
        time_to_first_audio: seconds, or None before the first sample played.
        heard_words: the words heard in full, each with start/end in ms (empty without words).
        partial_word: the word cut by an interrupt, with the fraction heard, or None.
        heard_text: the heard words as one string ("" without words or when nothing played).
    """

    turn_id: int
    """Id of the turn."""
    sample_rate: int
    """Track sample rate in Hz: the unit of every ``*_samples`` count."""
    pushed_samples: int
    """Samples pushed for the turn, after conversion to the track rate."""
    played_samples: int
    """Samples handed out by ``recv()``; an interrupt's fade tail counts as played."""
    dropped_samples: int
    """Samples dropped by an interrupt (including audio pushed after it)."""
    queued_samples: int
    """Samples still waiting to be played."""
    interrupted: bool
    """Whether ``interrupt()`` (or ``stop()``) cut the turn short."""
    finished: bool
    """Whether the turn has played out or was interrupted and its fade tail played."""
    time_to_first_audio: float | None
    """Seconds from ``start_turn()`` to the ``recv()`` that handed out its first sample, or None."""
    heard_words: tuple[HeardWord, ...] = ()
    """Words pushed with the audio (``words=``/``text=``) that played entirely at full level, in order."""
    partial_word: PartialWord | None = None
    """The word full level ended inside when the turn was interrupted, with the fraction heard; else None."""
    heard_text: str = ""
    """``heard_words`` joined by spaces, plus the partial word if at least 20 % of it was heard."""

    @property
    def played_ms(self) -> float:
        """Played duration in milliseconds: ``audio_end_ms`` for OpenAI Realtime's ``conversation.item.truncate``."""
        return self.played_samples * 1000.0 / self.sample_rate

    @property
    def pushed_ms(self) -> float:
        """Pushed duration in milliseconds."""
        return self.pushed_samples * 1000.0 / self.sample_rate

    @property
    def dropped_ms(self) -> float:
        """Dropped duration in milliseconds."""
        return self.dropped_samples * 1000.0 / self.sample_rate


@dataclass(frozen=True)
class TrackMetrics:
    """The track's pacing and queue metrics since it was created.

    Attributes:
        frames_sent, late_frames, reanchors, underruns: counts.
        max_lateness: seconds.
        queued_samples: samples per channel at ``sample_rate`` Hz (``queued_ms`` in ms).
        time_to_first_audio: seconds per turn id (the 64 most recent turns).
        decode_errors: count of corrupt encoded packets skipped.
    """

    frames_sent: int
    """Frames returned by ``recv()``."""
    late_frames: int
    """Frames handed out more than half a frame duration after their due time."""
    reanchors: int
    """Times the pacing grid was re-anchored after a stall instead of bursting frames."""
    underruns: int
    """Underrun episodes (queue ran dry mid-turn)."""
    max_lateness: float
    """Worst lateness of a frame against its due time, in seconds."""
    queued_samples: int
    """Samples per channel queued (all turns)."""
    sample_rate: int
    """Track sample rate in Hz."""
    time_to_first_audio: dict[int, float] = field(default_factory=dict)
    """Seconds of time to first audio per turn id, for the most recent turns (up to 64)."""
    decode_errors: int = 0
    """Corrupt or truncated packets skipped in encoded streams (:meth:`AgentAudioTrack.push_encoded`)."""

    @property
    def queued_ms(self) -> float:
        """Queued duration in milliseconds."""
        return self.queued_samples * 1000.0 / self.sample_rate
