"""The barge-in policy's vocabulary: the track API it drives, and its decisions with their reasons.

See :class:`agent_audio.BargeInPolicy` for what each decision means in a conversation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ._stats import TurnStats

__all__ = ["BargeInAction", "BargeInDecision", "BargeInReason", "BargeInTrack"]


class _TurnLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def stats(self) -> TurnStats: ...


class BargeInTrack(Protocol):
    """The part of the public track API the policy uses (:class:`agent_audio.AgentAudioTrack` has it)."""

    @property
    def readyState(self) -> str: ...  # aiortc's name
    @property
    def is_paused(self) -> bool: ...
    @property
    def is_speaking(self) -> bool: ...
    @property
    def current_turn(self) -> _TurnLike | None: ...
    def pause(self, *, timeout: float | None = ..., on_timeout: Literal["resume", "interrupt"] = ...) -> None: ...
    def resume(self) -> None: ...
    def interrupt(self) -> None: ...
    def on(self, event: str, f: Callable[..., Any]) -> Any: ...
    def remove_listener(self, event: str, f: Callable[..., Any]) -> None: ...


class BargeInAction(str, enum.Enum):
    """What the policy did."""

    PAUSE = "pause"
    RESUME = "resume"
    INTERRUPT = "interrupt"
    IGNORED = "ignored"


class BargeInReason(str, enum.Enum):
    """Why the policy did it."""

    SPEECH_ONSET = "speech_onset"
    """pause: the probability reached ``onset`` while a reply was live."""
    SPEECH_LASTED = "speech_lasted"
    """interrupt: speech went on for ``interrupt_after`` seconds."""
    SILENCE = "silence"
    """resume: the user fell silent for ``resume_after`` seconds first (false interruption)."""
    CONFIRMED = "confirmed"
    """interrupt: :meth:`BargeInPolicy.confirm` (an STT partial said it was a real interruption)."""
    BACKCHANNEL = "backchannel"
    """resume: :meth:`BargeInPolicy.backchannel` (an STT partial said "mm-hmm")."""
    AGENT_IDLE = "agent_idle"
    """ignored: speech onset, or a signal, while no reply was live."""
    PAUSED_ELSEWHERE = "paused_elsewhere"
    """ignored: speech onset while the track was already paused by someone else."""
    DECIDED_ELSEWHERE = "decided_elsewhere"
    """ignored: the policy's pause was ended by someone else (resume, interrupt, pause timeout)."""
    STALE_SIGNAL = "stale_signal"
    """ignored: :meth:`BargeInPolicy.confirm` while a reply newer than the user's last speech plays."""
    NOTHING_PENDING = "nothing_pending"
    """ignored: a backchannel signal with no pause of the policy's in effect."""
    TRACK_STOPPED = "track_stopped"
    """ignored: the track was stopped; the policy does not touch it any more."""


@dataclass(frozen=True)
class BargeInDecision:
    """Payload of the policy's ``"decision"`` event: one thing it did (or chose not to do), and why."""

    action: BargeInAction
    """What it did to the track (``ignored``: nothing)."""
    reason: BargeInReason
    """Why."""
    at: float
    """Seconds on the policy's timeline: the timestamp of the VAD window (or signal) that decided."""
    turn_id: int | None
    """Id of the track's current turn at the decision, or None before the first."""
    speech_duration: float
    """Seconds of the user's current speech segment so far (from onset to its last voiced window); 0 if none."""
