"""The exception hierarchy (agent_audio._errors).

Guards: one root; each error also is the matching builtin, so callers catching
ValueError/RuntimeError keep working.
"""

from __future__ import annotations

from agent_audio import AgentAudioError, InvalidAudioError, TrackClosedError, TurnClosedError


def test_hierarchy() -> None:
    assert issubclass(InvalidAudioError, AgentAudioError) and issubclass(InvalidAudioError, ValueError)
    assert issubclass(TrackClosedError, AgentAudioError) and issubclass(TrackClosedError, RuntimeError)
    assert issubclass(TurnClosedError, AgentAudioError) and issubclass(TurnClosedError, RuntimeError)
