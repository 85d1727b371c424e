"""``TeeAgentAudioTrack``: the voice teed to avatar sinks, and ``TeeMixingAgentAudioTrack``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import InvalidAudioError
from ._mixing import MixingAgentAudioTrack
from ._sinks import AudioSink, SinkFeeder
from ._stats import TrackMetrics
from ._track import AgentAudioTrack
from ._turn import Turn

__all__ = ["TeeAgentAudioTrack", "TeeMixingAgentAudioTrack", "TeeTrackMetrics"]

Block = npt.NDArray[np.int16]


@dataclass(frozen=True)
class TeeTrackMetrics(TrackMetrics):
    """:class:`TrackMetrics` plus the sinks' account."""

    sinks: int = 0
    """Sinks attached."""
    sink_overflow_bytes: int = 0
    """Audio bytes dropped because a sink fell behind by more than its queue bound (all sinks)."""
    sink_errors: int = 0
    """Calls into sinks that raised (all sinks; each kind of error is logged once per sink)."""


class TeeAgentAudioTrack(AgentAudioTrack):
    """:class:`AgentAudioTrack` that tees the voice to avatar sinks.

    A sink (see :class:`~agent_audio.AudioSink` and :class:`~agent_audio.AvatarSink`)
    receives the voice as it is pushed, as packed s16 bytes at the track format, ahead of
    playout, and is told of pause, resume, interrupt and turn end, in order with the
    audio. While at least one sink is attached, the WebRTC track carries silence (the
    avatar publishes the audio) but the counters, events, time to first audio and
    :attr:`is_speaking` behave exactly as if the voice were playing: playout timing
    still comes from this track's clock.

    Each sink is fed through its own queue and task (and thread, for sync methods): a
    sink that raises is logged once per kind of error and keeps receiving; a sink that
    stalls never blocks :meth:`push` or :meth:`recv`; audio beyond ``sink_queue`` seconds
    waiting for a sink is dropped and counted (:attr:`TeeTrackMetrics.sink_overflow_bytes`).

    Args:
        sink_queue: seconds of audio that may wait for one sink before more is dropped.
        **kwargs: the options of :class:`AgentAudioTrack`.

    Raises:
        InvalidAudioError: ``sink_queue`` is not a positive number of seconds.
    """

    def __init__(self, *, sink_queue: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(sink_queue, (int, float)) or not sink_queue > 0:
            raise InvalidAudioError(f"expected sink_queue > 0 seconds, got {sink_queue!r}")
        self._sink_queue_bytes = round(sink_queue * self.sample_rate) * 2 * self.channels
        self._feeders: dict[int, SinkFeeder] = {}  # by id(sink): sinks need not be hashable
        self._closed_overflow = 0
        self._closed_errors = 0
        self._wire_silence = np.zeros((self.frame_samples, self.channels), dtype=np.int16)

    @property
    def sinks(self) -> list[AudioSink]:
        """The attached sinks, in the order they were added."""
        return [feeder.sink for feeder in self._feeders.values()]

    def add_sink(self, sink: AudioSink) -> None:
        """Start teeing the voice to ``sink`` (from the next push). Needs a running event loop.

        Raises:
            InvalidAudioError: ``sink`` has no callable ``handle_audio_input``, or is
                attached already.
        """
        if not callable(getattr(sink, "handle_audio_input", None)):
            raise InvalidAudioError(f"expected a sink with handle_audio_input(data: bytes), got {sink!r}")
        if id(sink) in self._feeders:
            raise InvalidAudioError(f"expected a sink not attached yet, got {sink!r} again")
        self._feeders[id(sink)] = SinkFeeder(sink, max_bytes=self._sink_queue_bytes)

    def remove_sink(self, sink: AudioSink) -> None:
        """Stop teeing to ``sink``; what it has not received yet is dropped. No-op if not attached."""
        feeder = self._feeders.pop(id(sink), None)
        if feeder is not None:
            self._closed_overflow += feeder.overflow_bytes
            self._closed_errors += feeder.errors
            feeder.close()

    def metrics(self) -> TeeTrackMetrics:
        """A snapshot of the metrics, with the sinks' account."""
        base = super().metrics()
        feeders = self._feeders.values()
        return TeeTrackMetrics(
            **{f.name: getattr(base, f.name) for f in fields(TrackMetrics)},
            sinks=len(self._feeders),
            sink_overflow_bytes=self._closed_overflow + sum(f.overflow_bytes for f in feeders),
            sink_errors=self._closed_errors + sum(f.errors for f in feeders),
        )

    def stop(self) -> None:
        """Stop the track and detach every sink."""
        super().stop()
        for feeder in list(self._feeders.values()):
            self.remove_sink(feeder.sink)

    def _process_output(self, voice: Block) -> Block:
        return super()._process_output(self._wire_silence if self._feeders else voice)

    def _voice_queued(self, turn: Turn, samples: Block) -> None:
        super()._voice_queued(turn, samples)
        if self._feeders:
            data = samples.tobytes()
            for feeder in self._feeders.values():
                feeder.put_audio(data)

    def _on_pause(self) -> None:
        super()._on_pause()
        self._control("on_pause")

    def _on_resume(self) -> None:
        super()._on_resume()
        self._control("on_resume")

    def _on_interrupt(self) -> None:
        super()._on_interrupt()
        self._control("on_interrupt")

    def _on_turn_end(self, turn: Turn) -> None:
        super()._on_turn_end(turn)
        self._control("on_turn_end", turn.id)

    def _control(self, method: str, *args: Any) -> None:
        for feeder in self._feeders.values():
            feeder.put_control(method, *args)


class TeeMixingAgentAudioTrack(TeeAgentAudioTrack, MixingAgentAudioTrack):
    """Both: the voice teed to avatar sinks and a background mixed in.

    With sinks attached, the wire carries the background only (the avatar publishes the
    voice); ducking still follows the voice. Options: those of
    :class:`TeeAgentAudioTrack` and :class:`MixingAgentAudioTrack`.
    """
