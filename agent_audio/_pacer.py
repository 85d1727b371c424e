"""The pacing grid: frame *n* is due at ``anchor + n * frame_duration``.

Pure arithmetic over times the shell reads from its clock. A frame late by up to
:data:`REANCHOR_FRAMES` frame durations is absorbed: the following frames are due on
the same grid, so the long-run rate stays exact. A frame later than that (an
event-loop stall) moves the anchor so that it is due *now*: the missed frames are
not burst out, and the re-anchor is counted.
"""

from __future__ import annotations

__all__ = ["REANCHOR_FRAMES", "Pacer"]

#: Lateness, in frame durations, beyond which the grid re-anchors (60 ms at 20 ms frames).
#: Up to that, catching up sends at most 4 frames back to back, within what a WebRTC
#: receiver's jitter buffer absorbs; beyond it, bursting would only add delay.
REANCHOR_FRAMES = 3


class Pacer:
    """Due times and lateness accounting for one track.

    Args:
        frame_duration: seconds per frame.
    """

    def __init__(self, frame_duration: float) -> None:
        self.frame_duration = frame_duration
        self.reanchor_after = REANCHOR_FRAMES * frame_duration
        self.late_after = frame_duration / 2
        self.index = 0
        """Index of the next frame to hand out."""
        self.late_frames = 0
        self.reanchors = 0
        self.max_lateness = 0.0
        self._anchor: float | None = None

    def due(self, now: float) -> float:
        """Due time (seconds) of the next frame; the first call anchors the grid at ``now``."""
        if self._anchor is None:
            self._anchor = now
        return self._anchor + self.index * self.frame_duration

    def handed_out(self, now: float, due: float) -> float:
        """Record that the next frame, due at ``due`` (from :meth:`due`), leaves at ``now``.

        Returns:
            Its lateness in seconds.
        """
        lateness = now - due
        if lateness > self.late_after:
            self.late_frames += 1
        if lateness > self.max_lateness:
            self.max_lateness = lateness
        if lateness > self.reanchor_after:
            self._anchor = now - self.index * self.frame_duration
            self.reanchors += 1
        self.index += 1
        return lateness
