"""Producer order: audio plays in the order its producers started, whichever finishes decoding first.

Every producer (a PCM push, a turn's resampler tail, an encoded stream) takes a sequence
number when it starts. An encoded stream decodes on a worker thread, so its audio can
arrive after audio of a later producer: a newer turn's PCM, or the next stream of the
same turn. :class:`ProducerOrder` holds a producer's audio while an older stream still
decodes, and releases it, in sequence order, when that stream has delivered all of its
own. A stream that ends while its own audio is held is finished in order too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ._encoded import EncodedStream
    from ._turn import Turn
    from ._turntext import StreamText

__all__ = ["ProducerOrder"]

Block = npt.NDArray[np.int16]


@dataclass
class _Held:
    """Audio of one producer held back while an older encoded stream still decodes."""

    turn: Turn
    text: StreamText | None
    blocks: list[Block] = field(default_factory=list)
    closing: tuple[EncodedStream, int] | None = None  # the stream ended meanwhile: (stream, errors)


class ProducerOrder:
    """Sequence numbers for producers, and the audio held until older streams are done.

    Args:
        queue: queues a block for a turn now (with the stream's word record, if any).
        hold: a turn's producer starts being held (the turn must not finish meanwhile).
        release: that hold is over (its audio was queued).
        finalize: a stream is done, in order: account its errors, close its turn's records.
    """

    def __init__(
        self,
        *,
        queue: Callable[[Turn, Block, StreamText | None], None],
        hold: Callable[[Turn], None],
        release: Callable[[Turn], None],
        finalize: Callable[[Turn, EncodedStream, StreamText | None, int], None],
    ) -> None:
        self._queue = queue
        self._hold = hold
        self._release_hold = release
        self._finalize = finalize
        self._seq = itertools.count()
        self._open: list[int] = []  # sequence numbers of streams not finalized, in order
        self._held: dict[int, _Held] = {}
        self.held_samples = 0
        """Samples per channel held back (counted against ``max_queued`` for held producers)."""

    def next(self) -> int:
        """A new producer's sequence number."""
        return next(self._seq)

    def stream_opened(self, seq: int) -> None:
        """Producer ``seq`` is an encoded stream: later producers wait for it."""
        self._open.append(seq)

    def blocked(self, seq: int) -> bool:
        """Whether an older encoded stream than producer ``seq`` still decodes."""
        return bool(self._open) and self._open[0] < seq

    def put(self, seq: int, turn: Turn, block: Block, text: StreamText | None = None) -> None:
        """Queue ``block`` of producer ``seq`` now, or hold it behind an older stream."""
        held = self._held.get(seq)
        if held is None and not self.blocked(seq):
            self._queue(turn, block, text)
            return
        if held is None:
            held = self._held[seq] = _Held(turn, text)
            self._hold(turn)
        held.blocks.append(block)
        self.held_samples += len(block)

    def stream_closed(self, seq: int, turn: Turn, stream: EncodedStream, text: StreamText | None, errors: int) -> None:
        """Stream ``seq`` delivered all it decoded: finalize it now, or after its held audio."""
        held = self._held.get(seq)
        if held is None and not self.blocked(seq):
            self._done(seq, turn, stream, text, errors)
            return
        if held is None:
            held = self._held[seq] = _Held(turn, text)
            self._hold(turn)
        held.closing = (stream, errors)

    def drop_held(self, interrupted: Callable[[Turn], bool], drop: Callable[[Turn, Block], object]) -> None:
        """Hand the held audio of interrupted turns to ``drop`` now (their order is kept)."""
        for held in self._held.values():
            if interrupted(held.turn):
                for block in held.blocks:
                    drop(held.turn, block)
                self.held_samples -= sum(len(block) for block in held.blocks)
                held.blocks.clear()

    def clear(self) -> None:
        """Forget everything (the track stopped)."""
        self._held.clear()
        self._open.clear()
        self.held_samples = 0

    def _done(self, seq: int, turn: Turn, stream: EncodedStream, text: StreamText | None, errors: int) -> None:
        if seq in self._open:
            self._open.remove(seq)
        self._finalize(turn, stream, text, errors)
        self._release()

    def _release(self) -> None:
        """Queue, in order, what is no longer held back; finish streams that ended meanwhile."""
        while self._held:
            seq = min(self._held)
            if self.blocked(seq):
                return
            held = self._held.pop(seq)
            self.held_samples -= sum(len(block) for block in held.blocks)
            for block in held.blocks:
                self._queue(held.turn, block, held.text)
            self._release_hold(held.turn)
            if held.closing is not None:
                stream, errors = held.closing
                self._done(seq, held.turn, stream, held.text, errors)  # releases what follows it
