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
#: A peak bound that bounds nothing: any s16 sample's magnitude is at most this.
UNKNOWN_PEAK = 32768


class SampleQueue:
    """Chunks of int16 samples of shape ``(n, channels)``, tagged by turn id.

    Counts are in samples per channel. The per-turn counts are kept incrementally,
    so :meth:`queued_for` is O(1). Each chunk also carries an upper bound of its
    samples' magnitude (its peak), given when it is appended.
    """

    def __init__(self) -> None:
        self._chunks: deque[tuple[int, Block, int]] = deque()
        self._head = 0  # samples already read from the first chunk
        self._total = 0
        self._per_turn: dict[int, int] = {}

    def __len__(self) -> int:
        """Samples per channel queued, over all turns."""
        return self._total

    def queued_for(self, turn_id: int) -> int:
        """Samples per channel queued for one turn."""
        return self._per_turn.get(turn_id, 0)

    def append(self, turn_id: int, samples: Block, peak: int = UNKNOWN_PEAK) -> None:
        """Queue ``samples`` (int16, shape ``(n, channels)``) for ``turn_id``; kept, not copied.

        ``peak`` bounds ``abs(samples)`` (default: unknown).
        """
        n = len(samples)
        if n == 0:
            return
        self._chunks.append((turn_id, samples, peak))
        self._total += n
        self._per_turn[turn_id] = self._per_turn.get(turn_id, 0) + n

    def take(self, n: int) -> tuple[int, Block, int] | None:
        """Remove exactly ``n`` samples if the head chunk alone holds them (the common case).

        Returns:
            ``(turn_id, view, peak)`` (the chunk's peak bound), or None (nothing removed)
            when the head chunk has fewer than ``n`` samples left; then use :meth:`read`.
        """
        chunks = self._chunks
        if not chunks:
            return None
        turn_id, chunk, peak = chunks[0]
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
        return turn_id, chunk[head:end], peak

    def push_back(self, turn_id: int, samples: Block) -> None:
        """Put ``samples`` back at the head (they were read too early); kept, not copied."""
        if not len(samples):
            return
        if self._head:
            turn, chunk, peak = self._chunks.popleft()
            self._chunks.appendleft((turn, chunk[self._head :], peak))
            self._head = 0
        self._chunks.appendleft((turn_id, samples, UNKNOWN_PEAK))
        self._total += len(samples)
        self._per_turn[turn_id] = self._per_turn.get(turn_id, 0) + len(samples)

    def read(self, n: int) -> list[tuple[int, Block]]:
        """Remove up to ``n`` samples from the head.

        Returns:
            ``(turn_id, block)`` pieces in order, whose lengths add up to
            ``min(n, len(self))``. Blocks are read-only views of queued chunks.
        """
        pieces: list[tuple[int, Block]] = []
        chunks = self._chunks
        while n > 0 and chunks:
            turn_id, chunk, _ = chunks[0]
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
            self._take(turn_id, taken)
            n -= taken
        return pieces

    def truncate(self, keep: int) -> tuple[dict[int, int], deque[tuple[int, Block, int]]]:
        """Keep the first ``keep`` samples and drop everything after them.

        Costs O(chunks in the kept part + turns), whatever is dropped: the dropped
        chunks are handed back, not freed here, so the caller can release them later.

        Returns:
            Samples per channel dropped per turn id (turns with none dropped are
            absent), and the dropped chunks.
        """
        kept: deque[tuple[int, Block, int]] = deque()
        kept_per_turn: dict[int, int] = {}
        remaining = keep
        head = self._head
        chunks = self._chunks
        while remaining > 0 and chunks:
            turn_id, chunk, peak = chunks.popleft()
            available = len(chunk) - head
            take = min(available, remaining)
            kept.append((turn_id, chunk[head : head + take], peak))
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
