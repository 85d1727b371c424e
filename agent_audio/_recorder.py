"""``Recorder``: writes exactly the frames a track hands to the wire, encoding on a worker thread."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import wave
from collections import deque
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import numpy.typing as npt

from ._errors import InvalidAudioError
from ._format import AudioFormat

__all__ = ["RECORD_FORMATS", "Recorder"]

logger = logging.getLogger(__name__)

#: Recording formats: WAV (s16 PCM at the track format, with :mod:`wave`) and Ogg/Opus
#: (PyAV's libopus at 48 kHz, the only rate Opus encodes that every track rate maps to).
RECORD_FORMATS = ("wav", "ogg")
#: Seconds between the worker's visits to the frame queue.
_POLL = 0.05
_OPUS_RATE = 48000

Block = npt.NDArray[np.int16]


class Recorder:
    """A recording of what ``recv()`` returned, from :meth:`AgentAudioTrack.start_recording`.

    Every frame handed out while recording (voice after pause ramps and interrupt
    fades, mixed with the background on a mixing track, silence included) is
    appended in order, so the file is as long as the frames sent: ``frames`` x the
    frame duration. ``recv()`` only copies the frame into a deque; a daemon thread
    encodes and writes it.

    The file is opened here, on the caller's thread, so a path that cannot be written
    fails at once. If writing fails later (disk full, an encoder error), the recording
    stops by itself: :attr:`stopped` becomes True, no more frames are taken (nothing
    piles up in memory), the error is logged once, kept in :attr:`error`, and raised
    by :meth:`stop`.

    Raises:
        InvalidAudioError: ``format`` is not one of :data:`RECORD_FORMATS` (or cannot be
            told from the path's suffix).
        OSError: the file cannot be opened for writing (``FileNotFoundError`` for a
            missing folder, ``PermissionError``, ``IsADirectoryError``, ...).
    """

    def __init__(self, path: str | Path, fmt: AudioFormat, *, format: str | None = None) -> None:
        self.path = Path(path)
        kind = format if format is not None else self.path.suffix.lstrip(".").lower()
        if kind == "opus":
            kind = "ogg"
        if kind not in RECORD_FORMATS:
            raise InvalidAudioError(f"expected a recording format in {list(RECORD_FORMATS)}, got {kind!r}")
        self.format = kind
        self._fmt = fmt
        self._blocks: deque[bytes] = deque()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.frames = 0
        """Frames recorded so far (each ``frame_samples`` samples per channel)."""
        self.stopped = False
        """Whether recording has stopped (:meth:`stop` or :meth:`close` was called, or
        writing failed: see :attr:`error`); frames after it are not recorded."""
        self._file: BinaryIO = open(self.path, "wb")  # the worker thread closes it
        self._thread = threading.Thread(target=self._run, name="agent_audio-recorder", daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._file.close()
            raise

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the writer (an ``OSError``, an ``av.FFmpegError``), or None."""
        return self._error

    @property
    def duration(self) -> float:
        """Seconds recorded so far."""
        return self.frames * self._fmt.frame_samples / self._fmt.sample_rate

    def put(self, block: Block) -> None:
        """Hot path, called by the track with each frame's samples (int16, ``(n, channels)``).

        A no-op once :attr:`stopped` (including after a write error).
        """
        if not self.stopped:
            self._blocks.append(block.tobytes())  # a bytes copy: cheaper than an array copy
            self.frames += 1

    def close(self) -> None:
        """Stop recording now; the worker thread finishes the file shortly (:meth:`stop` waits for it).

        The track calls this when it is stopped.
        """
        self.stopped = True
        self._stop.set()

    async def stop(self) -> Path:
        """Stop recording, finish writing the file, and return its path.

        Raises:
            OSError: the file could not be written (from the worker thread; the same
                object as :attr:`error`).
            av.FFmpegError: Opus encoding failed.
        """
        self.close()
        await asyncio.to_thread(self._thread.join)
        if self._error is not None:
            raise self._error
        return self.path

    def _run(self) -> None:
        try:
            with self._file:
                if self.format == "wav":
                    self._write_wav()
                else:
                    self._write_ogg()
        except BaseException as exc:  # kept for stop()'s caller
            self._error = exc
            if not self._stop.is_set():
                # Nobody is waiting yet: stop taking frames, drop those held, say so once.
                self.stopped = True
                self._blocks.clear()
                logger.error(
                    "agent_audio: recording to %s failed, no more frames are recorded "
                    "(Recorder.stop() raises the error): %r",
                    self.path,
                    exc,
                )

    def _next_batch(self) -> bytes | None:
        """The s16 frames queued since the last visit, joined; None once stopped and drained."""
        while True:
            stopping = self._stop.wait(_POLL)
            blocks = []
            while self._blocks:
                blocks.append(self._blocks.popleft())
            if blocks:
                return b"".join(blocks)
            if stopping:
                return None

    def _write_wav(self) -> None:
        with wave.open(self._file, "wb") as out:
            out.setnchannels(self._fmt.channels)
            out.setsampwidth(2)
            out.setframerate(self._fmt.sample_rate)
            while (pcm := self._next_batch()) is not None:
                if sys.byteorder == "big":  # frames are native-endian; WAV is little-endian
                    pcm = np.frombuffer(pcm, np.int16).byteswap().tobytes()
                out.writeframes(pcm)

    def _write_ogg(self) -> None:
        fmt = self._fmt
        with av.open(self._file, "w", format="ogg") as container:
            stream = container.add_stream("libopus", rate=_OPUS_RATE)
            stream.layout = fmt.layout
            resampler = av.AudioResampler(format="s16", layout=fmt.layout, rate=_OPUS_RATE)
            pts = 0
            while (data := self._next_batch()) is not None:
                pcm = np.frombuffer(data, np.int16)
                frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=fmt.layout)
                frame.sample_rate = fmt.sample_rate
                frame.pts = pts
                pts += len(pcm) // fmt.channels
                for part in resampler.resample(frame):
                    container.mux(stream.encode(part))
            for part in resampler.resample(None):
                container.mux(stream.encode(part))
            container.mux(stream.encode(None))
