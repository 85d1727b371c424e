"""The extension contract: output stages transform the outgoing block, voice taps see the voice as it is queued.

A track is composed at construction from an ordered list of :class:`OutputStage`
objects and a list of :class:`VoiceTap` objects. The base track owns ``recv()``,
pacing, the counters and the events; stages and taps get values, never the engine.
The four public track classes are such compositions: the background mix is a stage,
the avatar tee is a tap plus a stage that keeps the voice off the wire while a sink
plays it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from ._errors import InvalidAudioError

__all__ = ["TAP_METHODS", "OutputFrame", "OutputStage", "TapSet", "VoiceTap"]

logger = logging.getLogger(__name__)

Block = npt.NDArray[np.int16]


class OutputFrame(NamedTuple):
    """One outgoing frame as it passes through the output stages (a value: build a new one to change it).

    Use ``frame._replace(samples=..., peak=...)`` to hand on a changed frame.
    """

    samples: Block
    """int16, shape ``(frame_samples, channels)``, C-contiguous, at the track's sample rate and
    layout. May be a read-only view of queued voice: never write to it, return a new array."""
    voiced: bool
    """Whether the agent's voice is in the frame at non-zero gain (ducking and
    :attr:`AgentAudioTrack.is_speaking` follow this; a stage that mutes the voice keeps it)."""
    peak: int
    """An upper bound of ``abs()`` over ``samples``, in s16 units (32768 when not known).
    A stage that changes ``samples`` must hand on a bound that still holds."""
    turn_id: int | None
    """Id of the turn whose voice the frame carries (the newest one if two), or None."""
    pts: int
    """pts of the frame's first sample: samples per channel since the track's first frame."""


class OutputStage(Protocol):
    """Transforms each outgoing frame, in the order the stages were given to the track.

    ``process`` runs inside ``recv()``, once per frame (every 20 ms): keep it cheap, never
    block, never await. An exception is logged once and the frame goes out as it was
    before that stage. A stage may also define ``close()``, called once when the track
    stops.
    """

    def process(self, frame: OutputFrame) -> OutputFrame:
        """Return the frame to hand to the next stage (``frame`` itself when unchanged)."""
        ...


class VoiceTap:
    """Sees the voice as it is queued and the track's control events, in order.

    Subclass it and override what you need: every method is a no-op here. Each runs on
    the event loop, synchronously, inside the call that caused it (``push()``,
    ``pause()``...), never inside ``recv()``: keep it cheap and hand slow work to a task
    or a thread (see :class:`agent_audio.TeeAgentAudioTrack`, which feeds each sink
    through its own queue). An exception is logged and never reaches the caller.
    """

    def voice_queued(self, turn_id: int, samples: Block) -> None:
        """``samples`` (int16, ``(n, channels)``, the track format) were queued for ``turn_id``.

        Only audio that will be played is reported (not audio dropped because its turn
        was interrupted). Do not write to ``samples``.
        """

    def paused(self) -> None:
        """``pause()`` took effect."""

    def resumed(self) -> None:
        """``resume()`` took effect (also a pause that timed out into a resume)."""

    def interrupted(self, turn_ids: tuple[int, ...]) -> None:
        """``interrupt()`` stopped these turns; their audio not yet played is dropped."""

    def turn_ended(self, turn_id: int) -> None:
        """Synthesis of ``turn_id`` is complete and all its audio was reported (not for interrupted turns)."""


#: The methods a voice tap may define (each is optional).
TAP_METHODS = ("voice_queued", "paused", "resumed", "interrupted", "turn_ended")


class TapSet:
    """Calls every tap that defines a method, in tap order, isolating each call.

    An exception from a tap is logged once per tap and method and never reaches the
    caller. Methods a tap inherits unchanged from :class:`VoiceTap` are not called.

    Raises:
        InvalidAudioError: a tap defines none of :data:`TAP_METHODS`.
    """

    def __init__(self, taps: Sequence[VoiceTap]) -> None:
        self.taps = tuple(taps)
        self._calls: dict[str, tuple[tuple[VoiceTap, Callable[..., object]], ...]] = {}
        for name in TAP_METHODS:
            self._calls[name] = tuple((tap, getattr(tap, name)) for tap in self.taps if _defines(tap, name))
        for tap in self.taps:
            if not any(_defines(tap, name) for name in TAP_METHODS):
                raise InvalidAudioError(f"expected a voice tap defining one of {list(TAP_METHODS)}, got {tap!r}")
        self._voice = self._calls["voice_queued"]
        self._logged: set[tuple[int, str]] = set()

    def voice_queued(self, turn_id: int, samples: Block) -> None:
        """Report queued voice to every tap."""
        for tap, method in self._voice:
            try:
                method(turn_id, samples)
            except BaseException:  # SystemExit included: nothing a plugin does reaches the loop
                self._log(tap, "voice_queued")

    def control(self, name: str, *args: object) -> None:
        """Call ``paused``, ``resumed``, ``interrupted`` or ``turn_ended`` on every tap that defines it."""
        for tap, method in self._calls[name]:
            try:
                method(*args)
            except BaseException:  # SystemExit included: nothing a plugin does reaches the loop
                self._log(tap, name)

    def _log(self, tap: VoiceTap, method: str) -> None:
        key = (id(tap), method)
        if key not in self._logged:
            self._logged.add(key)
            logger.exception("agent_audio: voice tap %r raised in %s (logged once per tap and method)", tap, method)


def _defines(tap: object, name: str) -> bool:
    """Whether ``tap`` has its own ``name`` method (not :class:`VoiceTap`'s no-op)."""
    method = getattr(type(tap), name, None)
    if method is None:
        return callable(getattr(tap, name, None))  # set on the instance
    return callable(method) and method is not getattr(VoiceTap, name)
