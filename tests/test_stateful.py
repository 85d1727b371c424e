"""Random sequences of track operations (hypothesis stateful testing): the reliability suite.

Drives start_turn / push (random sizes, rates, dtypes, channel counts, AudioFrames,
bytes split mid-sample) / long pushes left running in the background / end_turn /
pause / resume / interrupt / barge-in (speech, an interrupt, a pause during the fade) /
recv / stalls / ``stop()`` at any point, and every one of them again after ``stop()``,
through the public API only. Every push runs as a
task that the machine drives for a few loop iterations, so a push may still be under
way (between slices, or waiting on ``max_queued`` in the bounded variant) when the next
operation, ``stop()`` included, arrives. Checks after every step (issue 15):

- conservation: ``pushed == played + dropped + queued`` for every turn, and the queue
  holds exactly the turns' queued samples;
- every frame has the track format, ``frame_samples`` samples and continuous pts;
  ``recv()`` never raises (``MediaStreamError`` only after ``stop()``), never returns
  None, and never hides an internal fault (no ERROR record on the ``agent_audio`` logger);
- every turn finishes exactly once: one ``turn_finished`` per finished turn (counted by
  id), none for the others;
- nothing of an interrupted turn is played after its fade: the interrupted turns' played
  samples never exceed what they had played at the call plus the ``Interrupted`` event's
  ``fade_samples``; and once that many samples (plus one frame) have been handed out
  with no push under way, they have all finished, paused or not;
- ``stop()``: every turn finishes exactly once, every ``wait_for_playout()`` returns,
  every push under way returns, and from then on ``recv()`` raises ``MediaStreamError``
  and pushes raise ``TrackClosedError``.

The machine builds its track through ``make_track``, so the mixing, tee and tee-mixing
tracks run the same sequences (with a looping bed and an attached sink); with a sink
attached, the tee's wire must stay silent and the tee-mixing wire must carry the bed only.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent_audio import (
    AgentAudioTrack,
    Interrupted,
    MixingAgentAudioTrack,
    TeeAgentAudioTrack,
    TeeMixingAgentAudioTrack,
    TrackClosedError,
    Turn,
    TurnClosedError,
    TurnFinished,
)
from agent_audio._format import LAYOUTS
from agent_audio.testing import ManualClock

from helpers import assert_frame

SPIN = 12  # loop iterations a push step runs: a short push completes, a long one may not


class ErrorRecords(logging.Handler):
    """Every ERROR (or worse) record on the ``agent_audio`` logger: a fault logged instead of raised."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Barge:
    """One interrupt that stopped something: the turns it hit and the budget they have left."""

    turns: list[Turn]
    played_at_call: int
    fade_samples: int
    frames_at_call: int


class TrackMachine(RuleBasedStateMachine):
    channels = 1
    max_queued: float | None = None

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.errors = ErrorRecords()
        logging.getLogger("agent_audio").addHandler(self.errors)
        self.track = self.make_track()
        self.finished: Counter[int] = Counter()
        self.interrupts: list[Interrupted] = []
        self.track.on("turn_finished", self._on_finished)
        self.track.on("interrupted", self.interrupts.append)
        self.turns: dict[int, Turn] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.barges: list[Barge] = []
        self.pts = 0
        self.odd: bytes = b""
        self.stopped = False

    def make_track(self) -> AgentAudioTrack:
        return AgentAudioTrack(clock=self.clock, channels=self.channels, max_queued=self.max_queued)

    def _on_finished(self, event: TurnFinished) -> None:
        self.finished[event.turn_id] += 1

    def _remember(self) -> None:
        turn = self.track.current_turn
        if turn is not None:
            self.turns[turn.id] = turn

    def _spin(self, rounds: int = SPIN) -> None:
        """Run the loop for ``rounds`` iterations, or until every push task is done."""

        async def spin() -> None:
            for _ in range(rounds):
                await asyncio.sleep(0)
                self._remember()  # a push may start a turn; note it before another does
                if all(task.done() for task in self.tasks):
                    break

        self.loop.run_until_complete(spin())
        self._reap()

    def _reap(self) -> None:
        """Collect finished push tasks: only the documented errors may come out of them."""
        keep = []
        for task in self.tasks:
            if not task.done():
                keep.append(task)
                continue
            exc = task.exception()
            if exc is None:
                continue
            if isinstance(exc, TrackClosedError):
                assert self.stopped, exc
            elif isinstance(exc, TurnClosedError):
                self.odd = b""
            else:
                raise exc
        self.tasks = keep

    def _start_push(self, coro: Coroutine[Any, Any, None], turn: Turn | None) -> None:
        async def run() -> None:
            try:
                await coro
            except TurnClosedError:
                assert turn is not None and turn.ended, turn  # only an ended turn refuses a push
                raise

        self.tasks.append(self.loop.create_task(run()))

    @rule()
    def start_turn(self) -> None:
        if self.stopped:
            with pytest.raises(TrackClosedError):
                self.track.start_turn()
            return
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
        self._push(self.track.push(data, turn=turn, sample_rate=None if kind == "frame" else rate), turn)

    @rule(seconds=st.sampled_from([0.3, 0.6, 1.2]), explicit=st.booleans(), rate=st.sampled_from([24000, 48000]))
    def long_push(self, seconds: float, explicit: bool, rate: int) -> None:
        """A push of several 0.25 s slices, left running: the next steps race it."""
        data = np.full(round(seconds * rate), 0.25, np.float32)
        turn = self.track.current_turn if explicit else None
        self._push(self.track.push(data, sample_rate=rate, turn=turn), turn, rounds=1)

    def _push(self, coro: Coroutine[Any, Any, None], turn: Turn | None, rounds: int = SPIN) -> None:
        if self.stopped:
            with pytest.raises(TrackClosedError):
                self.loop.run_until_complete(coro)
            return
        self._start_push(coro, turn)
        self._spin(rounds)

    @rule()
    def end_turn(self) -> None:
        self.track.end_turn()  # after stop(): a no-op
        self.odd = b""

    @rule()
    def pause(self) -> None:
        self.track.pause()
        assert self.track.is_paused or self.stopped

    @rule()
    def resume(self) -> None:
        self.track.resume()
        assert not self.track.is_paused

    @rule()
    def interrupt(self) -> None:
        self._interrupt()

    @rule(
        seconds=st.sampled_from([0.1, 0.5]),
        before=st.integers(1, 4),
        after=st.integers(0, 4),
        pause=st.booleans(),
    )
    def barge_in(self, seconds: float, before: int, after: int, pause: bool) -> None:
        """Speech, a few frames of it, an interrupt, a few more frames, and maybe a pause during the fade."""
        self._push(self.track.push(np.full(round(seconds * 24000), 0.5, np.float32), sample_rate=24000), None)
        self.recv(before)
        barges = len(self.barges)
        self._interrupt()
        self.recv(after)
        if not pause:
            return
        if len(self.barges) > barges and self.barges[-1].fade_samples > after * self.track.frame_samples:
            event("pause during a fade")
        self.pause()

    def _interrupt(self) -> None:
        self._remember()
        before = {turn.id: turn.stats.played_samples for turn in self.turns.values()}
        frames = self.track.metrics().frames_sent
        seen = len(self.interrupts)
        self.track.interrupt()  # outside a running loop: its event is emitted at once
        self.odd = b""
        turn = self.track.current_turn
        assert turn is None or turn.interrupted or turn.finished
        for interrupted in self.interrupts[seen:]:
            missing = [i for i in interrupted.turn_ids if i not in self.turns]
            assert not missing, f"the machine lost track of turns {missing}"
            hit = [self.turns[i] for i in interrupted.turn_ids]
            assert all(t.interrupted for t in hit)
            if interrupted.fade_samples:
                event("interrupt with a fade")
            self.barges.append(Barge(hit, sum(before[t.id] for t in hit), interrupted.fade_samples, frames))

    @rule(frames=st.integers(1, 25))
    def recv(self, frames: int) -> None:
        if self.stopped:
            with pytest.raises(MediaStreamError):
                self.loop.run_until_complete(self.track.recv())
            return
        for _ in range(frames):
            frame = self.loop.run_until_complete(self.track.recv())
            self.check_wire(assert_frame(frame, self.track, pts=self.pts))
            self.pts += self.track.frame_samples
            self._remember()
        self._reap()

    def check_wire(self, samples: np.ndarray) -> None:
        """What the wire must carry, beyond the format (subclasses)."""

    @precondition(lambda self: self.track.metrics().frames_sent > 0)
    @rule(seconds=st.floats(0.0, 0.5))
    def stall(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(draw=st.integers(0, 3), racing=st.booleans(), rounds=st.integers(1, 3))
    def stop(self, draw: int, racing: bool, rounds: int) -> None:
        """Stop the track at any point (drawn a quarter as often as the other rules), maybe racing a push."""
        if draw and not self.stopped:
            return
        if racing and not self.stopped:  # a push started and not complete when stop() comes
            self._push(self.track.push(np.full(28800, 0.25, np.float32), sample_rate=24000), None, rounds=rounds)
        self._remember()
        if self.tasks:
            event("stop() with a push under way")
        self.track.stop()
        self.stopped = True
        self.check_stopped()

    def check_stopped(self) -> None:
        """After stop(): every push returns, every turn finished once, every wait returns."""
        self._spin(50)
        assert not self.tasks, f"pushes still under way after stop(): {self.tasks}"
        for turn in self.turns.values():
            assert turn.finished and self.finished[turn.id] == 1, (turn, self.finished)

        async def waits() -> None:
            await asyncio.wait_for(asyncio.gather(*(t.wait_for_playout() for t in self.turns.values())), 5.0)

        self.loop.run_until_complete(waits())
        assert self.track.metrics().queued_samples == 0

    @invariant()
    def samples_are_conserved(self) -> None:
        self._remember()
        queued = 0
        for turn in self.turns.values():
            s = turn.stats
            assert s.pushed_samples == s.played_samples + s.dropped_samples + s.queued_samples, s
            assert s.finished == turn.finished and s.interrupted == turn.interrupted
            queued += s.queued_samples
        assert self.track.metrics().queued_samples == queued

    @invariant()
    def turn_ids_are_all_known(self) -> None:
        if self.turns:
            assert sorted(self.turns) == list(range(1, max(self.turns) + 1)), "the machine lost a turn"

    @invariant()
    def one_finished_event_per_finished_turn(self) -> None:
        done_before = {turn.id for turn in self.turns.values() if turn.finished}
        if not self.stopped:  # deliver deferred events (push tasks may move on meanwhile)
            for _ in range(2):
                self.loop.run_until_complete(asyncio.sleep(0))
        for turn in self.turns.values():
            if turn.id in done_before:
                assert self.finished[turn.id] == 1, (turn, self.finished)
            elif not turn.finished:
                assert self.finished[turn.id] == 0, (turn, self.finished)
            else:
                assert self.finished[turn.id] <= 1, (turn, self.finished)

    @invariant()
    def nothing_interrupted_is_heard_after_its_fade(self) -> None:
        frames = self.track.metrics().frames_sent
        for barge in self.barges:
            played = sum(t.stats.played_samples for t in barge.turns)
            assert played <= barge.played_at_call + barge.fade_samples, (barge, played)
            fade_frames = math.ceil(barge.fade_samples / self.track.frame_samples) + 1
            if frames - barge.frames_at_call >= fade_frames and not self.tasks:
                if barge.fade_samples:
                    event("finished after a fade, checked")
                assert all(t.finished for t in barge.turns), ("unfinished after the fade", barge)

    @invariant()
    def no_fault_was_hidden(self) -> None:
        assert not self.errors.records, [r.getMessage() for r in self.errors.records]

    def teardown(self) -> None:
        try:
            if not self.stopped:
                self._remember()
                self.track.stop()
                self.stopped = True
                self.check_stopped()
        finally:
            logging.getLogger("agent_audio").removeHandler(self.errors)
            for task in self.tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))  # let cancelled tasks and sink feeders finish
            self.loop.close()


class StereoTrackMachine(TrackMachine):
    channels = 2


class BoundedTrackMachine(TrackMachine):
    """Pushes wait on ``max_queued`` (0.05 s): stop() and interrupt() must release them."""

    max_queued = 0.05


BED = 1000  # a constant bed: easy to recognise on the wire


class MixingTrackMachine(TrackMachine):
    def make_track(self) -> AgentAudioTrack:
        track = MixingAgentAudioTrack(clock=self.clock, channels=self.channels, max_queued=self.max_queued)
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
        track = self.tee_class(clock=self.clock, channels=self.channels, max_queued=self.max_queued)
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
TestBoundedTrackSequences = BoundedTrackMachine.TestCase
TestBoundedTrackSequences.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
TestMixingTrackSequences = MixingTrackMachine.TestCase
TestMixingTrackSequences.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestTeeTrackSequences = TeeTrackMachine.TestCase
TestTeeTrackSequences.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestTeeMixingTrackSequences = TeeMixingTrackMachine.TestCase
TestTeeMixingTrackSequences.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
