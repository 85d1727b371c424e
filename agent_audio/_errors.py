"""The exception hierarchy: one root, each subclass also a matching builtin."""

from __future__ import annotations

__all__ = [
    "AgentAudioError",
    "EncodedOutputError",
    "InvalidAudioError",
    "InvalidStateError",
    "TrackClosedError",
    "TurnClosedError",
]


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


class EncodedOutputError(InvalidStateError):
    """Encoded output was asked for where it would not go out as the codec the peer expects.

    Raised by :func:`agent_audio.enable_opus_output` before any packet is produced: the
    sender is not on that peer connection, negotiation has not finished, the negotiated
    codec is not Opus, the sender's track is not an agent_audio track, or the track has
    already sent frames (aiortc's encoder would have stamped RTP time from its own
    sample count). Also raised by ``AgentAudioTrack.recv()`` once the track's output is
    encoded (read the encoded view instead). The message names expected against got,
    for example ``"expected audio/opus negotiated for this sender, got audio/PCMU"``.
    """
