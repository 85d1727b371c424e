"""Work a track defers to the next event-loop iterations: emitting events, freeing dropped audio."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["RELEASE_BATCH", "Deferred"]

logger = logging.getLogger(__name__)

#: Dropped chunks (or resamplers) freed per loop iteration: freeing 60 s of queued
#: speech at once would block the loop for milliseconds; 256 chunks cost well under 100 us.
RELEASE_BATCH = 256


class Deferred:
    """Events scheduled with ``loop.call_soon`` (never run inside ``recv()``), and garbage freed in batches.

    Args:
        emit: the emitter's ``emit(name, payload)`` (pyee).
    """

    def __init__(self, emit: Callable[[str, object], object]) -> None:
        self._emit = emit
        self._pending: deque[tuple[str, object]] = deque()
        self._flush_scheduled = False
        self._garbage: deque[deque[Any]] = deque()

    def emit_later(self, name: str, payload: object) -> None:
        """Emit ``name`` with ``payload`` on the loop's next iteration (at once when no loop runs)."""
        self._pending.append((name, payload))
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop running (synchronous use): emit now
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Emit every pending event now, in order.

        One at a time from the shared queue: a handler that calls ``stop()`` (which
        flushes) empties the rest of it in order before the listeners go.
        """
        self._flush_scheduled = False
        pending = self._pending
        while pending:
            name, payload = pending.popleft()
            self._emit(name, payload)

    def release_later(self, garbage: deque[Any]) -> None:
        """Free ``garbage`` (popping it) over the next loop iterations, :data:`RELEASE_BATCH` items per iteration."""
        if not garbage:
            return
        self._garbage.append(garbage)
        if len(self._garbage) > 1:
            return  # a release is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self._release_some)
        except RuntimeError:  # no loop running: free now
            self._garbage.clear()

    def drop_garbage(self) -> None:
        """Free everything still waiting now (the track stopped)."""
        self._garbage.clear()

    def _release_some(self) -> None:
        budget = RELEASE_BATCH
        while budget and self._garbage:
            batch = self._garbage[0]
            while budget and batch:
                batch.pop()
                budget -= 1
            if not batch:
                self._garbage.popleft()
        if self._garbage:
            asyncio.get_running_loop().call_soon(self._release_some)
