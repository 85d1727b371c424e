"""Resampling to the track format without losing a stream's last samples.

PyAV's :class:`av.AudioResampler` (FFmpeg's ``aresample``, libswresample) holds back
about half its filter length of input until more arrives. At the end of a stream
libswresample pads what it holds by reflecting at most half of it, so a short stream
(under about 30 samples at 24 kHz to 48 kHz) comes out short, or empty: 10 samples at
24 kHz give 0 of the 20 they should. :class:`Resampler` counts samples in and out and,
at :meth:`Resampler.flush`, pushes digital silence through the filter until the tail
is out, then cuts the output to exactly ``round(samples_in x out_rate / in_rate)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import av
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ._format import AudioFormat

__all__ = ["FormatFollower", "Resampler"]

Block = npt.NDArray[np.int16]

#: libswresample's default ``filter_size`` (taps per phase at the lower of the two
#: rates); its delay is half the filter, in input samples, times the decimation factor.
_FILTER_SIZE = 32
#: Flushing gives up feeding silence after this many rounds (it needs one in practice).
_MAX_PAD_ROUNDS = 4


class Resampler:
    """Converts frames of one source format to packed s16 at one rate and layout.

    Args:
        rate: output rate in Hz.
        layout: output layout name (``"mono"``, ``"stereo"``, ...).
        channels: output channel count (the layout's).

    Every frame given to one instance must have the same sample format, layout and
    rate as the first (PyAV's rule). Output blocks are int16 of shape
    ``(n, channels)``, fresh copies (never views of a PyAV frame).
    """

    def __init__(self, *, rate: int, layout: str, channels: int) -> None:
        self._rate = rate
        self._channels = channels
        self._resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        self._template: av.AudioFrame | None = None
        self._in = 0
        self._out = 0

    @property
    def samples_in(self) -> int:
        """Source samples per channel taken so far."""
        return self._in

    def resample(self, frame: av.AudioFrame) -> list[Block]:
        """Convert ``frame``; some of its samples may come out only on a later call or at :meth:`flush`."""
        if self._template is None:
            self._template = frame
        self._in += frame.samples
        return self._take(self._resampler.resample(frame))

    def flush(self) -> list[Block]:
        """End of stream: the rest of the output, so the total is exactly the source length at the output rate.

        The instance must not be used afterwards.
        """
        template = self._template
        if template is None:
            return []
        in_rate = template.sample_rate
        expected = (self._in * self._rate + in_rate // 2) // in_rate
        blocks: list[Block] = []
        missing = expected - self._out
        pad = _FILTER_SIZE * -(-in_rate // self._rate) + _FILTER_SIZE  # ceil division: the decimation factor
        rounds = 0
        while missing > 0 and rounds < _MAX_PAD_ROUNDS:
            rounds += 1
            for block in self._take(self._resampler.resample(_silence(template, pad))):
                blocks.append(block[:missing])
                missing -= len(blocks[-1])
                if missing <= 0:
                    break
        if missing > 0:  # not reached with libswresample's defaults; keep the count exact anyway
            blocks.append(np.zeros((missing, self._channels), np.int16))
        return blocks

    def _take(self, frames: list[av.AudioFrame]) -> list[Block]:
        blocks = []
        for frame in frames:
            # A copy: a view would keep the PyAV frame alive as long as the block is queued.
            block = cast(Block, frame.to_ndarray().reshape(-1, self._channels).copy())
            self._out += len(block)
            blocks.append(block)
        return blocks


class FormatFollower:
    """Resamples a stream of decoded frames whose format may change.

    A new source format (a chained Ogg stream at another rate, say) flushes the old
    :class:`Resampler`'s tail first, so nothing is lost at the switch.

    Args:
        out: the track format; blocks are int16, shape ``(n, out.channels)``.
    """

    def __init__(self, out: AudioFormat) -> None:
        self._out = out
        self._resampler: Resampler | None = None
        self._key: tuple[str, str, int] | None = None

    def convert(self, frames: list[av.AudioFrame]) -> list[Block]:
        """Resample ``frames`` (their pts are cleared: gaps from skipped packets do not matter)."""
        blocks: list[Block] = []
        for frame in frames:
            if not frame.samples:
                continue  # PyAV's resampler fails on an empty frame
            frame.pts = None  # a skipped packet leaves a gap in pts; the resampler need not know
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != self._key:
                blocks.extend(self.flush())
                out = self._out
                self._resampler = Resampler(rate=out.sample_rate, layout=out.layout, channels=out.channels)
                self._key = key
            assert self._resampler is not None
            blocks.extend(self._resampler.resample(frame))
        return blocks

    def flush(self) -> list[Block]:
        """The tail of the current resampler (the stream's last samples, exactly)."""
        resampler, self._resampler, self._key = self._resampler, None, None
        return [] if resampler is None else resampler.flush()


def _silence(template: av.AudioFrame, samples: int) -> av.AudioFrame:
    """Digital silence in ``template``'s sample format, layout and rate."""
    name = template.format.name
    frame = av.AudioFrame(format=name, layout=template.layout.name, samples=samples)
    zero = b"\x80" if name.startswith("u8") else b"\x00"  # unsigned 8-bit silence is 128
    for plane in frame.planes:
        plane.update(zero * plane.buffer_size)
    frame.sample_rate = template.sample_rate
    return frame
