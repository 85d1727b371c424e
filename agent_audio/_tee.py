"""``TeeAgentAudioTrack``: the voice teed to avatar sinks, and ``TeeMixingAgentAudioTrack``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from ._clock import Clock
from ._errors import InvalidAudioError, InvalidStateError
from ._format import AudioFormat
from ._mixing import MixingAgentAudioTrack, make_background
from ._options import check_number
from ._sinks import AudioSink, SinkFeeder
from ._stages import OutputFrame, OutputStage, VoiceTap
from ._stats import TrackMetrics
from ._track import AgentAudioTrack

__all__ = ["SinkTee", "TeeAgentAudioTrack", "TeeMixingAgentAudioTrack", "TeeTrackMetrics"]

Block = npt.NDArray[np.int16]
_new = tuple.__new__  # builds an OutputFrame without its Python-level __new__ (once per frame)

#: Longest accepted ``sink_queue``, in seconds.
MAX_SINK_QUEUE = 600.0


@dataclass(frozen=True)
class TeeTrackMetrics(TrackMetrics):
    """:class:`TrackMetrics` plus the sinks' account."""

    sinks: int = 0
    """Sinks attached."""
    sink_overflow_bytes: int = 0
    """Audio bytes dropped because a sink fell behind by more than its queue bound (all sinks)."""
    sink_errors: int = 0
    """Calls into sinks that raised (all sinks; each kind of error is logged once per sink)."""


class SinkTee(VoiceTap):
    """The tee: a voice tap feeding every attached sink, and an output stage muting the voice on the wire.

    While any sink is attached, :meth:`process` replaces the frame's samples with
    silence (the avatar publishes the voice) but keeps ``voiced``, so ducking and
    :attr:`AgentAudioTrack.is_speaking` follow the voice. Placed first among the stages,
    so a background mixed after it still reaches the wire.

    Args:
        fmt: the track format.
        sink_queue: seconds of audio that may wait for one sink before more is dropped.
    """

    def __init__(self, fmt: AudioFormat, *, sink_queue: float) -> None:
        self.max_bytes = round(sink_queue * fmt.sample_rate) * 2 * fmt.channels
        self.feeders: dict[int, SinkFeeder] = {}  # by id(sink): sinks need not be hashable
        self.closed_overflow = 0
        self.closed_errors = 0
        self._silence = np.zeros((fmt.frame_samples, fmt.channels), dtype=np.int16)

    def process(self, frame: OutputFrame) -> OutputFrame:
        """Silence on the wire while a sink plays the voice."""
        if not self.feeders:
            return frame
        return _new(OutputFrame, (self._silence, frame[1], 0, frame[3], frame[4]))  # voiced, turn_id, pts kept

    def voice_queued(self, turn_id: int, samples: Block) -> None:
        """Hand queued voice to every sink, as packed s16 bytes."""
        if self.feeders:
            data = samples.tobytes()
            for feeder in self.feeders.values():
                feeder.put_audio(data)

    def paused(self) -> None:
        """Tell every sink (``on_pause``)."""
        self._control("on_pause")

    def resumed(self) -> None:
        """Tell every sink (``on_resume``)."""
        self._control("on_resume")

    def interrupted(self, turn_ids: tuple[int, ...]) -> None:
        """Tell every sink (``on_interrupt``), dropping the audio it has not taken yet."""
        self._control("on_interrupt")

    def turn_ended(self, turn_id: int) -> None:
        """Tell every sink (``on_turn_end(turn_id)``)."""
        self._control("on_turn_end", turn_id)

    def add(self, sink: AudioSink) -> None:
        """Attach ``sink``; see :meth:`TeeAgentAudioTrack.add_sink`."""
        if not callable(getattr(sink, "handle_audio_input", None)):
            raise InvalidAudioError(f"expected a sink with handle_audio_input(data: bytes), got {sink!r}")
        if id(sink) in self.feeders:
            raise InvalidStateError(f"expected a sink not attached yet, got {sink!r} again")
        self.feeders[id(sink)] = SinkFeeder(sink, max_bytes=self.max_bytes)

    def remove(self, sink: AudioSink) -> None:
        """Detach ``sink`` (no-op if not attached)."""
        feeder = self.feeders.pop(id(sink), None)
        if feeder is not None:
            self.closed_overflow += feeder.overflow_bytes
            self.closed_errors += feeder.errors
            feeder.close()

    def close(self) -> None:
        """The track stopped: detach every sink."""
        for feeder in list(self.feeders.values()):
            self.remove(feeder.sink)

    def _control(self, method: str, *args: int) -> None:
        for feeder in self.feeders.values():
            feeder.put_control(method, *args)


def make_tee(sample_rate: int, channels: int, frame_duration: float, *, sink_queue: float) -> SinkTee:
    """Validate ``sink_queue`` and build the tee for that track format.

    Raises:
        InvalidAudioError: ``sink_queue`` is not a number of seconds > 0 and <= 600, or
            the format is invalid.
    """
    fmt = AudioFormat.for_track(sample_rate=sample_rate, channels=channels, frame_duration=frame_duration)
    return SinkTee(fmt, sink_queue=check_number("sink_queue", sink_queue, unit="seconds", low_open=True, high=600))


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

    It is the base track composed with a :class:`SinkTee`, as the first voice tap and the
    first output stage (so a background mixed after it still reaches the wire).

    Args:
        sink_queue: seconds (> 0, up to 600) of audio that may wait for one sink before
            more is dropped.
        sample_rate, channels, frame_duration, fade_out, speaking_grace, clock,
            max_queued, stages, taps: as for :class:`AgentAudioTrack`.

    Raises:
        InvalidAudioError: an option is out of range.
    """

    def __init__(
        self,
        *,
        sink_queue: float = 10.0,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_duration: float = 0.020,
        fade_out: float = 0.2,
        speaking_grace: float = 0.2,
        clock: Clock | None = None,
        max_queued: float | None = None,
        stages: Sequence[OutputStage] = (),
        taps: Sequence[VoiceTap] = (),
    ) -> None:
        self._tee = make_tee(sample_rate, channels, frame_duration, sink_queue=sink_queue)
        super().__init__(
            sample_rate=sample_rate,
            channels=channels,
            frame_duration=frame_duration,
            fade_out=fade_out,
            speaking_grace=speaking_grace,
            clock=clock,
            max_queued=max_queued,
            stages=(self._tee, *stages),
            taps=(self._tee, *taps),
        )

    @property
    def sinks(self) -> list[AudioSink]:
        """The attached sinks, in the order they were added."""
        return [feeder.sink for feeder in self._tee.feeders.values()]

    def add_sink(self, sink: AudioSink) -> None:
        """Start teeing the voice to ``sink`` (from the next push). Needs a running event loop.

        Raises:
            InvalidAudioError: ``sink`` has no callable ``handle_audio_input``.
            InvalidStateError: ``sink`` is attached already.
            TrackClosedError: the track was stopped.
        """
        self._intake.check_live()
        self._tee.add(sink)

    def remove_sink(self, sink: AudioSink) -> None:
        """Stop teeing to ``sink``; what it has not received yet is dropped. No-op if not attached."""
        self._tee.remove(sink)

    def metrics(self) -> TeeTrackMetrics:
        """A snapshot of the metrics, with the sinks' account."""
        base = super().metrics()
        tee = self._tee
        feeders = tee.feeders.values()
        return TeeTrackMetrics(
            **{f.name: getattr(base, f.name) for f in fields(TrackMetrics)},
            sinks=len(tee.feeders),
            sink_overflow_bytes=tee.closed_overflow + sum(f.overflow_bytes for f in feeders),
            sink_errors=tee.closed_errors + sum(f.errors for f in feeders),
        )


class TeeMixingAgentAudioTrack(TeeAgentAudioTrack, MixingAgentAudioTrack):
    """Both: the voice teed to avatar sinks and a background mixed in.

    With sinks attached, the wire carries the background only (the avatar publishes the
    voice); ducking still follows the voice. The stages run in this order: the tee's
    mute, then ``stages``, then the background.

    Args:
        sink_queue: as for :class:`TeeAgentAudioTrack`.
        duck, duck_attack, duck_release: as for :class:`MixingAgentAudioTrack`.
        sample_rate, channels, frame_duration, fade_out, speaking_grace, clock,
            max_queued, stages, taps: as for :class:`AgentAudioTrack`.

    Raises:
        InvalidAudioError: an option is out of range.
    """

    def __init__(
        self,
        *,
        sink_queue: float = 10.0,
        duck: float = -10.0,
        duck_attack: float = 0.03,
        duck_release: float = 0.09,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_duration: float = 0.020,
        fade_out: float = 0.2,
        speaking_grace: float = 0.2,
        clock: Clock | None = None,
        max_queued: float | None = None,
        stages: Sequence[OutputStage] = (),
        taps: Sequence[VoiceTap] = (),
    ) -> None:
        # Composed here, not through the two parents' __init__ (each passes on only the
        # base's options): the same pieces, in the same order, as either parent builds.
        self._tee = make_tee(sample_rate, channels, frame_duration, sink_queue=sink_queue)
        self._background = make_background(
            sample_rate, channels, frame_duration, duck=duck, duck_attack=duck_attack, duck_release=duck_release
        )
        AgentAudioTrack.__init__(
            self,
            sample_rate=sample_rate,
            channels=channels,
            frame_duration=frame_duration,
            fade_out=fade_out,
            speaking_grace=speaking_grace,
            clock=clock,
            max_queued=max_queued,
            stages=(self._tee, *stages, self._background),
            taps=(self._tee, *taps),
        )
        self._init_stream()
