"""A FIFO of s16 samples, each chunk tagged with the id of the turn that pushed it.

Appending is O(1) and keeps the pushed array as it is (no copy, no re-slicing of a
growing buffer); reading ``n`` samples costs O(chunks touched), so cutting 60 s of
audio into 20 ms frames is linear in its length.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

__all__ = ["UNKNOWN_PEAK", "SampleQueue"]

Block = npt.NDArray[np.int16]
Peaks = tuple[int, ...]
#: A peak bound that bounds nothing: any s16 sample's magnitude is at most this.
UNKNOWN_PEAK = 32768
#: Samples per channel per peak block: a frame's bound is the max over the blocks it spans.
PEAK_BLOCK = 480
#: Appends shorter than this (samples per channel) are copied into the tail chunk's
#: buffer instead of queued as chunks of their own: a TTS stream of 20 ms pieces would
#: otherwise hold an array, a tuple and a peak list per piece, about 30% over the PCM.
COALESCE_BELOW = 2400
#: Samples per channel of a buffer small appends are copied into (0.25 s at 48 kHz).
COALESCE_CAPACITY = 12000


def block_peaks(samples: Block) -> Peaks:
    """``max(abs())`` of each :data:`PEAK_BLOCK`-sample block of ``samples`` (the last may be short).

    A tuple of ints, not a list: once the garbage collector has seen a queued chunk's
    ``(turn_id, samples, peaks)`` it stops tracking it (ndarrays are never tracked), so
    a track holding a minute of audio adds nothing to each full collection's work.
    """
    n = len(samples)
    rows = samples.reshape(n, -1)
    full = n - n % PEAK_BLOCK
    peaks: list[int] = []
    if full:
        blocks = rows[:full].reshape(full // PEAK_BLOCK, -1)
        top = np.maximum.reduce(blocks, axis=1).astype(np.int32)
        bottom = np.minimum.reduce(blocks, axis=1).astype(np.int32)
        peaks = np.maximum(top, -bottom).tolist()
    if full < n:
        tail = rows[full:]
        peaks.append(max(int(tail.max()), -int(tail.min())))
    return tuple(peaks)


class SampleQueue:
    """Chunks of int16 samples of shape ``(n, channels)``, tagged by turn id.

    Counts are in samples per channel. The per-turn counts are kept incrementally,
    so :meth:`queued_for` is O(1). A chunk may carry the peaks of its
    :data:`PEAK_BLOCK`-sample blocks (see :func:`block_peaks`), from which :meth:`take`
    bounds the magnitude of the frame it returns.
    """

    def __init__(self) -> None:
        self._chunks: deque[tuple[int, Block, Peaks | None]] = deque()
        self._head = 0  # samples already read from the first chunk
        self._total = 0
        self._per_turn: dict[int, int] = {}
        self._tail: tuple[Block, Block] | None = None  # (buffer, the tail chunk's view) that small appends fill
        self.read_peak = 0
        """An upper bound of ``abs()`` of what the last :meth:`read` returned.

        :data:`UNKNOWN_PEAK` when a chunk it touched has no block peaks."""

    def __len__(self) -> int:
        """Samples per channel queued, over all turns."""
        return self._total

    def queued_for(self, turn_id: int) -> int:
        """Samples per channel queued for one turn."""
        return self._per_turn.get(turn_id, 0)

    def head_turn(self) -> int | None:
        """Id of the turn whose samples come next, or None when the queue is empty."""
        return self._chunks[0][0] if self._chunks else None

    def append(self, turn_id: int, samples: Block, peaks: Peaks | None = None, *, measure: bool = False) -> None:
        """Queue ``samples`` (int16, shape ``(n, channels)``) for ``turn_id``.

        Kept, not copied, unless shorter than :data:`COALESCE_BELOW`: then copied into
        the tail chunk's buffer when it belongs to the same turn (views already handed
        out are never written to).

        Args:
            turn_id: the turn the samples belong to.
            samples: int16 (or float32 holding s16 values), shape ``(n, channels)``.
            peaks: from :func:`block_peaks` of ``samples``, or None (unknown).
            measure: compute the block peaks here (``peaks`` is then ignored).
        """
        n = len(samples)
        if n == 0:
            return
        self._total += n
        self._per_turn[turn_id] = self._per_turn.get(turn_id, 0) + n
        if n < COALESCE_BELOW:
            self._coalesce(turn_id, samples, peaks, measure)
            return
        self._chunks.append((turn_id, samples, block_peaks(samples) if measure else peaks))
        self._tail = None

    def _coalesce(self, turn_id: int, samples: Block, peaks: Peaks | None, measure: bool) -> None:
        chunks = self._chunks
        n = len(samples)
        tail = self._tail
        fill = 0
        if tail is not None and chunks and chunks[-1][1] is tail[1] and chunks[-1][0] == turn_id:
            buffer, view = tail
            fill = len(view)
            if fill + n > len(buffer) or buffer.shape[1:] != samples.shape[1:] or buffer.dtype != samples.dtype:
                fill = 0
        if not fill:
            buffer = np.empty((COALESCE_CAPACITY, *samples.shape[1:]), samples.dtype)
        end = fill + n
        buffer[fill:end] = samples
        view = buffer[:end]
        old = chunks[-1][2] if fill else ()
        if measure and old is not None:  # only the blocks the new samples touch are measured again
            first = fill // PEAK_BLOCK
            new_peaks: Peaks | None = old[:first] + block_peaks(buffer[first * PEAK_BLOCK : end])
        elif fill:
            new_peaks = None  # the old block offsets no longer describe the merged chunk
        else:
            new_peaks = peaks
        if fill:
            chunks[-1] = (turn_id, view, new_peaks)
        else:
            chunks.append((turn_id, view, new_peaks))
        self._tail = (buffer, view)

    def take(self, n: int) -> tuple[int, Block, int] | None:
        """Remove exactly ``n`` samples if the head chunk alone holds them (the common case).

        Returns:
            ``(turn_id, view, peak)``, ``peak`` an upper bound of ``abs(view)``
            (:data:`UNKNOWN_PEAK` without block peaks), or None (nothing removed) when the
            head chunk has fewer than ``n`` samples left; then use :meth:`read`.
        """
        chunks = self._chunks
        if not chunks:
            return None
        turn_id, chunk, peaks = chunks[0]
        head = self._head
        end = head + n
        size = len(chunk)
        if end > size:
            return None
        if end == size:
            chunks.popleft()
            self._head = 0
        else:
            self._head = end
        self._take(turn_id, n)
        peak = UNKNOWN_PEAK if peaks is None else max(peaks[head // PEAK_BLOCK : (end - 1) // PEAK_BLOCK + 1])
        return turn_id, chunk[head:end], peak

    def push_back(self, turn_id: int, samples: Block) -> None:
        """Put ``samples`` back at the head (they were read too early); kept, not copied."""
        if not len(samples):
            return
        if self._head:
            turn, chunk, _ = self._chunks.popleft()
            self._chunks.appendleft((turn, chunk[self._head :], None))  # block offsets moved
            self._head = 0
        self._chunks.appendleft((turn_id, samples, None))
        self._total += len(samples)
        self._per_turn[turn_id] = self._per_turn.get(turn_id, 0) + len(samples)

    def read(self, n: int) -> list[tuple[int, Block]]:
        """Remove up to ``n`` samples from the head.

        Returns:
            ``(turn_id, block)`` pieces in order, whose lengths add up to
            ``min(n, len(self))``. Blocks are read-only views of queued chunks.
            :attr:`read_peak` is then an upper bound of their ``abs()``.
        """
        pieces: list[tuple[int, Block]] = []
        chunks = self._chunks
        bound = 0
        while n > 0 and chunks:
            turn_id, chunk, peaks = chunks[0]
            head = self._head
            available = len(chunk) - head
            if available > n:
                pieces.append((turn_id, chunk[head : head + n]))
                self._head = head + n
                taken = n
            else:
                pieces.append((turn_id, chunk[head:] if head else chunk))
                chunks.popleft()
                self._head = 0
                taken = available
            if peaks is None:
                bound = UNKNOWN_PEAK
            elif bound < UNKNOWN_PEAK:
                bound = max(bound, *peaks[head // PEAK_BLOCK : (head + taken - 1) // PEAK_BLOCK + 1])
            self._take(turn_id, taken)
            n -= taken
        self.read_peak = bound
        return pieces

    def truncate(self, keep: int) -> tuple[dict[int, int], deque[tuple[int, Block, Peaks | None]]]:
        """Keep the first ``keep`` samples and drop everything after them.

        Costs O(chunks in the kept part + turns), whatever is dropped: the dropped
        chunks are handed back, not freed here, so the caller can release them later.

        Returns:
            Samples per channel dropped per turn id (turns with none dropped are
            absent), and the dropped chunks.
        """
        kept: deque[tuple[int, Block, Peaks | None]] = deque()
        kept_per_turn: dict[int, int] = {}
        remaining = keep
        head = self._head
        chunks = self._chunks
        while remaining > 0 and chunks:
            turn_id, chunk, _ = chunks.popleft()
            available = len(chunk) - head
            take = min(available, remaining)
            kept.append((turn_id, chunk[head : head + take], None))  # block offsets moved
            kept_per_turn[turn_id] = kept_per_turn.get(turn_id, 0) + take
            remaining -= take
            head = 0
        dropped = {
            turn_id: count - kept_per_turn.get(turn_id, 0)
            for turn_id, count in self._per_turn.items()
            if count > kept_per_turn.get(turn_id, 0)
        }
        self._chunks = kept
        self._head = 0
        self._per_turn = kept_per_turn
        self._total = keep - max(remaining, 0)
        return dropped, chunks

    def _take(self, turn_id: int, count: int) -> None:
        self._total -= count
        left = self._per_turn[turn_id] - count
        if left:
            self._per_turn[turn_id] = left
        else:
            del self._per_turn[turn_id]
