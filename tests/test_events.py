"""Event payloads (agent_audio._events).

Guards: every payload is a frozen dataclass carrying the turn id.
"""

from __future__ import annotations

import dataclasses

import pytest

from agent_audio import Interrupted, Paused, PlayoutStarted, Resumed, TurnFinished, TurnStats, Underrun

PAYLOADS = [
    PlayoutStarted(1, 0.2, 0),
    TurnFinished(1, TurnStats(1, 48000, 0, 0, 0, 0, False, True, None)),
    Interrupted(2, (1, 2), 9600, 100),
    Paused(3),
    Resumed(3, 0.6),
    Underrun(4, 960),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_payloads_are_frozen_and_carry_the_turn_id(payload: object) -> None:
    assert dataclasses.is_dataclass(payload)
    assert isinstance(getattr(payload, "turn_id"), int)  # noqa: B009  # any payload type
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(payload, "turn_id", 99)  # noqa: B010  # the assignment must be refused
