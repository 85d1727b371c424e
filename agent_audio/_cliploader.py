"""Loading clips off the event loop: one loader thread per process, and the awaitable a load returns."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

__all__ = ["ClipLoad", "ClipLoader", "yield_gil"]


class ClipLoad:
    """A clip being decoded and resampled: ``await`` it to know it is in the mix (or why not).

    Resolves (to None) once the clip is in the mix, or once a later ``set_background``,
    a ``stop()`` of the sound or of the track made it moot (it is then not decoded at
    all, or not installed). Awaiting raises what loading raised (``FileNotFoundError``,
    :class:`~agent_audio.InvalidAudioError`); a failure is also logged, so an
    un-awaited load does not fail silently.
    """

    def __init__(self) -> None:
        self._future: concurrent.futures.Future[None] = concurrent.futures.Future()

    @property
    def done(self) -> bool:
        """Whether loading is over (successfully or not)."""
        return self._future.done()

    def exception(self) -> BaseException | None:
        """The loading error once done, else None."""
        return self._future.exception() if self._future.done() else None

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.wrap_future(self._future).__await__()

    def _settle(self, error: BaseException | None) -> None:
        if error is None:
            self._future.set_result(None)
        else:
            self._future.set_exception(error)


def yield_gil() -> None:
    """Hand the GIL to the event loop's thread between two decoded frames."""
    time.sleep(0)


class ClipLoader:
    """One daemon thread per process that decodes clips in the order they are asked for.

    A daemon thread, not the loop's default executor: starting a thread makes the caller
    wait for the GIL (up to the 5 ms switch interval) while the new thread boots, so it
    is started once, when the first mixing track is made, never in the middle of a call.
    """

    _shared: ClipLoader | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="agent_audio-clips", daemon=True).start()

    @classmethod
    def forget(cls) -> None:
        """After ``fork()``: the child has no loader thread, so it starts its own on first use."""
        cls._shared = None
        cls._lock = threading.Lock()

    @classmethod
    def shared(cls) -> ClipLoader:
        """The process's loader, started on first use."""
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def put(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the loader thread after the jobs before it."""
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            self._jobs.get()()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=ClipLoader.forget)
