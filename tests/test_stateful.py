"""Random sequences of track operations (hypothesis stateful testing).

Drives start_turn / push (random sizes, rates, dtypes, channel counts, AudioFrames,
bytes split mid-sample) / end_turn / pause / resume / interrupt / recv / stalls, and
checks after every step:
- conservation: ``pushed == played + dropped + queued`` for every turn, and the queue
  holds exactly the turns' queued samples;
- every frame has the track format, ``frame_samples`` samples and continuous pts;
  ``recv()`` never raises or returns None, and never hides an internal fault;
- exactly one ``turn_finished`` per finished turn, none for the others; after ``stop()``
  every turn has finished exactly once.

The machine builds its track through ``make_track``, so the mixing, tee and tee-mixing
tracks run the same sequences (with a looping bed and an attached sink); with a sink
attached, the tee's wire must stay silent and the tee-mixing wire must carry the bed only.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import av
import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent_audio import (
    AgentAudioTrack,
    MixingAgentAudioTrack,
    TeeAgentAudioTrack,
    TeeMixingAgentAudioTrack,
    Turn,
    TurnClosedError,
    TurnFinished,
)
from agent_audio._format import LAYOUTS
from agent_audio.testing import ManualClock

from helpers import assert_frame


class TrackMachine(RuleBasedStateMachine):
    channels = 1

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.track = self.make_track()
        self.finished: Counter[int] = Counter()
        self.track.on("turn_finished", self._on_finished)
        self.turns: dict[int, Turn] = {}
        self.pts = 0
        self.odd: bytes = b""

    def make_track(self) -> AgentAudioTrack:
        return AgentAudioTrack(clock=self.clock, channels=self.channels)

    def _on_finished(self, event: TurnFinished) -> None:
        self.finished[event.turn_id] += 1

    def _remember(self) -> None:
        turn = self.track.current_turn
        if turn is not None:
            self.turns[turn.id] = turn

    @rule()
    def start_turn(self) -> None:
        turn = self.track.start_turn()
        self.turns[turn.id] = turn

    @rule(
        kind=st.sampled_from(["bytes", "int16", "float32", "float64", "frame"]),
        n=st.integers(0, 3000),
        rate=st.sampled_from([8000, 16000, 22050, 24000, 48000]),
        channels=st.sampled_from([1, 2]),
        explicit=st.booleans(),
        seed=st.integers(0, 2**16),
    )
    def push(self, kind: str, n: int, rate: int, channels: int, explicit: bool, seed: int) -> None:
        rng = np.random.default_rng(seed)
        floats = rng.uniform(-0.9, 0.9, size=(n, channels))
        data: object
        if kind == "bytes":
            # at the track format, cut anywhere (mid-sample too)
            raw = self.odd + (floats[:, :1].repeat(self.channels, 1) * 32767).astype("<i2").tobytes()
            cut = len(raw) - int(rng.integers(0, 2))
            data, self.odd, rate, channels = raw[:cut], raw[cut:], self.track.sample_rate, self.track.channels
        elif kind == "int16":
            data = (floats * 32767).astype(np.int16)
        elif kind == "frame":
            frame = av.AudioFrame.from_ndarray(
                floats.astype(np.float32).reshape(1, -1), format="flt", layout=LAYOUTS[channels]
            )
            frame.sample_rate = rate
            data = frame
        else:
            data = floats.astype(kind)
        turn = self.track.current_turn if explicit else None
        kwargs = {} if kind == "frame" else {"sample_rate": rate}
        try:
            self.loop.run_until_complete(self.track.push(data, turn=turn, **kwargs))
        except TurnClosedError:
            assert (turn is not None and turn.stats.finished) or (turn is not None and turn._state.ended)
            self.odd = b""
        self._remember()

    @rule()
    def end_turn(self) -> None:
        self.track.end_turn()
        self.odd = b""

    @rule()
    def pause(self) -> None:
        self.track.pause()
        assert self.track.is_paused

    @rule()
    def resume(self) -> None:
        self.track.resume()
        assert not self.track.is_paused

    @rule()
    def interrupt(self) -> None:
        self.track.interrupt()
        self.odd = b""
        turn = self.track.current_turn
        assert turn is None or turn.stats.interrupted or turn.stats.finished

    @rule(frames=st.integers(1, 25))
    def recv(self, frames: int) -> None:
        for _ in range(frames):
            frame = self.loop.run_until_complete(self.track.recv())
            self.check_wire(assert_frame(frame, self.track, pts=self.pts))
            self.pts += self.track.frame_samples

    def check_wire(self, samples: np.ndarray) -> None:
        """What the wire must carry, beyond the format (subclasses)."""

    @precondition(lambda self: self.track.metrics().frames_sent > 0)
    @rule(seconds=st.floats(0.0, 0.5))
    def stall(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def samples_are_conserved(self) -> None:
        queued = 0
        for turn in self.turns.values():
            s = turn.stats
            assert s.pushed_samples == s.played_samples + s.dropped_samples + s.queued_samples, s
            queued += s.queued_samples
        assert self.track.metrics().queued_samples == queued

    @invariant()
    def one_finished_event_per_finished_turn(self) -> None:
        for _ in range(2):
            self.loop.run_until_complete(asyncio.sleep(0))
        for turn in self.turns.values():
            assert self.finished[turn.id] == (1 if turn.stats.finished else 0), (turn, self.finished)

    @invariant()
    def no_fault_was_hidden(self) -> None:
        assert not self.track._fault_logged

    def teardown(self) -> None:
        try:
            self.track.stop()
            for turn in self.turns.values():
                assert turn.stats.finished and self.finished[turn.id] == 1, turn
        finally:
            self.loop.run_until_complete(asyncio.sleep(0))  # let cancelled sink feeders finish
            self.loop.close()


class StereoTrackMachine(TrackMachine):
    channels = 2


BED = 1000  # a constant bed: easy to recognise on the wire


class MixingTrackMachine(TrackMachine):
    def make_track(self) -> AgentAudioTrack:
        track = MixingAgentAudioTrack(clock=self.clock, channels=self.channels)
        track.set_background(np.full(960, BED, np.int16))
        return track


class Sink:
    def __init__(self) -> None:
        self.received = 0

    async def handle_audio_input(self, data: bytes) -> None:
        self.received += len(data)

    def on_interrupt(self) -> None:
        pass


class TeeTrackMachine(TrackMachine):
    def make_track(self) -> AgentAudioTrack:
        track = self.tee_class(clock=self.clock, channels=self.channels)
        self.sink = Sink()

        async def attach() -> None:
            track.add_sink(self.sink)

        self.loop.run_until_complete(attach())
        return track

    tee_class: type[TeeAgentAudioTrack] = TeeAgentAudioTrack

    def check_wire(self, samples: np.ndarray) -> None:
        assert not samples.any(), "the wire must be silent while a sink is attached"


class TeeMixingTrackMachine(TeeTrackMachine):
    tee_class = TeeMixingAgentAudioTrack

    def make_track(self) -> AgentAudioTrack:
        track = super().make_track()
        assert isinstance(track, TeeMixingAgentAudioTrack)
        track.set_background(np.full(960, BED, np.int16))
        return track

    def check_wire(self, samples: np.ndarray) -> None:
        # the bed only (faded in, ducked under the voice): never above it, never voice
        assert samples.min() >= 0 and samples.max() <= BED


TestTrackSequences = TrackMachine.TestCase
TestTrackSequences.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestStereoTrackSequences = StereoTrackMachine.TestCase
TestStereoTrackSequences.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestMixingTrackSequences = MixingTrackMachine.TestCase
TestMixingTrackSequences.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestTeeTrackSequences = TeeTrackMachine.TestCase
TestTeeTrackSequences.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestTeeMixingTrackSequences = TeeMixingTrackMachine.TestCase
TestTeeMixingTrackSequences.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
