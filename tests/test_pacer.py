"""The pacing grid (agent_audio._pacer).

Guards: frame n is due at anchor + n * frame_duration; lateness up to 3 frames keeps the
grid (exact long-run rate); beyond that the grid re-anchors on the late frame; late
frames (more than half a frame) and the worst lateness are counted.
"""

from __future__ import annotations

import pytest

from agent_audio._pacer import REANCHOR_FRAMES, Pacer


def test_grid_is_anchored_at_the_first_call() -> None:
    p = Pacer(0.02)
    assert p.due(5.0) == 5.0
    assert p.handed_out(5.0, 5.0) == 0.0
    assert p.due(7.0) == pytest.approx(5.02)


def test_lateness_within_bound_keeps_the_grid() -> None:
    p = Pacer(0.02)
    p.handed_out(0.0, p.due(0.0))
    late = 0.02 + REANCHOR_FRAMES * 0.02 - 0.001
    assert p.handed_out(late, p.due(late)) == pytest.approx(REANCHOR_FRAMES * 0.02 - 0.001)
    assert p.due(late) == pytest.approx(0.04)
    assert p.reanchors == 0 and p.late_frames == 1


def test_lateness_beyond_bound_reanchors_on_the_late_frame() -> None:
    p = Pacer(0.02)
    p.handed_out(0.0, p.due(0.0))
    p.handed_out(0.5, p.due(0.5))
    assert p.reanchors == 1
    assert p.due(0.5) == pytest.approx(0.52)
    assert p.max_lateness == pytest.approx(0.48)


def test_small_jitter_is_not_late() -> None:
    p = Pacer(0.02)
    p.handed_out(0.0, p.due(0.0))
    for n in range(1, 100):
        p.handed_out(n * 0.02 + 0.009, p.due(0.0))
    assert p.late_frames == 0 and p.reanchors == 0 and p.max_lateness == pytest.approx(0.009)
