"""The exception hierarchy: one root, each subclass also a matching builtin."""

from __future__ import annotations

__all__ = ["AgentAudioError", "InvalidAudioError", "InvalidStateError", "TrackClosedError", "TurnClosedError"]


class AgentAudioError(Exception):
    """Root of every error raised by agent_audio."""


class InvalidAudioError(AgentAudioError, ValueError):
    """Pushed audio or an option is malformed or out of range.

    The message names what was expected against what was got, for example
    ``"expected int16 or float samples, got uint8"``. Nothing that was already
    queued is changed when this is raised.
    """


class InvalidStateError(AgentAudioError, RuntimeError):
    """A call was made in a state that does not allow it (as aiortc's ``InvalidStateError``).

    For example a sink attached twice, a second recording, or a thread-safe push with
    no event loop to run on. Nothing changed.
    """


class TrackClosedError(InvalidStateError):
    """The track was stopped; it accepts no more audio."""


class TurnClosedError(InvalidStateError):
    """Audio was pushed to a turn whose synthesis was already marked complete.

    Raised by ``push(..., turn=...)`` / ``Turn.push()`` after ``end_turn()`` or
    after a newer turn was started. Audio pushed to an *interrupted* turn does
    not raise: it is dropped and counted, so that a TTS task still running after
    a barge-in cannot leak stale speech.
    """
