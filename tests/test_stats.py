"""Turn stats and track metrics (agent_audio._stats).

Guards: millisecond conversions use the track rate; snapshots are frozen.
"""

from __future__ import annotations

import dataclasses

import pytest

from agent_audio import TrackMetrics, TurnStats


def test_turn_stats_convert_to_ms_at_the_track_rate() -> None:
    s = TurnStats(7, 24000, 48000, 24000, 12000, 12000, True, False, 0.35)
    assert (s.pushed_ms, s.played_ms, s.dropped_ms) == (2000.0, 1000.0, 500.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.played_samples = 1  # type: ignore[misc]


def test_metrics_queued_ms() -> None:
    m = TrackMetrics(1, 0, 0, 0, 0.0, 4800, 48000)
    assert m.queued_ms == 100.0 and m.time_to_first_audio == {}
