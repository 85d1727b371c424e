"""The listener's microphone in the duplex demo: a paced aiortc track that plays silence and, on cue, user clips.

:class:`UserVoice` is an :class:`aiortc.MediaStreamTrack` of its own (not an agent
track): 20 ms frames of 48 kHz mono s16, paced on :func:`time.monotonic`, digital
silence between clips. :meth:`UserVoice.say` queues a clip; the track notes the
monotonic second at which it handed out the clip's first and last frame, which is when
the user "started speaking" for the demo's measurements.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .analysis import SILENCE_DBFS, WINDOW, levels_dbfs
from .speech import bundled, load_speech

__all__ = ["RATE", "SentClip", "UserClip", "UserVoice"]

RATE = 48000  # Hz: what aiortc's Opus encoder takes without resampling
FRAME = 960  # samples per 20 ms frame
_LATE = 0.1  # seconds: a recv() later than this re-anchors the pacing instead of bursting


@dataclass(frozen=True)
class UserClip:
    """A bundled user recording: float32 mono samples in [-1, 1] at :data:`RATE`, shape ``(n,)``."""

    name: str
    samples: npt.NDArray[np.float32]
    onset: float
    """Seconds from the clip's start to its first 10 ms window above -40 dBFS (its speech onset)."""

    @classmethod
    def load(cls, file: str) -> UserClip:
        """Decode ``agent_audio/data/<file>`` and find its onset."""
        samples = load_speech(bundled(file), rate=RATE)
        loud = np.flatnonzero(levels_dbfs(samples, RATE) > SILENCE_DBFS)
        return cls(file.rsplit(".", 1)[0], samples, float(loud[0]) * WINDOW if len(loud) else 0.0)

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.samples) / RATE


@dataclass(frozen=True)
class SentClip:
    """When the user track handed out a clip (monotonic seconds)."""

    clip: UserClip
    started: float
    """When ``recv()`` returned the clip's first frame."""
    ended: float
    """When ``recv()`` returned its last frame."""

    @property
    def onset(self) -> float:
        """Monotonic second of the clip's speech onset, as sent."""
        return self.started + self.clip.onset


class UserVoice(MediaStreamTrack):
    """A paced audio track: silence, and the clips given to :meth:`say`, one after another."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[tuple[UserClip, npt.NDArray[np.int16], asyncio.Future[SentClip]]] = deque()
        self._position = 0  # samples of the head clip already sent
        self._started = 0.0
        self._anchor: float | None = None
        self._frames = 0  # since the anchor
        self._pts = 0

    def say(self, clip: UserClip) -> asyncio.Future[SentClip]:
        """Queue ``clip`` to be sent from the next frame on; the future resolves once its last frame is out."""
        pcm = np.clip(np.rint(clip.samples * 32767), -32768, 32767).astype(np.int16)
        done: asyncio.Future[SentClip] = asyncio.get_running_loop().create_future()
        self._queue.append((clip, pcm, done))
        return done

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms frame, on time. Raises MediaStreamError once stopped."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._anchor is None or now - (self._anchor + self._frames * FRAME / RATE) > _LATE:
            self._anchor, self._frames = now, 0
        due = self._anchor + self._frames * FRAME / RATE
        if due > now:
            await asyncio.sleep(due - now)
        if self.readyState != "live":
            raise MediaStreamError
        self._frames += 1
        block = np.zeros(FRAME, dtype=np.int16)
        finished: tuple[UserClip, asyncio.Future[SentClip]] | None = None
        if self._queue:
            clip, pcm, done = self._queue[0]
            if self._position == 0:
                self._started = time.monotonic()
            part = pcm[self._position : self._position + FRAME]
            block[: len(part)] = part
            self._position += FRAME
            if self._position >= len(pcm):
                self._queue.popleft()
                self._position = 0
                finished = (clip, done)
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(block.tobytes())
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, RATE)
        self._pts += FRAME
        if finished is not None and not finished[1].done():
            finished[1].set_result(SentClip(finished[0], self._started, time.monotonic()))
        return frame
