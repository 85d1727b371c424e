"""The barge-in policy (``BargeInPolicy``) over fake and real tracks, on the manual clock.

Guards, on scripted sequences:
- a short burst of speech (a cough the VAD fired on) pauses, then resumes after
  ``resume_after`` of silence, and the reply plays in full (played == pushed);
  a burst below ``onset`` changes nothing;
- speech lasting ``interrupt_after`` interrupts, and the reply never resumes afterwards;
- a reply paused before its first frame is not lost; a new turn started while the
  policy holds a pause stays paused until the decision, which then covers it;
- ``confirm()`` interrupts (also a short "No." already resumed), ``backchannel()``
  resumes; a late signal never cuts a newer reply;
- onset while the agent is idle is reported and does nothing; a stopped track is never
  called; a pause ended elsewhere (resume, the pause timeout) is reported;
- bad input raises ``InvalidAudioError`` naming expected and got.
And, over hundreds of random interleavings of VAD windows, signals, pushes, turns and
playout (hypothesis): an interrupted reply never plays again, a reply that was not
interrupted plays in full (played == pushed, nothing dropped), and every turn
finishes exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pyee import EventEmitter

from agent_audio import (
    AgentAudioTrack,
    BargeInAction,
    BargeInDecision,
    BargeInPolicy,
    BargeInReason,
    InvalidAudioError,
    Turn,
    TurnStats,
)
from agent_audio.testing import ManualClock

RAMP = 240  # samples of the track's 5 ms pause ramp at 48 kHz


def speech(seconds: float) -> np.ndarray:
    """Non-zero int16 mono audio at 48 kHz (the track format)."""
    return np.full(round(seconds * 48000), 1000, dtype=np.int16)


class Harness:
    """A real track on a manual clock, a policy on it, and what both reported."""

    def __init__(self, **options: Any) -> None:
        self.clock = ManualClock()
        self.track = AgentAudioTrack(clock=self.clock, fade_out=0.0)
        self.policy = BargeInPolicy(self.track, **options)
        self.decisions: list[BargeInDecision] = []
        self.finished: Counter[int] = Counter()
        self.policy.on("decision", self.decisions.append)
        self.track.on("turn_finished", lambda e: self.finished.update([e.turn_id]))

    async def play(self, seconds: float, probability: float | None = None) -> None:
        """Play ``seconds`` of frames; before each, feed ``probability`` stamped with the track's clock."""
        for _ in range(round(seconds / 0.02)):
            if probability is not None:
                self.policy.feed(probability, at=self.clock.now())
            await self.track.recv()
        await asyncio.sleep(0)  # deliver the track's scheduled events

    def actions(self) -> list[tuple[BargeInAction, BargeInReason]]:
        return [(d.action, d.reason) for d in self.decisions]


async def reply(h: Harness, seconds: float) -> Turn:
    turn = h.track.start_turn()
    await turn.push(speech(seconds))
    turn.end()
    return turn


async def test_short_burst_pauses_then_resumes_and_the_reply_plays_in_full() -> None:
    h = Harness()
    turn = await reply(h, 1.0)
    await h.play(0.2)
    await h.play(0.2, probability=0.9)  # 0.2 s of "speech": a cough the VAD fired on
    assert h.track.is_paused
    await h.play(0.5, probability=0.0)
    assert h.actions() == [
        (BargeInAction.PAUSE, BargeInReason.SPEECH_ONSET),
        (BargeInAction.RESUME, BargeInReason.SILENCE),
    ]
    assert h.decisions[1].speech_duration == pytest.approx(0.18)
    stats = await asyncio.wait_for(drain(h, turn), 1)
    assert stats.played_samples == stats.pushed_samples and not stats.interrupted
    assert h.finished == {turn.id: 1}


async def test_burst_below_onset_changes_nothing() -> None:
    h = Harness()
    turn = await reply(h, 0.6)
    await h.play(0.2)
    await h.play(0.4, probability=0.45)  # a cough that Silero scores under onset
    assert h.decisions == [] and not h.track.is_paused
    stats = await drain(h, turn)
    assert stats.played_samples == stats.pushed_samples


async def test_speech_lasting_interrupts_and_the_reply_never_resumes() -> None:
    h = Harness()
    turn = await reply(h, 3.0)
    await h.play(0.2)
    await h.play(0.6, probability=0.9)
    assert h.actions() == [
        (BargeInAction.PAUSE, BargeInReason.SPEECH_ONSET),
        (BargeInAction.INTERRUPT, BargeInReason.SPEECH_LASTED),
    ]
    assert h.decisions[1].speech_duration == pytest.approx(0.5)
    played = turn.stats.played_samples
    await h.play(1.0, probability=0.0)  # the user falls silent: nothing resumes
    assert h.actions()[2:] == []
    stats = await drain(h, turn)
    assert stats.interrupted and stats.played_samples == played
    assert stats.played_samples + stats.dropped_samples == stats.pushed_samples
    assert h.finished == {turn.id: 1}


async def test_a_reply_paused_before_its_first_frame_is_not_lost() -> None:
    h = Harness()
    turn = h.track.start_turn()
    h.policy.feed(0.9, at=0.0)  # the user speaks before the agent's first frame
    assert h.track.is_paused
    await turn.push(speech(0.5))  # TTS keeps pushing meanwhile
    turn.end()
    await h.play(0.3, probability=0.0)
    assert turn.stats.played_samples == 0
    await h.play(0.2, probability=0.0)
    assert h.actions() == [
        (BargeInAction.PAUSE, BargeInReason.SPEECH_ONSET),
        (BargeInAction.RESUME, BargeInReason.SILENCE),
    ]
    stats = await drain(h, turn)
    assert stats.played_samples == stats.pushed_samples == 24000 and stats.dropped_samples == 0


async def test_interrupt_before_the_first_frame_drops_the_reply() -> None:
    h = Harness()
    turn = h.track.start_turn()
    await turn.push(speech(0.5))
    h.policy.feed(0.9, at=0.0)
    await h.play(0.6, probability=0.9)
    assert h.actions()[-1] == (BargeInAction.INTERRUPT, BargeInReason.SPEECH_LASTED)
    stats = await drain(h, turn)
    assert stats.interrupted and stats.played_samples + stats.dropped_samples == stats.pushed_samples


@pytest.mark.parametrize("outcome", ["resume", "interrupt"])
async def test_a_new_turn_while_paused_stays_paused_until_the_decision(outcome: str) -> None:
    h = Harness()
    first = await reply(h, 0.5)
    await h.play(0.1)
    await h.play(0.1, probability=0.9)
    second = await reply(h, 0.5)  # the agent starts its next reply while the user speaks
    await h.play(0.1, probability=0.9)
    assert h.track.is_paused and second.stats.played_samples == 0
    if outcome == "resume":
        await h.play(0.5, probability=0.0)
        assert h.actions()[-1] == (BargeInAction.RESUME, BargeInReason.SILENCE)
    else:
        await h.play(0.4, probability=0.9)
        assert h.actions()[-1] == (BargeInAction.INTERRUPT, BargeInReason.SPEECH_LASTED)
    for turn in (first, second):
        stats = await drain(h, turn)
        assert stats.interrupted is (outcome == "interrupt")
        if outcome == "resume":
            assert stats.played_samples == stats.pushed_samples
    assert h.finished == {first.id: 1, second.id: 1}


async def test_backchannel_resumes_at_once_and_the_rest_of_the_segment_changes_nothing() -> None:
    h = Harness()
    turn = await reply(h, 2.0)
    await h.play(0.2)
    await h.play(0.1, probability=0.9)
    assert h.policy.backchannel().action is BargeInAction.RESUME
    assert not h.track.is_paused
    await h.play(0.8, probability=0.9)  # "uh-huh, uh-huh" goes on: still a backchannel
    assert h.actions() == [
        (BargeInAction.PAUSE, BargeInReason.SPEECH_ONSET),
        (BargeInAction.RESUME, BargeInReason.BACKCHANNEL),
    ]
    stats = await drain(h, turn)
    assert stats.played_samples == stats.pushed_samples


async def test_confirm_interrupts_a_pending_pause() -> None:
    h = Harness()
    turn = await reply(h, 2.0)
    await h.play(0.2)
    await h.play(0.1, probability=0.9)
    decision = h.policy.confirm()
    assert (decision.action, decision.reason, decision.turn_id) == (
        BargeInAction.INTERRUPT,
        BargeInReason.CONFIRMED,
        turn.id,
    )
    await h.play(1.0, probability=0.0)
    assert len(h.decisions) == 2  # nothing resumes after the silence
    assert (await drain(h, turn)).interrupted


async def test_confirm_after_a_short_no_was_resumed_interrupts_that_reply() -> None:
    h = Harness()
    turn = await reply(h, 3.0)
    await h.play(0.2)
    await h.play(0.3, probability=0.9)  # "No."
    await h.play(0.5, probability=0.0)  # resumed as a false interruption
    assert h.actions()[-1] == (BargeInAction.RESUME, BargeInReason.SILENCE)
    assert h.policy.confirm().action is BargeInAction.INTERRUPT  # the STT's partial arrives: it was "No."
    assert (await drain(h, turn)).interrupted


async def test_a_late_signal_never_cuts_a_newer_reply() -> None:
    h = Harness()
    first = await reply(h, 2.0)
    await h.play(0.2)
    await h.play(0.6, probability=0.9)
    await h.play(0.5, probability=0.0)
    await drain(h, first)
    second = await reply(h, 1.0)
    await h.play(0.1)
    assert h.policy.confirm().reason is BargeInReason.STALE_SIGNAL
    assert h.policy.backchannel().reason is BargeInReason.NOTHING_PENDING
    stats = await drain(h, second)
    assert stats.played_samples == stats.pushed_samples


async def test_onset_while_idle_is_reported_and_a_reply_started_in_that_speech_plays() -> None:
    h = Harness()
    await h.play(0.1, probability=0.9)
    assert h.actions() == [(BargeInAction.IGNORED, BargeInReason.AGENT_IDLE)]
    turn = await reply(h, 0.4)
    await h.play(0.6, probability=0.9)
    assert not h.track.is_paused and len(h.decisions) == 1
    stats = await drain(h, turn)
    assert stats.played_samples == stats.pushed_samples


async def test_a_pause_ended_elsewhere_is_reported_and_not_decided_again() -> None:
    h = Harness(pause_timeout=None)
    turn = await reply(h, 2.0)
    await h.play(0.2)
    await h.play(0.1, probability=0.9)
    h.track.resume()  # the agent's own logic decided
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert h.actions()[-1] == (BargeInAction.IGNORED, BargeInReason.DECIDED_ELSEWHERE)
    await h.play(0.8, probability=0.9)
    assert len(h.decisions) == 2 and not turn.stats.interrupted


async def test_the_pause_times_out_into_a_resume_when_the_vad_stops_feeding() -> None:
    h = Harness(pause_timeout=1.0)
    turn = await reply(h, 2.0)
    await h.play(0.2)
    await h.play(0.1, probability=0.9)
    await h.play(1.0)  # no more windows: the VAD task died
    assert not h.track.is_paused
    await asyncio.sleep(0)
    assert h.actions()[-1] == (BargeInAction.IGNORED, BargeInReason.DECIDED_ELSEWHERE)
    stats = await drain(h, turn)
    assert stats.played_samples == stats.pushed_samples


async def test_a_stopped_track_is_never_called() -> None:
    track = FakeTrack()
    policy = BargeInPolicy(track)
    track.speaking = True
    policy.feed(0.9, at=0.0)
    track.readyState = "ended"
    assert policy.feed(0.9, at=0.6) is not None  # would interrupt; reports instead
    assert policy.confirm().reason is BargeInReason.TRACK_STOPPED
    assert policy.backchannel().reason is BargeInReason.TRACK_STOPPED
    policy.feed(0.0, at=1.0)
    policy.feed(0.0, at=1.5)  # the segment ends
    assert policy.feed(0.9, at=2.0) == BargeInDecision(BargeInAction.IGNORED, BargeInReason.TRACK_STOPPED, 2.0, 1, 0.0)
    assert track.calls == ["pause"]


async def test_fake_track_call_order_for_a_confirmed_barge_in_racing_the_silence() -> None:
    track = FakeTrack()
    policy = BargeInPolicy(track, pause_timeout=None)
    track.speaking = True
    policy.feed(0.9, at=0.0)
    policy.feed(0.0, at=0.1)
    policy.confirm(at=0.2)  # the STT partial lands during the silence that would resume
    for i in range(3, 20):
        policy.feed(0.0, at=i / 10)
    assert track.calls == ["pause", "interrupt"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.feed(1.5, at=0.0), "expected a probability in [0, 1], got 1.5"),
        (lambda p: p.feed(float("nan"), at=0.0), "expected a probability in [0, 1], got nan"),
        (lambda p: (p.feed(0.0, at=1.0), p.feed(0.0, at=0.5)), "expected at >= 1.0 seconds"),
    ],
)
async def test_bad_input_raises(call: Callable[[BargeInPolicy], object], message: str) -> None:
    policy = BargeInPolicy(FakeTrack())
    with pytest.raises(InvalidAudioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(policy)


@pytest.mark.parametrize(
    "options",
    [{"onset": 0.3, "offset": 0.5}, {"interrupt_after": -1.0}, {"resume_after": float("inf")}, {"pause_timeout": 0}],
)
async def test_bad_options_raise(options: dict[str, float]) -> None:
    with pytest.raises(InvalidAudioError, match="expected"):
        BargeInPolicy(FakeTrack(), **options)


async def test_booleans_are_accepted_as_probabilities() -> None:
    track = FakeTrack()
    track.speaking = True
    policy = BargeInPolicy(track)
    assert policy.feed(True, at=0.0) is not None and policy.pending
    assert policy.feed(False, at=0.5) is None
    assert policy.feed(False, at=0.9) is not None and track.calls == ["pause", "resume"]


# -- random interleavings --------------------------------------------------------

Op = tuple[str, float, int]
PROBABILITIES = st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.9, 1.0])
OPS = st.one_of(
    st.tuples(st.just("feed"), PROBABILITIES, st.just(0)),  # a window with no playout in between
    st.tuples(st.just("talk"), PROBABILITIES, st.integers(1, 40)),  # n frames, each after a window
    st.tuples(st.just("recv"), st.just(0.0), st.integers(1, 8)),
    st.tuples(st.just("push"), st.sampled_from([0.01, 0.02, 0.05, 0.2, 1.0]), st.just(0)),
    st.tuples(
        st.sampled_from(["start_turn", "end_turn", "interrupt", "confirm", "backchannel"]), st.just(0.0), st.just(0)
    ),
)


async def run_random(ops: list[Op]) -> None:
    h = Harness(pause_timeout=None)  # no safety net: the policy alone must release every pause
    turns: list[Turn] = []
    ended: set[int] = set()
    frozen: dict[int, int] = {}  # interrupted turn id -> its played samples when first seen interrupted

    def on_decision(decision: BargeInDecision) -> None:
        current = h.track.current_turn
        if decision.action is BargeInAction.RESUME and current is not None:
            assert not current.stats.interrupted, f"resumed interrupted turn {current.id}"
        if decision.action is BargeInAction.PAUSE and current is not None and current.stats.played_samples == 0:
            event("pause before the first frame")

    def check() -> None:
        for turn in turns:
            stats = turn.stats
            assert stats.played_samples + stats.dropped_samples + stats.queued_samples == stats.pushed_samples
            if stats.interrupted:
                # fade_out=0: at most the rest of a pause ramp (5 ms) plays after the interrupt
                assert stats.played_samples - frozen.setdefault(turn.id, stats.played_samples) <= RAMP

    def new_turn() -> Turn:
        if turns:
            ended.add(turns[-1].id)
        turns.append(h.track.start_turn())
        return turns[-1]

    h.policy.on("decision", on_decision)
    for name, value, frames in ops:
        if name == "feed":
            h.policy.feed(value, at=h.clock.now())
        elif name == "talk":
            await h.play(frames * 0.02, probability=value)
        elif name == "recv":
            await h.play(frames * 0.02)
        elif name == "start_turn":
            new_turn()
        elif name == "push":
            turn = turns[-1] if turns and turns[-1].id not in ended else new_turn()
            await turn.push(speech(value))  # to an interrupted turn: dropped and counted
        elif name == "end_turn":
            if turns:
                ended.add(turns[-1].id)
            h.track.end_turn()
        elif name == "interrupt":
            h.track.interrupt()  # the agent's own logic, racing the policy
        elif name == "confirm":
            h.policy.confirm()
        else:
            h.policy.backchannel()
        await asyncio.sleep(0)
        check()
    h.track.end_turn()
    await h.play(1.0, probability=0.0)  # the user falls silent: any pending pause resolves
    assert not h.track.is_paused
    for turn in turns:
        await drain(h, turn)
        check()
    for turn in turns:
        stats = turn.stats
        assert h.finished[turn.id] == 1, f"turn {turn.id} finished {h.finished[turn.id]} times"
        if not stats.interrupted:
            assert stats.played_samples == stats.pushed_samples and stats.dropped_samples == 0, stats
    assert set(h.finished) == {t.id for t in turns}
    for decision in h.decisions:  # coverage, shown by --hypothesis-show-statistics
        event(f"{decision.action.value}: {decision.reason.value}")
    h.track.stop()


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, min_size=3, max_size=80))
def test_random_interleavings_keep_every_reply(ops: list[Op]) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run_random(ops))
    finally:
        loop.close()


# -- helpers ---------------------------------------------------------------------


async def drain(h: Harness, turn: Turn) -> TurnStats:
    """Play until ``turn`` has finished (bounded), return its final stats."""
    for _ in range(2000):
        if turn.stats.finished:
            await asyncio.sleep(0)
            return await turn.wait_for_playout()
        await h.track.recv()
    raise AssertionError(f"turn {turn.id} did not finish: {turn.stats}")


class FakeTrack(EventEmitter):
    """The policy's view of a track, recording each call; calling it after stop fails the test."""

    def __init__(self) -> None:
        super().__init__()
        self.readyState = "live"
        self.is_paused = False
        self.speaking = False
        self.calls: list[str] = []
        self._turn = FakeTurn()

    @property
    def is_speaking(self) -> bool:
        return self.speaking and not self.is_paused

    @property
    def current_turn(self) -> FakeTurn:
        return self._turn

    def _call(self, name: str) -> None:
        assert self.readyState == "live", f"{name}() called on a stopped track"
        self.calls.append(name)

    def pause(self, *, timeout: float | None = None, on_timeout: Literal["resume", "interrupt"] = "resume") -> None:
        self._call("pause")
        self.is_paused = True

    def resume(self) -> None:
        self._call("resume")
        self.is_paused = False

    def interrupt(self) -> None:
        self._call("interrupt")
        self.is_paused = False
        self._turn.interrupted = True


class FakeTurn:
    id = 1

    def __init__(self) -> None:
        self.interrupted = False

    @property
    def stats(self) -> TurnStats:
        return TurnStats(1, 48000, 0, 0, 0, 0, self.interrupted, False, None)
