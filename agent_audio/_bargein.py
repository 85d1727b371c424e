"""Barge-in: a model-free policy that pauses, interrupts or resumes the agent from the user's voice activity.

Fed voice-activity probabilities of the user's audio (from any VAD; see
:mod:`agent_audio.vad`) with their timestamps, and optionally an STT's verdict, it
drives a track's ``pause()`` / ``interrupt()`` / ``resume()``:

* speech onset while a reply is live: **pause** (the queue is kept);
* the user goes on speaking past ``interrupt_after``: **interrupt** (a real barge-in);
* the user falls silent for ``resume_after`` first: **resume** (a false interruption:
  a cough, "mm-hmm"), from the exact sample where the pause stopped.

Race-free by construction, whatever the order of VAD windows, pushes and playout:

* It only ever resumes a pause it made itself and that is still in effect
  (``track.is_paused``, read at each decision). ``interrupt()`` ends the pause, so an
  interrupted reply can never be resumed by the policy; and the track drops every
  later push to an interrupted turn.
* The pause holds the track's output, not a turn: a reply paused before its first
  frame keeps its queue (pushes keep queueing) and plays in full on resume.
* A new turn started while the policy holds a pause stays paused until the decision,
  which then covers it too. The user is still speaking, and a reply generated before
  they finished is as stale as the one it follows: playing it over them would be the
  very barge-over the pause is there to prevent.
* A speech onset while no reply is live does nothing (reported as ``ignored``), and
  a speech segment is decided once: after an interrupt or a backchannel, the rest of
  that segment changes nothing, so a reply started right after a barge-in is not cut
  by the tail of the speech that caused it.
* It never calls a stopped track.

The only state it keeps is the user's current speech segment (when it began, since
when it is silent, whether its pause is pending); everything about the agent is read
from the track when a decision is made.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from pyee.asyncio import AsyncIOEventEmitter

from ._bargein_types import BargeInAction, BargeInDecision, BargeInReason, BargeInTrack
from ._errors import InvalidAudioError

__all__ = ["BargeInPolicy"]

logger = logging.getLogger(__name__)


@dataclass
class _Segment:
    """The user's current speech segment, on the policy's timeline (seconds)."""

    start: float
    voiced_until: float
    pending: bool  # the policy paused the track for this segment and nothing has decided yet
    silent_since: float | None = None


class BargeInPolicy(AsyncIOEventEmitter):
    """Pauses, interrupts or resumes ``track`` from the user's voice activity.

    Args:
        track: the agent's output track (anything with :class:`BargeInTrack`'s API).
        onset: probability at or above which silence turns into speech.
        offset: probability below which speech counts as silence (hysteresis: between
            the two, speech stays speech).
        interrupt_after: seconds of speech, from onset, after which a paused reply is
            interrupted.
        resume_after: seconds of silence after which a paused reply resumes, if the
            speech did not last ``interrupt_after``.
        pause_timeout: seconds after which the track resumes by itself if the policy
            has not decided (its VAD stopped feeding); None waits forever. 2 s is
            LiveKit's ``false_interruption_timeout`` for ``resume_false_interruption``.

    The defaults (0.5 / 0.35 probability, 0.5 s, 0.4 s) were measured on real speech
    over a real aiortc loopback with Silero VAD (agent_audio issue 18): a shorter
    ``resume_after`` of 0.2 s resumed inside the user's own pauses mid-sentence and made
    an audible blip every time.

    Events (pyee): ``"decision"`` with a :class:`BargeInDecision`, emitted after the
    track was called. A handler that raises is logged, not raised.

    Do not pause the track yourself while a policy is attached: the policy takes a
    pause that is in effect and that it made for granted. Resuming or interrupting from
    elsewhere is fine; the policy sees it.

    Raises:
        InvalidAudioError: an option out of range (message names expected and got).
    """

    def __init__(
        self,
        track: BargeInTrack,
        *,
        onset: float = 0.5,
        offset: float = 0.35,
        interrupt_after: float = 0.5,
        resume_after: float = 0.4,
        pause_timeout: float | None = 2.0,
    ) -> None:
        super().__init__()
        if not (0.0 <= offset <= onset <= 1.0):
            raise InvalidAudioError(f"expected 0 <= offset <= onset <= 1, got offset={offset!r} onset={onset!r}")
        for name, value in (("interrupt_after", interrupt_after), ("resume_after", resume_after)):
            if not math.isfinite(value) or value < 0:
                raise InvalidAudioError(f"expected {name} >= 0 seconds, got {value!r}")
        if pause_timeout is not None and (not math.isfinite(pause_timeout) or pause_timeout <= 0):
            raise InvalidAudioError(f"expected pause_timeout > 0 seconds or None, got {pause_timeout!r}")
        self.track = track
        self.onset = float(onset)
        self.offset = float(offset)
        self.interrupt_after = float(interrupt_after)
        self.resume_after = float(resume_after)
        self.pause_timeout = pause_timeout
        self._segment: _Segment | None = None
        self._last_segment_turn: int | None = None  # the reply the most recent segment addressed
        self._last_at = 0.0
        self._fed = False
        self.on("error", self._log_handler_error)
        track.on("resumed", self._on_track_event)
        track.on("interrupted", self._on_track_event)

    def close(self) -> None:
        """Stop listening to the track's events (before dropping the policy while the track lives on)."""
        self.track.remove_listener("resumed", self._on_track_event)
        self.track.remove_listener("interrupted", self._on_track_event)

    @property
    def user_speaking(self) -> bool:
        """Whether the user is in a speech segment (from onset until ``resume_after`` of silence)."""
        return self._segment is not None

    @property
    def pending(self) -> bool:
        """Whether a pause of the policy's is in effect and undecided."""
        segment = self._segment
        return segment is not None and segment.pending and self._track_live() and self.track.is_paused

    def feed(self, probability: float | bool, *, at: float) -> BargeInDecision | None:
        """Take the voice-activity probability of the user's next window and act on it.

        Args:
            probability: speech probability in [0, 1] of one window of the user's
                audio (a bool counts as 0 or 1).
            at: its timestamp in seconds, on any monotonic timeline (the adapter uses
                the window's start on the received frames' pts); never decreasing.

        Returns:
            The decision this window caused, or None (most windows decide nothing).

        Raises:
            InvalidAudioError: ``probability`` is not a number in [0, 1], or ``at`` is not
                finite or goes back in time.
        """
        p = float(probability)
        if not 0.0 <= p <= 1.0:
            raise InvalidAudioError(f"expected a probability in [0, 1], got {probability!r}")
        if not math.isfinite(at) or (self._fed and at < self._last_at):
            raise InvalidAudioError(f"expected at >= {self._last_at} seconds (the previous window), got {at!r}")
        self._last_at, self._fed = float(at), True
        decision = self._step(p, at)
        if decision is not None:
            self.emit("decision", decision)
        return decision

    def confirm(self, *, at: float | None = None) -> BargeInDecision:
        """An external signal (an STT partial) says the user's speech is a real interruption: interrupt now.

        Interrupts if the policy's pause is pending, or if the reply the user's latest
        speech segment talked over is still the current turn and live (a short "No."
        resumed as a false interruption). Otherwise ignored: a late signal never cuts a
        newer reply.

        Args:
            at: timestamp in seconds for the report; default the last window's.
        """
        at = self._last_at if at is None else at
        segment = self._segment
        turn = self.track.current_turn if self._track_live() else None
        if not self._track_live():
            decision = self._decision(BargeInAction.IGNORED, BargeInReason.TRACK_STOPPED, at)
        elif not self.pending and not self._reply_live():
            decision = self._decision(BargeInAction.IGNORED, BargeInReason.AGENT_IDLE, at)
        elif self.pending or (turn is not None and turn.id == self._last_segment_turn):
            decision = self._interrupt(BargeInReason.CONFIRMED, at)
        else:
            decision = self._decision(BargeInAction.IGNORED, BargeInReason.STALE_SIGNAL, at)
        if segment is not None:
            segment.pending = False
        self.emit("decision", decision)
        return decision

    def backchannel(self, *, at: float | None = None) -> BargeInDecision:
        """An external signal says the user's speech was a backchannel ("mm-hmm"): resume now if paused.

        The rest of the current speech segment then changes nothing (a real
        interruption that follows without a pause needs :meth:`confirm`).

        Args:
            at: timestamp in seconds for the report; default the last window's.
        """
        at = self._last_at if at is None else at
        segment = self._segment
        if not self._track_live():
            decision = self._decision(BargeInAction.IGNORED, BargeInReason.TRACK_STOPPED, at)
        elif self.pending:
            self.track.resume()
            decision = self._decision(BargeInAction.RESUME, BargeInReason.BACKCHANNEL, at)
        else:
            decision = self._decision(BargeInAction.IGNORED, BargeInReason.NOTHING_PENDING, at)
        if segment is not None:
            segment.pending = False
        self.emit("decision", decision)
        return decision

    # -- internals -------------------------------------------------------------

    def _on_track_event(self, _payload: object) -> None:
        """The track resumed or interrupted: if that ended the policy's pause, report it now.

        Events arrive a loop iteration late, so this only re-reads the track: the
        policy's own resume or interrupt finds nothing pending, and a newer pause of
        the policy's is still in effect.
        """
        segment = self._segment
        if segment is None or not segment.pending or (self._track_live() and self.track.is_paused):
            return
        segment.pending = False
        reason = BargeInReason.DECIDED_ELSEWHERE if self._track_live() else BargeInReason.TRACK_STOPPED
        self.emit("decision", self._decision(BargeInAction.IGNORED, reason, self._last_at, segment))

    def _step(self, p: float, at: float) -> BargeInDecision | None:
        segment = self._segment
        if segment is None:
            return self._on_onset(at) if p >= self.onset else None
        if p >= self.offset:
            segment.voiced_until, segment.silent_since = at, None
        elif segment.silent_since is None:
            segment.silent_since = at
        ended = segment.silent_since is not None and at - segment.silent_since >= self.resume_after
        if ended:
            self._segment = None
        if not segment.pending:  # decided (or ignored) already: the rest of the segment changes nothing
            return None
        if not self._track_live():
            segment.pending = False
            return self._decision(BargeInAction.IGNORED, BargeInReason.TRACK_STOPPED, at, segment)
        if not self.track.is_paused:  # resumed, interrupted or timed out by someone else
            segment.pending = False
            return self._decision(BargeInAction.IGNORED, BargeInReason.DECIDED_ELSEWHERE, at, segment)
        if segment.silent_since is None and at - segment.start >= self.interrupt_after:
            segment.pending = False
            return self._interrupt(BargeInReason.SPEECH_LASTED, at, segment)
        if ended:
            segment.pending = False
            self.track.resume()
            return self._decision(BargeInAction.RESUME, BargeInReason.SILENCE, at, segment)
        return None

    def _on_onset(self, at: float) -> BargeInDecision:
        track = self.track
        self._segment = _Segment(start=at, voiced_until=at, pending=False)
        if not self._track_live():
            return self._decision(BargeInAction.IGNORED, BargeInReason.TRACK_STOPPED, at)
        if not self._reply_live():
            return self._decision(BargeInAction.IGNORED, BargeInReason.AGENT_IDLE, at)
        turn = track.current_turn
        self._last_segment_turn = None if turn is None else turn.id
        if track.is_paused:
            return self._decision(BargeInAction.IGNORED, BargeInReason.PAUSED_ELSEWHERE, at)
        if self.pause_timeout is None:
            track.pause()
        else:
            track.pause(timeout=self.pause_timeout, on_timeout="resume")
        self._segment.pending = True
        return self._decision(BargeInAction.PAUSE, BargeInReason.SPEECH_ONSET, at)

    def _interrupt(self, reason: BargeInReason, at: float, segment: _Segment | None = None) -> BargeInDecision:
        track = self.track
        track.interrupt()
        if track.is_paused:  # nothing was left to interrupt: release the pause, nothing can play from it
            track.resume()
        return self._decision(BargeInAction.INTERRUPT, reason, at, segment)

    def _reply_live(self) -> bool:
        """A reply is live: the current turn is neither interrupted nor done, or voice is still playing."""
        track = self.track
        turn = track.current_turn
        if turn is None:
            return False
        stats = turn.stats
        return not stats.interrupted and (not stats.finished or track.is_speaking)

    def _track_live(self) -> bool:
        return self.track.readyState == "live"

    def _decision(
        self, action: BargeInAction, reason: BargeInReason, at: float, segment: _Segment | None = None
    ) -> BargeInDecision:
        segment = segment if segment is not None else self._segment
        duration = 0.0 if segment is None else max(0.0, segment.voiced_until - segment.start)
        turn = self.track.current_turn
        return BargeInDecision(action, reason, at, None if turn is None else turn.id, duration)

    def _log_handler_error(self, exc: BaseException) -> None:
        logger.error("agent_audio: a barge-in decision handler raised", exc_info=exc)
