"""The playout engine (agent_audio._engine), sample-exact.

Guards:
- pause/resume: ramp down over the queued samples, hold without consuming, ramp up from
  the next sample; nothing lost, nothing repeated; pause+resume before a frame is a no-op;
- interrupt: the next ``fade_samples`` queued samples play under the fade, ending on exact
  zero, the rest is dropped and counted; ``fade_samples=0`` cuts at the frame boundary;
  while paused it drops at once and ends the pause; during a fade it does not restart it;
  a new turn's audio follows the fade tail at full gain; any channel count;
- turns: ``pushed == played + dropped + queued``; exactly one FINISHED per turn, only
  once synthesis is complete and the audio has played (or after the fade tail);
  audio for an interrupted turn is dropped and counted;
- underruns: counted once per episode, only mid-turn after the first sample played.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent_audio._engine import EventKind, PlayoutEngine, TurnState
from agent_audio._gain import apply_gain, fade_gains, ramp_down, ramp_up

from helpers import ramp_signal

N = 960  # one 20 ms frame at 48 kHz
R = 240  # 5 ms ramp at 48 kHz
F = 9600  # 200 ms fade at 48 kHz


def make(channels: int = 1, fade: int = F) -> PlayoutEngine:
    return PlayoutEngine(channels=channels, fade_samples=fade, ramp_samples=R)


def render(engine: PlayoutEngine, frames: int) -> np.ndarray:
    return np.concatenate([engine.render(N) for _ in range(frames)])


def conserved(engine: PlayoutEngine, *turns: TurnState) -> None:
    for t in turns:
        assert t.pushed == t.played + t.dropped + engine.queued_for(t), t


def kinds(engine: PlayoutEngine) -> list[tuple[EventKind, int]]:
    events, engine.events = engine.events, []
    return [(e.kind, e.turn_id) for e in events]


def test_plays_pushed_audio_exactly_then_silence() -> None:
    e = make()
    t = e.start_turn()
    sig = ramp_signal(3 * N + 100)
    e.enqueue(t, sig)
    out = render(e, 5)
    assert np.array_equal(out[: len(sig)], sig)
    assert not out[len(sig) :].any()
    assert t.played == len(sig)
    conserved(e, t)


def test_pause_resume_loses_and_repeats_nothing() -> None:
    e = make()
    t = e.start_turn()
    sig = ramp_signal(10 * N)
    e.enqueue(t, sig)
    played = render(e, 2)
    assert e.pause()
    assert not e.pause()  # second pause is a no-op
    pause_frame = e.render(N)
    assert np.array_equal(pause_frame[:R], apply_gain(sig[2 * N : 2 * N + R], ramp_down(1.0, R)))
    assert not pause_frame[R:].any()
    held = render(e, 5)
    assert not held.any()
    assert t.played == 2 * N + R  # the clock ran on, the queue did not move
    assert e.resume()
    assert not e.resume()
    resume_frame = e.render(N)
    start = 2 * N + R
    assert np.array_equal(resume_frame[:R], apply_gain(sig[start : start + R], ramp_up(0.0, R)))
    assert np.array_equal(resume_frame[R:], sig[start + R : start + N])
    rest = render(e, 10)
    assert np.array_equal(rest[: len(sig) - start - N], sig[start + N :])
    assert np.array_equal(played, sig[: 2 * N])
    assert t.played == len(sig)
    conserved(e, t)


def test_pause_and_resume_before_a_frame_changes_nothing() -> None:
    e = make()
    t = e.start_turn()
    sig = ramp_signal(3 * N)
    e.enqueue(t, sig)
    e.pause()
    e.resume()
    assert np.array_equal(render(e, 3), sig)


def test_pause_when_idle_holds_audio_pushed_later() -> None:
    e = make()
    t = e.start_turn()
    e.pause()
    e.enqueue(t, ramp_signal(2 * N))
    assert not render(e, 3).any()
    assert t.played == 0
    e.resume()
    out = e.render(N)
    assert np.array_equal(out[:R], apply_gain(ramp_signal(R), ramp_up(0.0, R)))
    conserved(e, t)


def test_interrupt_fades_exactly_then_drops_the_rest() -> None:
    e = make()
    t = e.start_turn()
    sig = ramp_signal(100 * N)
    e.enqueue(t, sig)
    render(e, 5)
    kinds(e)
    result = e.interrupt()
    assert result.turns == [t] and result.fade_samples == F and result.dropped == len(sig) - 5 * N - F
    assert t.interrupted and not t.finished
    conserved(e, t)
    out = render(e, F // N + 2)
    expected = apply_gain(sig[5 * N : 5 * N + F], fade_gains(0, F, F))
    assert np.array_equal(out[:F], expected)
    assert out[F - 1].tolist() == [0]
    assert not out[F:].any()
    assert t.finished and t.played == 5 * N + F and t.dropped == len(sig) - 5 * N - F
    assert kinds(e) == [(EventKind.FINISHED, t.id)]
    conserved(e, t)


def test_fade_zero_cuts_at_the_next_frame() -> None:
    e = make(fade=0)
    t = e.start_turn()
    e.enqueue(t, ramp_signal(10 * N))
    render(e, 1)
    e.interrupt()
    assert t.finished and t.dropped == 9 * N
    assert not render(e, 2).any()


def test_short_queue_fades_over_what_is_queued_and_ends_on_zero() -> None:
    e = make()
    t = e.start_turn()
    e.enqueue(t, ramp_signal(N + 500))
    render(e, 1)
    e.interrupt()
    out = e.render(N)
    assert np.array_equal(out[:500], apply_gain(ramp_signal(500, start=N + 1), fade_gains(0, 500, 500)))
    assert out[499, 0] == 0
    e.enqueue(t, ramp_signal(N))  # a TTS task still running after the barge-in
    assert t.dropped == N
    conserved(e, t)


def test_interrupt_while_paused_drops_at_once_and_ends_the_pause() -> None:
    e = make()
    t = e.start_turn()
    e.enqueue(t, ramp_signal(10 * N))
    render(e, 1)
    e.pause()
    render(e, 2)
    result = e.interrupt()
    assert result.fade_samples == 0 and not e.paused
    assert t.finished and t.played == N + R and t.dropped == 9 * N - R
    nxt = e.start_turn()
    e.enqueue(nxt, ramp_signal(N))
    assert np.array_equal(e.render(N), ramp_signal(N))  # plays without resume()
    conserved(e, t, nxt)


def test_interrupt_during_pause_ramp_keeps_only_the_ramp() -> None:
    e = make()
    t = e.start_turn()
    e.enqueue(t, ramp_signal(10 * N))
    e.pause()
    result = e.interrupt()
    assert result.fade_samples == R
    out = e.render(N)
    assert np.array_equal(out[:R], apply_gain(ramp_signal(R), ramp_down(1.0, R)))
    assert not out[R:].any()
    assert t.finished and t.played == R


def test_interrupt_during_fade_does_not_restart_it() -> None:
    once, twice = make(), make()
    outs = []
    for e, repeat in ((once, False), (twice, True)):
        t = e.start_turn()
        e.enqueue(t, ramp_signal(50 * N))
        e.interrupt()
        first = e.render(N)
        if repeat:
            assert e.interrupt().turns == []
        outs.append(np.concatenate([first, render(e, 12)]))
    assert np.array_equal(outs[0], outs[1])


def test_new_turn_follows_fade_tail_at_full_gain() -> None:
    e = make()
    old = e.start_turn()
    e.enqueue(old, ramp_signal(50 * N))
    e.interrupt()
    new = e.start_turn()
    sig = ramp_signal(2 * N, start=5000)
    e.enqueue(new, sig)
    out = render(e, F // N + 2)
    assert np.array_equal(out[F : F + 2 * N], sig)
    assert new.played == 2 * N and not new.interrupted
    conserved(e, old, new)


def test_interrupt_during_fade_still_stops_a_newer_turn() -> None:
    e = make()
    old = e.start_turn()
    e.enqueue(old, ramp_signal(50 * N))
    e.interrupt()
    new = e.start_turn()
    e.enqueue(new, ramp_signal(2 * N))
    result = e.interrupt()
    assert result.turns == [new] and result.fade_samples == F and result.dropped == 2 * N
    conserved(e, old, new)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_fade_applies_to_every_channel(channels: int) -> None:
    e = make(channels)
    t = e.start_turn()
    sig = ramp_signal(20 * N, channels)
    e.enqueue(t, sig)
    e.interrupt()
    out = render(e, F // N)
    assert out.shape == (F, channels)
    assert np.array_equal(out, apply_gain(sig[:F], fade_gains(0, F, F)))


def test_turn_finishes_once_only_after_end_and_playout() -> None:
    e = make()
    t = e.start_turn()
    e.enqueue(t, ramp_signal(N // 2))
    render(e, 2)
    assert kinds(e) == [(EventKind.STARTED, t.id), (EventKind.UNDERRUN, t.id)]
    assert not t.finished  # synthesis not marked complete
    e.enqueue(t, ramp_signal(N))
    e.end_turn(t)
    render(e, 3)
    assert kinds(e) == [(EventKind.FINISHED, t.id)]
    e.end_turn(t)
    e.interrupt()
    assert kinds(e) == []


def test_empty_turn_finishes_at_end() -> None:
    e = make()
    t = e.start_turn()
    e.end_turn(t)
    assert t.finished and kinds(e) == [(EventKind.FINISHED, t.id)]


def test_start_turn_ends_the_previous_one_which_still_plays() -> None:
    e = make()
    a = e.start_turn()
    e.enqueue(a, ramp_signal(N))
    b = e.start_turn()
    e.enqueue(b, ramp_signal(N, start=2000))
    assert a.ended and not a.finished
    out = render(e, 2)
    assert np.array_equal(out[:N], ramp_signal(N)) and np.array_equal(out[N:], ramp_signal(N, start=2000))
    assert a.finished and not b.finished


def test_underrun_counted_once_per_episode_and_only_mid_turn() -> None:
    e = make()
    t = e.start_turn()
    render(e, 3)  # waiting for the first audio is not an underrun
    assert e.underruns == 0
    for _ in range(2):
        e.enqueue(t, ramp_signal(N))
        render(e, 4)
    assert e.underruns == 2
    e.end_turn(t)
    render(e, 2)
    assert e.underruns == 2


def test_paused_silence_is_not_an_underrun() -> None:
    e = make()
    t = e.start_turn()
    e.enqueue(t, ramp_signal(5 * N))
    render(e, 1)
    e.pause()
    render(e, 5)
    assert e.underruns == 0
    conserved(e, t)


def test_pushing_while_a_push_is_under_way_keeps_turn_open() -> None:
    e = make()
    t = e.start_turn()
    t.pushing = 1
    e.end_turn(t)
    assert not t.finished
    t.pushing = 0
    e.settle(t)
    assert t.finished


def test_cut_during_a_fade_finishes_the_interrupted_turn() -> None:
    """Regression: stop() during a fade cut the window but never finished the turn."""
    e = make()
    t = e.start_turn()
    e.enqueue(t, ramp_signal(2))
    e.interrupt()
    assert not t.finished  # its 2 samples are the fade window
    e.interrupt(cut=True)
    assert t.finished and t.dropped == 2
    assert kinds(e) == [(EventKind.FINISHED, t.id)]
