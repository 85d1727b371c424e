"""Gain curves as pure functions of the sample index, and applying them to s16 blocks.

Two curves exist:

* the pause/resume **ramp**, linear, a few milliseconds long, so that stopping and
  restarting the voice mid-word does not click;
* the interrupt **fade**, exponential from 0 dB to -60 dB (gain 1.0 to 0.001) and
  offset so that its last sample is exactly zero, the usual shape of a
  perceptually even fade-out (a straight line in dB).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["FADE_FLOOR_DB", "apply_gain", "fade_gains", "ramp_down", "ramp_up"]

#: Level, in dBFS relative to the unfaded voice, that the exponential part of the fade reaches.
FADE_FLOOR_DB = -60.0
_FLOOR = 10.0 ** (FADE_FLOOR_DB / 20.0)

Gains = npt.NDArray[np.float32]
Block = npt.NDArray[np.int16]


def fade_gains(start: int, count: int, length: int) -> Gains:
    """Gains for samples ``start .. start + count - 1`` of an interrupt fade of ``length`` samples.

    ``g(i) = (10 ** (-3 * i / (length - 1)) - 0.001) / (1 - 0.001)``: 1.0 at ``i = 0``,
    exponential (linear in dB) towards -60 dB, and exactly 0.0 at ``i = length - 1``.

    Args:
        start: index of the first sample in the fade, ``0 <= start``.
        count: number of gains wanted; ``start + count <= length``.
        length: fade length in samples per channel, ``>= 1``.

    Returns:
        float32 array of shape ``(count,)``, values in ``[0, 1]``.
    """
    if length == 1:
        return np.zeros(count, dtype=np.float32)
    idx = np.arange(start, start + count, dtype=np.float64)
    gains = (np.power(_FLOOR, idx / (length - 1)) - _FLOOR) / (1.0 - _FLOOR)
    if start + count == length:
        gains[-1] = 0.0  # exactly zero, whatever the rounding of power()
    return np.asarray(np.clip(gains, 0.0, 1.0), dtype=np.float32)


def ramp_down(gain: float, count: int) -> Gains:
    """A linear ramp from just under ``gain`` towards zero over ``count`` samples.

    The gains are ``gain * (count - k) / (count + 1)`` for ``k = 0 .. count - 1``: every
    ramped sample is still (faintly) heard, and the held silence that follows is the
    next step down, so resuming later loses no sample.

    Returns:
        float32 array of shape ``(count,)``.
    """
    return np.asarray(gain * np.arange(count, 0, -1, dtype=np.float64) / (count + 1), dtype=np.float32)


def ramp_up(gain: float, count: int) -> Gains:
    """A linear ramp from ``gain`` up to exactly 1.0 over ``count`` samples (last sample 1.0).

    Returns:
        float32 array of shape ``(count,)``.
    """
    steps = np.arange(1, count + 1, dtype=np.float64) / count
    return np.asarray(gain + (1.0 - gain) * steps, dtype=np.float32)


def apply_gain(block: Block, gains: Gains) -> Block:
    """Scale an s16 block by per-sample gains, rounding to nearest.

    Args:
        block: int16 array of shape ``(n, channels)``; not modified.
        gains: float32 array of shape ``(n,)``, values in ``[0, 1]``.

    Returns:
        A new int16 array of shape ``(n, channels)``. Gains never exceed 1, so the
        result cannot overflow.
    """
    scaled = block.astype(np.float32) * gains[:, None]
    return np.asarray(np.rint(scaled), dtype=np.int16)
