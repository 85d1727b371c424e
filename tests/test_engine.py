"""The playout engine (agent_audio._engine), sample-exact.

Every call that can report something returns it (``render`` a :class:`Rendered` value,
``end_turn``/``settle``/``push_done``/``close`` their events, ``interrupt`` an
:class:`InterruptResult`); the :class:`Rig` below collects those events in order.

Guards:
- pause/resume: ramp down over the queued samples from the gain heard now, hold without
  consuming, ramp up from the next sample; nothing lost, nothing repeated; a pause while
  nothing is audible holds at once (no ramp, no blip);
- interrupt: the next ``fade_samples`` queued samples play under the fade, ending on exact
  zero, the rest is dropped and counted; ``fade_samples=0`` cuts at the frame boundary;
  while paused it drops at once and ends the pause; during a fade it does not restart it;
  a new turn's audio follows the fade tail at full gain; any channel count;
- interrupt while the listener hears no voice (before the turn's first frame, while held,
  during an underrun, or when the next queued samples belong to a turn not played yet)
  drops everything at once: no fade, nothing of it played, no STARTED for it;
- pause during an interrupt's fade: the fade tail plays exactly as without the pause, the
  interrupted turn finishes, later audio is held until resume, which ramps it up;
- ``full_level_end``: the played count at which full level ended for an interrupted turn;
- turns: ``pushed == played + dropped + queued``; exactly one FINISHED per turn, only
  once synthesis is complete, no push is under way and the audio has played (or after
  the fade tail); ``close()`` finishes every turn even with pushes under way;
- ``Rendered``: ``voiced``, ``turn_id`` and a ``peak`` bounding ``abs(samples)``;
- underruns: counted once per episode, only mid-turn after the first sample played.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from agent_audio._engine import EngineEvent, EventKind, InterruptResult, PlayoutEngine, Rendered, TurnState
from agent_audio._gain import apply_gain, fade_gains, ramp_down, ramp_up
from agent_audio._queue import UNKNOWN_PEAK

from helpers import ramp_signal

N = 960  # one 20 ms frame at 48 kHz
R = 240  # 5 ms ramp at 48 kHz
F = 9600  # 200 ms fade at 48 kHz

Block = npt.NDArray[np.int16]


class Rig:
    """A :class:`PlayoutEngine` and every event its calls returned, in order."""

    def __init__(self, channels: int = 1, fade: int = F) -> None:
        self.engine = PlayoutEngine(channels=channels, fade_samples=fade, ramp_samples=R)
        self.events: list[EngineEvent] = []

    def _log(self, events: Sequence[EngineEvent]) -> Sequence[EngineEvent]:
        self.events.extend(events)
        return events

    def turn(self) -> TurnState:
        return self.engine.start_turn()

    def push(self, turn: TurnState, samples: Block) -> bool:
        return self.engine.enqueue(turn, samples)

    def frame(self) -> Rendered:
        rendered = self.engine.render(N)
        check_rendered(rendered)
        self._log(rendered.events)
        return rendered

    def render(self, frames: int) -> Block:
        return np.concatenate([self.frame().samples for _ in range(frames)])

    def pause(self) -> bool:
        return self.engine.pause()

    def resume(self) -> bool:
        return self.engine.resume()

    def interrupt(self, *, cut: bool = False) -> InterruptResult:
        result = self.engine.interrupt(cut=cut)
        self._log(result.events)
        return result

    def close(self) -> InterruptResult:
        result = self.engine.close()
        self._log(result.events)
        return result

    def end_turn(self, turn: TurnState) -> Sequence[EngineEvent]:
        return self._log(self.engine.end_turn(turn))

    def settle(self, turn: TurnState) -> Sequence[EngineEvent]:
        return self._log(self.engine.settle(turn))

    def push_started(self, turn: TurnState) -> None:
        self.engine.push_started(turn)

    def push_done(self, turn: TurnState) -> Sequence[EngineEvent]:
        return self._log(self.engine.push_done(turn))

    def kinds(self) -> list[tuple[EventKind, int]]:
        """The events collected since the last call, as (kind, turn id)."""
        events, self.events = self.events, []
        return [(e.kind, e.turn_id) for e in events]

    def conserved(self, *turns: TurnState) -> None:
        for t in turns:
            assert t.pushed == t.played + t.dropped + self.engine.queued_for(t), t


def check_rendered(rendered: Rendered) -> None:
    """What every Rendered value promises: its peak bounds the block, voice iff a turn id."""
    samples = rendered.samples
    assert samples.dtype == np.int16 and samples.shape[0] == N
    top = int(np.abs(samples.astype(np.int32)).max())
    assert top <= rendered.peak, (top, rendered.peak)
    assert (rendered.turn_id is not None) == rendered.voiced
    if not rendered.voiced:
        assert not samples.any()


def test_plays_pushed_audio_exactly_then_silence() -> None:
    e = Rig()
    t = e.turn()
    sig = ramp_signal(3 * N + 100)
    e.push(t, sig)
    out = e.render(5)
    assert np.array_equal(out[: len(sig)], sig)
    assert not out[len(sig) :].any()
    assert t.played == len(sig)
    e.conserved(t)


def test_pause_resume_loses_and_repeats_nothing() -> None:
    e = Rig()
    t = e.turn()
    sig = ramp_signal(10 * N)
    e.push(t, sig)
    played = e.render(2)
    assert e.pause()
    assert not e.pause()  # second pause is a no-op
    pause_frame = e.frame().samples
    assert np.array_equal(pause_frame[:R], apply_gain(sig[2 * N : 2 * N + R], ramp_down(1.0, R)))
    assert not pause_frame[R:].any()
    held = e.render(5)
    assert not held.any()
    assert t.played == 2 * N + R  # the clock ran on, the queue did not move
    assert e.resume()
    assert not e.resume()
    resume_frame = e.frame().samples
    start = 2 * N + R
    assert np.array_equal(resume_frame[:R], apply_gain(sig[start : start + R], ramp_up(0.0, R)))
    assert np.array_equal(resume_frame[R:], sig[start + R : start + N])
    rest = e.render(10)
    assert np.array_equal(rest[: len(sig) - start - N], sig[start + N :])
    assert np.array_equal(played, sig[: 2 * N])
    assert t.played == len(sig)
    e.conserved(t)


def test_pause_and_resume_before_a_frame_lose_nothing_and_fade_in() -> None:
    """Changed by issue 15: a pause with nothing audible holds at once, so resume ramps up from silence."""
    e = Rig()
    t = e.turn()
    sig = ramp_signal(3 * N)
    e.push(t, sig)
    e.pause()
    e.resume()
    out = e.render(3)
    assert np.array_equal(out[:R], apply_gain(sig[:R], ramp_up(0.0, R)))
    assert np.array_equal(out[R:], sig[R:])
    assert t.played == 3 * N


def test_pause_when_nothing_is_audible_holds_at_once() -> None:
    """Issue 15: no ramp of a reply nobody heard yet (no blip), and nothing of it is consumed."""
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(5 * N))
    e.pause()
    assert not e.render(3).any()
    assert t.played == 0 and e.kinds() == []
    e.conserved(t)


def test_pause_when_idle_holds_audio_pushed_later() -> None:
    e = Rig()
    t = e.turn()
    e.pause()
    e.push(t, ramp_signal(2 * N))
    assert not e.render(3).any()
    assert t.played == 0
    e.resume()
    out = e.frame().samples
    assert np.array_equal(out[:R], apply_gain(ramp_signal(R), ramp_up(0.0, R)))
    e.conserved(t)


def test_interrupt_fades_exactly_then_drops_the_rest() -> None:
    e = Rig()
    t = e.turn()
    sig = ramp_signal(100 * N)
    e.push(t, sig)
    e.render(5)
    e.kinds()
    result = e.interrupt()
    assert result.turns == [t] and result.fade_samples == F and result.dropped == len(sig) - 5 * N - F
    assert t.interrupted and not t.finished and t.full_level_end == 5 * N
    e.conserved(t)
    out = e.render(F // N + 2)
    expected = apply_gain(sig[5 * N : 5 * N + F], fade_gains(0, F, F))
    assert np.array_equal(out[:F], expected)
    assert out[F - 1].tolist() == [0]
    assert not out[F:].any()
    assert t.finished and t.played == 5 * N + F and t.dropped == len(sig) - 5 * N - F
    assert e.kinds() == [(EventKind.FINISHED, t.id)]
    e.conserved(t)


def test_fade_zero_cuts_at_the_next_frame() -> None:
    e = Rig(fade=0)
    t = e.turn()
    e.push(t, ramp_signal(10 * N))
    e.render(1)
    result = e.interrupt()
    assert t.finished and t.dropped == 9 * N
    assert [(ev.kind, ev.turn_id) for ev in result.events] == [(EventKind.FINISHED, t.id)]
    assert not e.render(2).any()


def test_short_queue_fades_over_what_is_queued_and_ends_on_zero() -> None:
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(N + 500))
    e.render(1)
    e.interrupt()
    out = e.frame().samples
    assert np.array_equal(out[:500], apply_gain(ramp_signal(500, start=N + 1), fade_gains(0, 500, 500)))
    assert out[499, 0] == 0
    assert not e.push(t, ramp_signal(N))  # a TTS task still running after the barge-in
    assert t.dropped == N
    e.conserved(t)


def test_interrupt_while_paused_drops_at_once_and_ends_the_pause() -> None:
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(10 * N))
    e.render(1)
    e.pause()
    e.render(2)
    result = e.interrupt()
    assert result.fade_samples == 0 and not e.engine.paused
    assert t.finished and t.played == N + R and t.dropped == 9 * N - R
    assert t.full_level_end == N  # full level ended where the pause ramp began
    nxt = e.turn()
    e.push(nxt, ramp_signal(N))
    assert np.array_equal(e.frame().samples, ramp_signal(N))  # plays without resume()
    e.conserved(t, nxt)


def test_interrupt_during_pause_ramp_keeps_only_the_ramp() -> None:
    """The window is the rest of the pause ramp (the voice was audible: one frame played first)."""
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(10 * N))
    e.render(1)
    e.pause()
    result = e.interrupt()
    assert result.fade_samples == R and t.full_level_end == N
    out = e.frame().samples
    assert np.array_equal(out[:R], apply_gain(ramp_signal(R, start=N + 1), ramp_down(1.0, R)))
    assert not out[R:].any()
    assert t.finished and t.played == N + R


def test_interrupt_before_the_first_frame_drops_at_once_silently() -> None:
    """Issue 15 item 3: nothing of a reply nobody heard is played, faded or reported as started."""
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(50 * N))
    result = e.interrupt()
    assert result.turns == [t] and result.fade_samples == 0 and result.dropped == 50 * N
    assert t.finished and t.played == 0 and t.full_level_end == 0
    assert e.kinds() == [(EventKind.FINISHED, t.id)]
    assert not e.render(3).any()
    assert e.kinds() == []  # no STARTED, no UNDERRUN
    e.conserved(t)


def test_pause_then_interrupt_before_anything_played_gives_no_blip() -> None:
    """Issue 15 item 3: the old 5 ms full-gain blip of the pause ramp is gone."""
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(50 * N))
    e.pause()
    result = e.interrupt()
    assert result.fade_samples == 0 and not e.engine.paused
    assert not e.render(3).any()
    assert t.finished and t.played == 0 and t.dropped == 50 * N
    assert e.kinds() == [(EventKind.FINISHED, t.id)]


def test_interrupt_during_an_underrun_drops_at_once() -> None:
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(N))
    e.render(2)  # the second frame is silence: the listener hears no voice now
    e.push(t, ramp_signal(5 * N))
    result = e.interrupt()
    assert result.fade_samples == 0 and result.dropped == 5 * N
    assert t.finished and t.played == N
    assert not e.render(2).any()
    e.conserved(t)


def test_interrupt_when_the_next_samples_belong_to_an_unplayed_turn_drops_at_once() -> None:
    e = Rig()
    a = e.turn()
    e.push(a, ramp_signal(N))
    e.end_turn(a)
    b = e.turn()
    e.push(b, ramp_signal(5 * N, start=2000))
    e.render(1)  # a played out exactly at the frame boundary; b is next and unheard
    assert a.finished
    result = e.interrupt()
    assert result.turns == [b] and result.fade_samples == 0 and b.played == 0
    assert not e.render(2).any()
    assert e.kinds() == [(EventKind.STARTED, a.id), (EventKind.FINISHED, a.id), (EventKind.FINISHED, b.id)]


def test_interrupt_during_fade_does_not_restart_it() -> None:
    once, twice = Rig(), Rig()
    outs = []
    for e, repeat in ((once, False), (twice, True)):
        t = e.turn()
        e.push(t, ramp_signal(50 * N))
        e.render(1)
        e.interrupt()
        first = e.frame().samples
        if repeat:
            assert e.interrupt().turns == []
        outs.append(np.concatenate([first, e.render(12)]))
    assert np.array_equal(outs[0], outs[1])


def test_new_turn_follows_fade_tail_at_full_gain() -> None:
    e = Rig()
    old = e.turn()
    e.push(old, ramp_signal(50 * N))
    e.render(1)
    e.interrupt()
    new = e.turn()
    sig = ramp_signal(2 * N, start=5000)
    e.push(new, sig)
    out = e.render(F // N + 2)
    assert np.array_equal(out[F : F + 2 * N], sig)
    assert new.played == 2 * N and not new.interrupted
    e.conserved(old, new)


def test_new_turn_after_a_silent_drop_plays_at_once_at_full_gain() -> None:
    e = Rig()
    old = e.turn()
    e.push(old, ramp_signal(50 * N))
    e.interrupt()
    new = e.turn()
    sig = ramp_signal(2 * N, start=5000)
    e.push(new, sig)
    assert np.array_equal(e.render(2), sig)
    e.conserved(old, new)


def test_interrupt_during_fade_still_stops_a_newer_turn() -> None:
    e = Rig()
    old = e.turn()
    e.push(old, ramp_signal(50 * N))
    e.render(1)
    e.interrupt()
    new = e.turn()
    e.push(new, ramp_signal(2 * N))
    result = e.interrupt()
    assert result.turns == [new] and result.fade_samples == F and result.dropped == 2 * N
    assert new.played == 0 and new.full_level_end == 0
    e.render(F // N + 1)
    assert old.finished and new.finished and new.played == 0
    assert (EventKind.STARTED, new.id) not in e.kinds()
    e.conserved(old, new)


def test_pause_during_fade_lets_the_fade_finish_then_holds() -> None:
    """Issue 15 item 2: the fade tail plays as without the pause, the turn finishes, later audio waits."""
    reference = Rig()
    t = reference.turn()
    sig = ramp_signal(50 * N)
    reference.push(t, sig)
    reference.render(1)
    reference.interrupt()
    expected = reference.render(F // N + 1)

    e = Rig()
    old = e.turn()
    e.push(old, sig)
    e.render(1)
    e.interrupt()
    out = [e.frame().samples]
    assert e.pause()
    nxt = e.turn()
    e.push(nxt, ramp_signal(3 * N, start=5000))
    out.append(e.render(F // N))
    assert np.array_equal(np.concatenate(out), expected)
    assert old.finished and old.played == N + F and e.engine.paused
    assert nxt.played == 0
    e.kinds()
    assert not e.render(5).any()  # held: the next turn waits for resume()
    assert nxt.played == 0 and e.kinds() == [] and e.engine.underruns == 0
    assert e.resume()
    first = e.frame().samples
    assert np.array_equal(first[:R], apply_gain(ramp_signal(R, start=5000), ramp_up(0.0, R)))
    assert np.array_equal(first[R:], ramp_signal(N - R, start=5000 + R))
    e.conserved(old, nxt)


def test_pause_and_resume_during_fade_change_nothing() -> None:
    reference = Rig()
    t = reference.turn()
    reference.push(t, ramp_signal(50 * N))
    reference.render(1)
    reference.interrupt()
    expected = reference.render(F // N + 2)

    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(50 * N))
    e.render(1)
    e.interrupt()
    first = e.frame().samples
    e.pause()
    e.resume()
    assert np.array_equal(np.concatenate([first, e.render(F // N + 1)]), expected)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_fade_applies_to_every_channel(channels: int) -> None:
    e = Rig(channels)
    t = e.turn()
    sig = ramp_signal(20 * N, channels)
    e.push(t, sig)
    e.render(1)
    e.interrupt()
    out = e.render(F // N)
    assert out.shape == (F, channels)
    assert np.array_equal(out, apply_gain(sig[N : N + F], fade_gains(0, F, F)))


def test_turn_finishes_once_only_after_end_and_playout() -> None:
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(N // 2))
    e.render(2)
    assert e.kinds() == [(EventKind.STARTED, t.id), (EventKind.UNDERRUN, t.id)]
    assert not t.finished  # synthesis not marked complete
    e.push(t, ramp_signal(N))
    assert not e.end_turn(t)
    e.render(3)
    assert e.kinds() == [(EventKind.FINISHED, t.id)]
    e.end_turn(t)
    e.interrupt()
    assert e.kinds() == []


def test_finished_event_offset_is_where_the_turn_ended_in_the_block() -> None:
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(N + 300))
    e.end_turn(t)
    e.render(1)
    rendered = e.frame()
    assert [(ev.kind, ev.turn_id, ev.offset) for ev in rendered.events] == [(EventKind.FINISHED, t.id, 300)]


def test_empty_turn_finishes_at_end() -> None:
    e = Rig()
    t = e.turn()
    events = e.end_turn(t)
    assert t.finished and [(ev.kind, ev.turn_id) for ev in events] == [(EventKind.FINISHED, t.id)]


def test_an_ended_turn_still_plays_before_the_next_one() -> None:
    """The engine leaves ending the previous turn to its caller (the shell's start_turn does it)."""
    e = Rig()
    a = e.turn()
    e.push(a, ramp_signal(N))
    e.end_turn(a)
    b = e.turn()
    e.push(b, ramp_signal(N, start=2000))
    assert a.ended and not a.finished and not b.ended
    out = e.render(2)
    assert np.array_equal(out[:N], ramp_signal(N)) and np.array_equal(out[N:], ramp_signal(N, start=2000))
    assert a.finished and not b.finished


def test_underrun_counted_once_per_episode_and_only_mid_turn() -> None:
    e = Rig()
    t = e.turn()
    e.render(3)  # waiting for the first audio is not an underrun
    assert e.engine.underruns == 0
    for _ in range(2):
        e.push(t, ramp_signal(N))
        e.render(4)
    assert e.engine.underruns == 2
    assert [k for k, _ in e.kinds()].count(EventKind.UNDERRUN) == 2
    e.end_turn(t)
    e.render(2)
    assert e.engine.underruns == 2


def test_paused_silence_is_not_an_underrun() -> None:
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(5 * N))
    e.render(1)
    e.pause()
    e.render(5)
    assert e.engine.underruns == 0
    e.conserved(t)


def test_a_push_under_way_keeps_an_ended_turn_open() -> None:
    e = Rig()
    t = e.turn()
    e.push_started(t)
    e.push_started(t)
    assert not e.end_turn(t) and not t.finished
    assert not e.push_done(t) and not t.finished
    assert [(ev.kind, ev.turn_id) for ev in e.push_done(t)] == [(EventKind.FINISHED, t.id)]
    assert t.finished and not e.push_done(t)


def test_an_interrupted_turn_waits_for_its_pushes_to_return() -> None:
    e = Rig()
    t = e.turn()
    e.push_started(t)
    e.push(t, ramp_signal(3 * N))
    e.render(1)
    e.interrupt()
    e.render(F // N + 1)
    assert not t.finished  # the push under way has not returned
    assert not e.push(t, ramp_signal(N))  # what it still delivers is dropped
    assert [(ev.kind, ev.turn_id) for ev in e.push_done(t)] == [(EventKind.FINISHED, t.id)]
    e.conserved(t)


def test_cut_during_a_fade_finishes_the_interrupted_turn() -> None:
    """Regression: stop() during a fade cut the window but never finished the turn."""
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(N + 2))
    e.render(1)
    e.interrupt()
    assert not t.finished  # its 2 samples left are the fade window
    e.kinds()
    e.interrupt(cut=True)
    assert t.finished and t.dropped == 2
    assert e.kinds() == [(EventKind.FINISHED, t.id)]


def test_close_finishes_every_turn_even_with_pushes_under_way() -> None:
    """Issue 15 item 1: stop() must not wait on a push or an open stream that never returns."""
    e = Rig()
    a = e.turn()
    e.push(a, ramp_signal(50 * N))
    e.push_started(a)
    e.render(1)
    b = e.turn()  # not ended, a push under way too
    e.push_started(b)
    e.push(b, ramp_signal(N))
    e.kinds()
    result = e.close()
    assert {(ev.kind, ev.turn_id) for ev in result.events} == {(EventKind.FINISHED, a.id), (EventKind.FINISHED, b.id)}
    assert len(result.events) == 2
    assert a.finished and b.finished and a.interrupted and b.interrupted
    assert len(e.engine.queue) == 0 and e.engine.turns == {}
    assert result.dropped == 49 * N + N
    assert not e.push_done(a) and not e.push_done(b)  # the pushes return later: nothing more
    assert not e.push(b, ramp_signal(N))
    assert not e.render(2).any()
    e.conserved(a, b)


def test_close_during_a_fade_and_while_paused_finishes_everything() -> None:
    e = Rig()
    a = e.turn()
    e.push(a, ramp_signal(50 * N))
    e.render(1)
    e.interrupt()
    e.pause()
    b = e.turn()
    e.push(b, ramp_signal(N))
    result = e.close()
    assert sorted(ev.turn_id for ev in result.events) == [a.id, b.id]
    assert a.finished and b.finished and not e.render(2).any()
    e.conserved(a, b)


def test_rendered_reports_voice_turn_and_a_peak_bound() -> None:
    e = Rig()
    idle = e.frame()
    assert not idle.voiced and idle.turn_id is None and not idle.events
    a = e.turn()
    e.push(a, ramp_signal(N + 100))
    e.end_turn(a)
    b = e.turn()
    e.push(b, ramp_signal(3 * N, start=20000))
    plain = e.frame()  # fast path: a view of a queued chunk with its measured peak
    assert plain.voiced and plain.turn_id == a.id
    assert plain.peak < UNKNOWN_PEAK and plain.peak >= N
    across = e.frame()  # a's last 100 samples then b's first
    assert across.voiced and across.turn_id == b.id
    assert int(np.abs(across.samples.astype(np.int32)).max()) <= across.peak
    e.pause()
    ramped = e.frame()
    assert ramped.voiced and ramped.turn_id == b.id
    held = e.frame()
    assert not held.voiced and held.turn_id is None and not held.samples.any()
    e.resume()
    assert e.frame().voiced
    e.render(2)
    dry = e.frame()
    assert not dry.voiced and dry.turn_id is None


def test_rendered_during_a_fade_is_voiced_until_the_tail_ends() -> None:
    e = Rig()
    t = e.turn()
    e.push(t, ramp_signal(50 * N))
    e.render(1)
    e.interrupt()
    fading = [e.frame() for _ in range(F // N)]
    assert all(r.voiced and r.turn_id == t.id for r in fading)
    after = e.frame()
    assert not after.voiced and after.turn_id is None
