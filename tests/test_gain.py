"""Gain curves (agent_audio._gain).

Guards: the interrupt fade starts at 0 dB, falls linearly in dB to -60 dB and ends on
exact zero, whatever its length or how it is sliced; pause ramps stay in (0, 1) and
ramp-up ends on exactly 1.0; applying gain never overflows or mutates its input.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agent_audio._gain import apply_gain, fade_gains, ramp_down, ramp_up


def test_fade_starts_at_unity_ends_on_exact_zero() -> None:
    g = fade_gains(0, 9600, 9600)
    assert g[0] == 1.0
    assert g[-1] == 0.0
    assert np.all(np.diff(g) < 0)


def test_fade_is_linear_in_db_down_to_minus_60() -> None:
    n = 4800
    g = fade_gains(0, n, n).astype(np.float64)
    floor = 1e-3
    level_db = 20 * np.log10(g * (1 - floor) + floor)  # undo the offset that lands it on zero
    expected = np.linspace(0.0, -60.0, n)
    assert np.max(np.abs(level_db - expected)) < 0.01


@given(length=st.integers(1, 5000), cuts=st.lists(st.integers(1, 5000), max_size=6))
def test_fade_slices_join_into_the_whole_curve(length: int, cuts: list[int]) -> None:
    whole = fade_gains(0, length, length)
    points = sorted({0, length, *(c for c in cuts if c < length)})
    parts = [fade_gains(a, b - a, length) for a, b in itertools.pairwise(points)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert whole[-1] == 0.0


@given(gain=st.floats(0.01, 1.0), count=st.integers(1, 500))
def test_ramp_down_stays_audible_and_falls(gain: float, count: int) -> None:
    r = ramp_down(gain, count)
    assert r.shape == (count,)
    assert np.all(r > 0) and np.all(r < gain + 1e-6)
    assert np.all(np.diff(r) < 0)


@given(gain=st.floats(0.0, 0.99), count=st.integers(1, 500))
def test_ramp_up_ends_on_exactly_one(gain: float, count: int) -> None:
    r = ramp_up(gain, count)
    assert r[-1] == 1.0
    assert np.all(np.diff(r) > 0)
    assert r[0] > gain - 1e-6


def test_apply_gain_rounds_and_never_overflows_or_mutates() -> None:
    block = np.array([[32767, -32768], [1000, -1000], [3, -3]], dtype=np.int16)
    before = block.copy()
    out = apply_gain(block, np.array([1.0, 0.5, 0.5], dtype=np.float32))
    assert out.dtype == np.int16
    assert out.tolist() == [[32767, -32768], [500, -500], [2, -2]]
    assert np.array_equal(block, before)
