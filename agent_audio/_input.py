"""Normalising pushed audio to the track format (packed s16 at the track rate and layout).

Accepted inputs:

* ``bytes``-like: s16 little-endian interleaved PCM at a given rate and channel count.
  A chunk that ends mid-sample keeps the partial sample for the next push (network
  chunks split anywhere).
* numpy arrays: int16, or float32/float64 in [-1, 1], shape ``(n,)`` (mono) or
  ``(n, channels)``.
* :class:`av.AudioFrame` of any sample format, rate and layout.

Anything not already at the track format goes through one PyAV
:class:`av.AudioResampler` per source format, kept across pushes of a turn (so
chunk edges do not click) and flushed at the end of the turn.

Validation happens in :meth:`InputNormalizer.prepare`, before any state changes;
conversion happens in slices (:meth:`InputNormalizer.convert`) so that a huge push
can yield to the event loop between them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import av
import numpy as np
import numpy.typing as npt

from ._errors import InvalidAudioError
from ._format import LAYOUTS, AudioFormat, check_channels, check_sample_rate
from ._resample import Resampler

__all__ = ["FLOAT_PEAK_LIMIT", "InputNormalizer", "Prepared", "PushData"]

logger = logging.getLogger(__name__)

PushData = bytes | bytearray | memoryview | np.ndarray | av.AudioFrame
Block = npt.NDArray[np.int16]

#: Float input peaking above this is rejected as not normalised (int16-scaled floats
#: would otherwise be clipped into a full-scale square wave). Peaks between 1.0 and
#: this limit, common in TTS output, are clipped to [-1, 1].
FLOAT_PEAK_LIMIT = 2.0
_S16_SCALE = 32768.0  # FFmpeg's flt -> s16 scale (libswresample: lrintf(x * 32768), clipped)


@dataclass(frozen=True)
class Prepared:
    """Validated input, ready to convert.

    ``samples`` is int16 or float32/float64 of shape ``(n, channels)`` at ``sample_rate``,
    or None when ``frame`` holds an :class:`av.AudioFrame`.
    """

    samples: npt.NDArray[np.generic] | None
    frame: av.AudioFrame | None
    sample_rate: int
    channels: int
    owned: bool
    """Whether ``samples`` may be queued as is (immutable ``bytes`` source, or a copy)."""
    remainder: bytes
    """Partial sample frame to keep for the next push (bytes input only)."""
    from_bytes: bool

    @property
    def source_samples(self) -> int:
        """Samples per channel in the input, at its own rate."""
        if self.frame is not None:
            return int(self.frame.samples)
        assert self.samples is not None
        return len(self.samples)


class InputNormalizer:
    """Per-turn conversion state: the resampler and any partial trailing sample.

    Args:
        fmt: the track format every output block is in.
    """

    def __init__(self, fmt: AudioFormat) -> None:
        self._fmt = fmt
        self._resampler: Resampler | None = None
        self._resampler_key: tuple[str, str, int] | None = None
        self._remainder = b""
        self._remainder_format: tuple[int, int] | None = None

    @property
    def partial_bytes(self) -> int:
        """Bytes of a partial trailing sample frame kept from the last bytes push."""
        return len(self._remainder)

    def prepare(self, data: object, *, sample_rate: int | None, channels: int | None) -> Prepared:
        """Validate ``data``; nothing changes here.

        Args:
            data: see the module docstring for the accepted types and shapes.
            sample_rate: rate of ``data`` in Hz (bytes and arrays); default the track's.
                Must be None or match the frame for :class:`av.AudioFrame` input.
            channels: channel count of ``data`` (bytes and arrays); default the
                track's for bytes, inferred from the shape for arrays.

        Raises:
            InvalidAudioError: unsupported type, dtype or rank, NaN/inf or a float
                peak above :data:`FLOAT_PEAK_LIMIT`, a rate outside 8000-192000 Hz,
                a channel count outside 1-8 or disagreeing with the array shape, a
                non-contiguous memoryview, or a bytes push whose format differs
                from a partial sample still pending.
        """
        fmt = self._fmt
        if isinstance(data, av.AudioFrame):
            if sample_rate is not None and sample_rate != data.sample_rate:
                raise InvalidAudioError(
                    f"expected sample_rate=None or {data.sample_rate} for this AudioFrame, got {sample_rate}"
                )
            if channels is not None and channels != len(data.layout.channels):
                raise InvalidAudioError(
                    f"expected channels=None or {len(data.layout.channels)} for this AudioFrame, got {channels}"
                )
            return Prepared(None, data, data.sample_rate, len(data.layout.channels), True, b"", False)
        rate = fmt.sample_rate if sample_rate is None else check_sample_rate(sample_rate)
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._prepare_bytes(data, rate, fmt.channels if channels is None else check_channels(channels))
        if isinstance(data, np.ndarray):
            return self._prepare_array(data, rate, None if channels is None else check_channels(channels))
        raise InvalidAudioError(
            f"expected bytes, numpy.ndarray or av.AudioFrame, got {type(data).__module__}.{type(data).__qualname__}"
        )

    def convert(self, prepared: Prepared, *, slice_samples: int) -> Iterator[Block]:
        """Commit ``prepared`` and yield it at the track format, in slices.

        Args:
            prepared: from :meth:`prepare` on this normalizer.
            slice_samples: at most this many source samples per channel are converted
                per yielded block, so the caller can yield to the event loop between.

        Yields:
            int16 blocks of shape ``(n, channels)`` at the track rate; never written
            to afterwards. A resampler may hold samples back until :meth:`flush`.
        """
        if prepared.frame is not None:
            if prepared.frame.samples:  # PyAV's resampler fails on an empty frame (ENOMEM, PyAV 18)
                yield from self._resample(prepared.frame)
            return
        if prepared.from_bytes:
            self._remainder = prepared.remainder
            self._remainder_format = (prepared.sample_rate, prepared.channels) if prepared.remainder else None
        samples = prepared.samples
        assert samples is not None
        direct = samples.dtype == np.int16 and self._is_track_format(prepared.sample_rate, prepared.channels)
        if direct and prepared.owned:
            slice_samples = max(len(samples), 1)  # queued as is: nothing to convert, no reason to slice
        for start in range(0, len(samples), slice_samples):
            part = samples[start : start + slice_samples]
            if direct:
                # Samples a resampler still holds from an earlier push go first.
                tail = self._flush_resampler()
                if tail is not None:
                    yield tail
                yield cast(Block, part if prepared.owned else part.copy())
            else:
                yield from self._resample(_to_frame(part, prepared.sample_rate, prepared.channels))

    def flush(self) -> Block | None:
        """End of turn: the resampler's tail (int16, ``(n, channels)``), or None if empty.

        A partial trailing sample frame from bytes input cannot be played; it is
        discarded with a warning.
        """
        if self._remainder:
            logger.warning(
                "discarding %d trailing byte(s) at the end of the turn: not a whole s16 sample frame",
                len(self._remainder),
            )
            self._remainder, self._remainder_format = b"", None
        return self._flush_resampler()

    def reset(self) -> Resampler | None:
        """Forget everything (the turn was interrupted): no tail, no partial sample.

        Returns:
            The dropped resampler, for the caller to release later: freeing PyAV's
            filter graph costs 0.2-0.4 ms, too much for ``interrupt()``.
        """
        resampler = self._resampler
        self._resampler = self._resampler_key = None
        self._remainder, self._remainder_format = b"", None
        return resampler

    # -- helpers -------------------------------------------------------------

    def _prepare_bytes(self, data: bytes | bytearray | memoryview, rate: int, channels: int) -> Prepared:
        frame_bytes = 2 * channels
        if self._remainder and self._remainder_format != (rate, channels):
            pending_rate, pending_channels = self._remainder_format or (0, 0)
            raise InvalidAudioError(
                f"expected the rest of a partial sample at {pending_rate} Hz {LAYOUTS[pending_channels]} s16, "
                f"got bytes at {rate} Hz {LAYOUTS[channels]} s16"
            )
        try:
            view = memoryview(data)
        except ValueError as exc:  # a released memoryview
            raise InvalidAudioError(f"expected a readable bytes-like buffer, got {exc}") from None
        if not view.c_contiguous:
            raise InvalidAudioError(
                f"expected a C-contiguous buffer of s16 samples, got a non-contiguous memoryview "
                f"(format {view.format!r}, strides {view.strides}); copy it first, e.g. with bytes(view)"
            )
        raw = view.cast("B")
        if self._remainder:
            raw = memoryview(self._remainder + bytes(raw))
            owned = True
        else:
            owned = isinstance(data, bytes)
        usable = len(raw) - len(raw) % frame_bytes
        remainder = bytes(raw[usable:])
        samples = np.frombuffer(raw[:usable], dtype="<i2").reshape(-1, channels)
        return Prepared(samples, None, rate, channels, owned, remainder, True)

    def _prepare_array(self, data: np.ndarray, rate: int, channels: int | None) -> Prepared:
        if data.dtype not in (np.int16, np.float32, np.float64):
            raise InvalidAudioError(f"expected int16, float32 or float64 samples, got {data.dtype}")
        if data.ndim == 1:
            data = data.reshape(-1, 1)
        elif data.ndim != 2:
            raise InvalidAudioError(f"expected shape (n,) or (n, channels), got {data.shape}")
        got = check_channels(data.shape[1], what="channels (the array's second dimension)")
        if channels is not None and channels != got:
            raise InvalidAudioError(f"expected shape (n, {channels}) for channels={channels}, got {data.shape}")
        if data.dtype != np.int16 and len(data):
            if not np.isfinite(data).all():
                raise InvalidAudioError("expected finite float samples in [-1, 1], got NaN or inf")
            peak = float(np.abs(data).max())
            if peak > FLOAT_PEAK_LIMIT:
                raise InvalidAudioError(
                    f"expected float samples in [-1, 1], got a peak of {peak:g} (int16-scaled floats? divide by 32768)"
                )
        return Prepared(np.ascontiguousarray(data), None, rate, got, False, b"", False)

    def _is_track_format(self, rate: int, channels: int) -> bool:
        return rate == self._fmt.sample_rate and channels == self._fmt.channels

    def _flush_resampler(self) -> Block | None:
        if self._resampler is None:
            return None
        blocks = self._resampler.flush()
        self._resampler = self._resampler_key = None
        return np.concatenate(blocks) if blocks else None

    def _resample(self, frame: av.AudioFrame) -> Iterator[Block]:
        fmt = self._fmt
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self._resampler_key:
            tail = self._flush_resampler()
            if tail is not None:
                yield tail
            if key == ("s16", fmt.layout, fmt.sample_rate):
                yield self._to_block(frame)  # already the track format
                return
            self._resampler = Resampler(rate=fmt.sample_rate, layout=fmt.layout, channels=fmt.channels)
            self._resampler_key = key
        assert self._resampler is not None
        # PyAV's resampler neither mutates the frame nor minds pts gaps (checked with PyAV 18).
        yield from self._resampler.resample(frame)

    def _to_block(self, frame: av.AudioFrame) -> Block:
        # A copy: a view would keep the PyAV frame alive for as long as the chunk is queued
        # (more memory, and freeing 3,000 frames on an interrupt costs milliseconds).
        return cast(Block, frame.to_ndarray().reshape(-1, self._fmt.channels).copy())


def _to_frame(samples: npt.NDArray[np.generic], rate: int, channels: int) -> av.AudioFrame:
    """Wrap int16 or float samples of shape ``(n, channels)`` in a packed s16/flt AudioFrame."""
    if samples.dtype == np.int16:
        sample_format = "s16"
    else:
        samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
        sample_format = "flt"
    packed = np.ascontiguousarray(samples).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(packed, format=sample_format, layout=LAYOUTS[channels])
    frame.sample_rate = rate
    return frame
