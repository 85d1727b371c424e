"""The exception hierarchy: one root, each subclass also a matching builtin."""

from __future__ import annotations

__all__ = ["AgentAudioError", "InvalidAudioError", "TrackClosedError", "TurnClosedError"]


class AgentAudioError(Exception):
    """Root of every error raised by agent_audio."""


class InvalidAudioError(AgentAudioError, ValueError):
    """Pushed audio or an audio option is malformed.

    The message names what was expected against what was got, for example
    ``"expected int16 or float samples, got uint8"``. Nothing that was already
    queued is changed when this is raised.
    """


class TrackClosedError(AgentAudioError, RuntimeError):
    """The track was stopped; it accepts no more audio."""


class TurnClosedError(AgentAudioError, RuntimeError):
    """Audio was pushed to a turn whose synthesis was already marked complete.

    Raised by ``push(..., turn=...)`` / ``Turn.push()`` after ``end_turn()`` or
    after a newer turn was started. Audio pushed to an *interrupted* turn does
    not raise: it is dropped and counted, so that a TTS task still running after
    a barge-in cannot leak stale speech.
    """
