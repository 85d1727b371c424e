"""Avatar sinks: what they implement, and how each one is fed without stalling the track.

A sink receives the voice audio as it is pushed (ahead of playout, which is what an
avatar needs to render lip-sync) and is told when the agent pauses, resumes, is
interrupted, and when a turn's audio is complete. Each sink gets its own bounded queue
and its own task; a synchronous sink also gets its own worker thread, so a sink that
raises, blocks or never returns affects nobody else: not the other sinks, not
``push()``, not ``recv()``. Whatever a sink raises, ``SystemExit`` and
``KeyboardInterrupt`` included, is logged and counted; it never reaches the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["AudioSink", "AvatarSink", "SinkFeeder", "SinkThread"]

logger = logging.getLogger(__name__)


@runtime_checkable
class AudioSink(Protocol):
    """What a sink must implement: one method, sync or async.

    ``handle_audio_input(data)`` receives the voice as packed s16 little-endian bytes at
    the track's sample rate and channel count, in push order, ahead of playout. Chunks
    are whatever sizes the agent pushed (after resampling), not frames.

    A sink may also implement any of the optional hooks of :class:`AvatarSink`; the track
    calls those that exist, in order with the audio.
    """

    def handle_audio_input(self, data: bytes) -> Awaitable[None] | None:
        """Receive voice audio: packed s16 bytes at the track format."""
        ...


@runtime_checkable
class AvatarSink(AudioSink, Protocol):
    """A sink with every optional hook (each may be sync or async).

    * ``on_pause()``: the agent paused (a possible false interruption); hold the face.
    * ``on_resume()``: the agent resumed where it paused.
    * ``on_interrupt()``: the agent was interrupted; stop talking now. Audio not yet
      handed to the sink is discarded first.
    * ``on_turn_end(turn_id)``: all audio of turn ``turn_id`` has been handed over.
    """

    def on_pause(self) -> Awaitable[None] | None:
        """The agent paused."""
        ...

    def on_resume(self) -> Awaitable[None] | None:
        """The agent resumed."""
        ...

    def on_interrupt(self) -> Awaitable[None] | None:
        """The agent was interrupted."""
        ...

    def on_turn_end(self, turn_id: int) -> Awaitable[None] | None:
        """All audio of ``turn_id`` has been handed over."""
        ...


class SinkThread:
    """One daemon thread running a sync sink's calls in order.

    A daemon thread, not a ``ThreadPoolExecutor`` worker: those are joined at interpreter
    exit, so a sink stalled forever would hang the process on shutdown.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="agent_audio-sink", daemon=True).start()

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[tuple[bool, Any]]:
        """Run ``fn(*args)`` on the thread; the future resolves on the calling loop.

        Returns:
            A future of ``(True, result)``, or ``(False, exception)`` if ``fn`` raised
            anything (a ``BaseException`` set on an asyncio future would be re-raised
            out of the event loop by the awaiting task, so it travels as a value).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bool, Any]] = loop.create_future()
        self._calls.put((loop, future, fn, args))
        return future

    def close(self) -> None:
        """Let the thread end after the call it is in (if it ever returns)."""
        self._calls.put(None)

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, future, fn, args = item
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as exc:  # handed to the loop as a value, which logs it
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(_resolve, future, outcome)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return


def _resolve(future: asyncio.Future[tuple[bool, Any]], outcome: tuple[bool, Any]) -> None:
    if not future.done():
        future.set_result(outcome)


class SinkFeeder:
    """Feeds one sink through a bounded queue, from its own task (and thread, for sync methods).

    Args:
        sink: the sink.
        max_bytes: most audio bytes waiting for the sink; audio beyond it is dropped and
            counted in :attr:`overflow_bytes` (control calls are never dropped).
    """

    def __init__(self, sink: AudioSink, *, max_bytes: int) -> None:
        self.sink = sink
        self.max_bytes = max_bytes
        self.overflow_bytes = 0
        """Audio bytes dropped because the sink fell behind by more than ``max_bytes``."""
        self.errors = 0
        """Calls into the sink that raised."""
        self._items: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._logged: set[tuple[str, type[BaseException]]] = set()
        self._thread: SinkThread | None = None
        self._task = asyncio.ensure_future(self._run())

    def put_audio(self, data: bytes) -> None:
        """Queue audio for the sink, or drop and count it if the sink is too far behind."""
        if self._pending_bytes + len(data) > self.max_bytes:
            self.overflow_bytes += len(data)
            return
        self._pending_bytes += len(data)
        self._items.append(("handle_audio_input", (data,)))
        self._wake.set()

    def put_control(self, method: str, *args: Any) -> None:
        """Queue a call of an optional hook, if the sink has it.

        ``on_interrupt`` first drops the audio the sink has not taken yet, whether or not
        the sink implements the hook: stale speech must not reach an avatar.
        """
        if method == "on_interrupt":
            self._items = deque(item for item in self._items if item[0] != "handle_audio_input")
            self._pending_bytes = 0
        if self._hook(method) is None:
            return
        self._items.append((method, args))
        self._wake.set()

    def close(self) -> None:
        """Stop feeding: cancel the task (a stalled call included) and let the thread go."""
        self._task.cancel()
        if self._thread is not None:
            self._thread.close()

    async def _run(self) -> None:
        while True:
            while not self._items:
                self._wake.clear()
                await self._wake.wait()
            method, args = self._items.popleft()
            if method == "handle_audio_input":
                self._pending_bytes -= len(args[0])
            await self._call(method, args)

    def _hook(self, method: str) -> Callable[..., Any] | None:
        """The sink's ``method`` if it is callable; None if absent (or if looking it up raised: logged)."""
        try:
            fn = getattr(self.sink, method, None)
        except BaseException as exc:  # a property of the sink raised: the sink's fault, never ours
            self._failed(method, exc)
            return None
        return fn if callable(fn) else None

    async def _call(self, method: str, args: tuple[Any, ...]) -> None:
        fn = self._hook(method)
        if fn is None:
            return
        try:
            if inspect.iscoroutinefunction(fn):
                await fn(*args)
            else:
                if self._thread is None:
                    self._thread = SinkThread()
                ok, result = await self._thread.call(fn, *args)
                if not ok:
                    self._failed(method, result)
                elif inspect.isawaitable(result):
                    await result
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and _cancelling(task):
                raise  # close() cancelled this feeder
            self._failed(method, exc)  # the sink's own cancellation, not ours
        except BaseException as exc:  # SystemExit, KeyboardInterrupt included: a sink must not end the loop
            self._failed(method, exc)

    def _failed(self, method: str, exc: BaseException) -> None:
        """Count a call that raised; log each kind of error once per sink, with its traceback."""
        self.errors += 1
        key = (method, type(exc))
        if key not in self._logged:
            self._logged.add(key)
            logger.error(
                "agent_audio: sink %r raised in %s (logged once per kind of error)",
                self.sink,
                method,
                exc_info=(type(exc), exc, exc.__traceback__),
            )


def _cancelling(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is being cancelled (``Task.cancelling()`` from Python 3.11; before, assume so)."""
    cancelling = getattr(task, "cancelling", None)
    return True if cancelling is None else bool(cancelling())
