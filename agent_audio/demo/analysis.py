"""Measurements on received audio: levels, silence after an instant, gaps.

Pure numpy over float mono samples in [-1, 1]; times are in seconds on the same scale
as the ``times`` array passed in (the demo uses :func:`time.monotonic`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "AIR_BAND",
    "SILENCE_DBFS",
    "VOICE_BAND",
    "band_filter",
    "levels_dbfs",
    "most_voiced",
    "silence_after",
    "silent_run",
]

#: Level below which audio counts as silence (the bar the issue sets for interrupt-to-silence).
SILENCE_DBFS = -40.0
WINDOW = 0.010  # seconds per level window
#: Hz: the bundled ambience's "air" band, above anything the demo's voice contains
#: (piper synthesizes at 22.05 kHz), so it measures the background alone, even under speech.
AIR_BAND = (13000.0, 17000.0)
#: Hz: where the demo's voice is, and the bundled ambience is not (it has 20-90 Hz and the air band).
VOICE_BAND = (120.0, 11000.0)

Floats = npt.NDArray[np.float64]


def levels_dbfs(samples: npt.NDArray[np.floating], rate: int, window: float = WINDOW) -> Floats:
    """RMS level in dBFS (full scale = 1.0) of consecutive windows of ``window`` seconds.

    Returns:
        float64 array of shape ``(len(samples) // round(window * rate),)``; -120 for digital silence.
    """
    size = max(1, round(window * rate))
    count = len(samples) // size
    blocks = np.asarray(samples[: count * size], dtype=np.float64).reshape(count, size)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-6)), dtype=np.float64)


def silence_after(times: Floats, levels: Floats, start: float, until: float, threshold: float = SILENCE_DBFS) -> float:
    """Seconds from ``start`` until the level drops below ``threshold`` and stays there up to ``until``.

    Args:
        times: time of each level window (seconds), ascending.
        levels: dBFS of each window, same shape.
        start: the instant measured from (``interrupt()``'s time).
        until: end of the span that must stay silent.
        threshold: dBFS below which a window is silent.

    Returns:
        Seconds after ``start`` of the first window of the final silent run; 0.0 if
        already silent at ``start``.

    Raises:
        ValueError: the audio is not silent at ``until``, or there is none in the span.
    """
    span = (times >= start) & (times <= until)
    idx = np.flatnonzero(span)
    if not len(idx):
        raise ValueError(f"expected received audio between {start:.3f} s and {until:.3f} s, got none")
    loud = idx[levels[idx] >= threshold]
    if len(loud) and loud[-1] == idx[-1]:
        raise ValueError(f"expected silence (< {threshold} dBFS) by {until:.3f} s, got {levels[idx[-1]]:.1f} dBFS")
    if not len(loud):
        return 0.0
    return float(times[loud[-1] + 1] - start)


def silent_run(times: Floats, levels: Floats, inside: float, threshold: float = SILENCE_DBFS) -> tuple[float, float]:
    """The run of windows below ``threshold`` that contains the instant ``inside``: (begin, end) seconds.

    ``end`` is the start of the first loud window after the run (or the last window's time).

    Raises:
        ValueError: the window at ``inside`` is not silent.
    """
    at = int(np.searchsorted(times, inside, side="right")) - 1
    if at < 0 or levels[at] >= threshold:
        level = levels[max(at, 0)] if len(levels) else float("nan")
        raise ValueError(f"expected silence (< {threshold} dBFS) at {inside:.3f} s, got {level:.1f} dBFS")
    loud = np.flatnonzero(levels >= threshold)
    before, after = loud[loud < at], loud[loud > at]
    first = before[-1] + 1 if len(before) else 0
    last = after[0] if len(after) else len(levels) - 1
    return float(times[first]), float(times[last])


def most_voiced(levels: Floats, *, start: float, search: float, before: float, after: float) -> float:
    """The instant in ``[start, start + search]`` whose surroundings are most continuously loud.

    Picks the window ``i`` maximising the lowest level over ``[i - before, i + after]``
    (seconds), so the instant sits inside a word rather than at a pause between words
    or at a word's decaying end. Used to place the demo's pause and interrupt, so the
    measured gap and fade are not hidden by natural silence.

    Returns:
        Seconds from the start of ``levels``; ``start`` if the audio is too short.
    """
    b, a = round(before / WINDOW), round(after / WINDOW)
    first, last = max(b, round(start / WINDOW)), min(len(levels) - a - 1, round((start + search) / WINDOW))
    if last < first:
        return start
    floors = [levels[i - b : i + a + 1].min() for i in range(first, last + 1)]
    return (first + int(np.argmax(floors))) * WINDOW


def band_filter(samples: npt.NDArray[np.floating], rate: int, band: tuple[float, float]) -> npt.NDArray[np.float64]:
    """Keep only ``band`` (low, high Hz) of a whole recording: a brick-wall FFT filter.

    Returns:
        float64, the same shape ``(n,)``.
    """
    spectrum = np.fft.rfft(np.asarray(samples, dtype=np.float64))
    freqs = np.fft.rfftfreq(len(samples), 1.0 / rate)
    spectrum[(freqs < band[0]) | (freqs > band[1])] = 0
    return np.fft.irfft(spectrum, len(samples))
