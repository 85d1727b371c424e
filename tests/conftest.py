"""Fixtures: a manual clock and a track on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent_audio import AgentAudioTrack
from agent_audio.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def track(clock: ManualClock) -> AsyncIterator[AgentAudioTrack]:
    t = AgentAudioTrack(clock=clock)
    yield t
    t.stop()
