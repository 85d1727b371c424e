"""Measurements on received audio (agent_audio.demo.analysis).

Guards: dBFS levels of known signals; silence-after measures to the start of the final
silent run and refuses audio that is still loud at the end; the pause gap is the silent
run around the middle of the pause (a word gap just before it cannot be mistaken for it);
the pause/interrupt placement lands inside loud speech.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent_audio.demo.analysis import WINDOW, band_filter, levels_dbfs, most_voiced, silence_after, silent_run

RATE = 48000


def test_levels_of_known_signals() -> None:
    t = np.arange(RATE) / RATE
    full = np.sin(2 * np.pi * 1000 * t)
    assert levels_dbfs(full, RATE) == pytest.approx(np.full(100, -3.01), abs=0.01)
    assert levels_dbfs(full * 0.01, RATE)[0] == pytest.approx(-43.01, abs=0.01)
    assert levels_dbfs(np.zeros(RATE), RATE)[0] == -120.0


def _timeline(levels: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(len(levels)) * WINDOW, np.array(levels, dtype=np.float64)


def test_silence_after_measures_to_the_final_silent_run() -> None:
    times, levels = _timeline([-20, -20, -30, -45, -35, -50, -60, -90, -90])
    assert silence_after(times, levels, start=0.015, until=0.08) == pytest.approx(0.035)
    assert silence_after(times, levels, start=0.055, until=0.08) == 0.0
    with pytest.raises(ValueError, match="expected silence"):
        silence_after(times, levels, start=0.0, until=0.04)


def test_silent_run_around_an_instant() -> None:
    times, levels = _timeline([-20, -60, -20, -60, -60, -60, -20, -60])
    assert silent_run(times, levels, inside=0.045) == pytest.approx((0.03, 0.06))
    assert silent_run(times, levels, inside=0.075) == pytest.approx((0.07, 0.07))  # runs to the end
    with pytest.raises(ValueError, match="expected silence"):
        silent_run(times, levels, inside=0.021)  # a loud window


def test_most_voiced_avoids_gaps_between_words() -> None:
    levels = np.array([-20.0] * 30 + [-70.0] * 5 + [-15.0] * 30)
    at = most_voiced(levels, start=0.2, search=0.5, before=0.05, after=0.1)
    i = round(at / WINDOW)
    assert levels[i - 5 : i + 11].min() > -25
    assert most_voiced(levels[:5], start=1.0, search=1.0, before=0.05, after=0.1) == 1.0


def test_band_filter_keeps_only_the_band() -> None:
    t = np.arange(RATE) / RATE
    mix = np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 15000 * t)
    voice = band_filter(mix, RATE, (120.0, 11000.0))
    assert np.allclose(voice, np.sin(2 * np.pi * 1000 * t), atol=1e-9)
