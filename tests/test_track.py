"""AgentAudioTrack (agent_audio._track): the aiortc-facing shell, on the manual clock.

Guards:
- every frame has the track format, ``frame_samples`` samples and continuous pts;
- events are scheduled on the loop, never run inside ``recv()``; a raising handler is logged;
- ``recv()`` never raises anything but MediaStreamError and never returns None: an
  internal fault is logged once and gives silence; after ``stop()`` it raises
  MediaStreamError, and ``stop()`` finishes every turn and emits before listeners go;
- pacing: a small lateness is absorbed on the grid; after a 300 ms stall at most 2 frames
  come back to back and the grid re-anchors (counted);
- turns: implicit turns, stale pushes after interrupt dropped and counted, pushes to an
  ended turn refused with the queue unchanged, bad input changes nothing;
- a large push yields to the loop, concurrent pushes keep their order, and a turn ended
  mid-push finishes only after that push (resampler tail last);
- pause timeout, is_speaking with its grace period, TTFA, hooks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from agent_audio import (
    AgentAudioTrack,
    Interrupted,
    InvalidAudioError,
    OutputFrame,
    Paused,
    PlayoutStarted,
    Resumed,
    TrackClosedError,
    TurnClosedError,
    TurnFinished,
    Underrun,
    VoiceTap,
)
from agent_audio.testing import ManualClock

from helpers import ramp_signal, receive, tone

N = 960


def record(track: AgentAudioTrack) -> list[object]:
    seen: list[object] = []
    for name in ("playout_started", "turn_finished", "interrupted", "paused", "resumed", "underrun"):
        track.on(name, seen.append)
    return seen


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_frames_have_track_format_and_continuous_pts(track: AgentAudioTrack) -> None:
    await track.push(ramp_signal(3 * N + 10).tobytes())
    out = await receive(track, 6)
    assert np.array_equal(out[: 3 * N + 10], ramp_signal(3 * N + 10))
    assert track.metrics().frames_sent == 6


@pytest.mark.parametrize(("rate", "channels", "duration"), [(16000, 1, 0.01), (24000, 2, 0.02), (48000, 2, 0.04)])
async def test_other_track_formats(clock: ManualClock, rate: int, channels: int, duration: float) -> None:
    track = AgentAudioTrack(sample_rate=rate, channels=channels, frame_duration=duration, clock=clock)
    await track.push(tone(0.5, 44100), sample_rate=44100)
    await receive(track, 5)
    assert clock.now() == pytest.approx(4 * duration)
    track.stop()


async def test_events_are_scheduled_never_run_inside_recv(track: AgentAudioTrack) -> None:
    seen = record(track)
    turn = track.start_turn()
    await turn.push(ramp_signal(N).tobytes())
    turn.end()
    await track.recv()
    assert seen == []  # recv returned without running any handler
    await settle()
    assert [type(e) for e in seen] == [PlayoutStarted, TurnFinished]
    started, finished = seen
    assert isinstance(started, PlayoutStarted) and started.turn_id == turn.id and started.pts == 0
    assert isinstance(finished, TurnFinished) and finished.stats.played_samples == N


async def test_a_raising_handler_is_logged_not_raised(track: AgentAudioTrack, caplog: pytest.LogCaptureFixture) -> None:
    def boom(_: object) -> None:
        raise RuntimeError("handler bug")

    track.on("playout_started", boom)
    await track.push(ramp_signal(N).tobytes())
    await track.recv()
    await settle()
    assert "an event handler raised" in caplog.text and "handler bug" in caplog.text


async def test_wait_for_playout_returns_final_stats(track: AgentAudioTrack) -> None:
    turn = track.start_turn()
    await turn.push(tone(0.5, 24000), sample_rate=24000)
    turn.end()
    waiter = asyncio.ensure_future(turn.wait_for_playout())
    while not waiter.done():
        await track.recv()
        await asyncio.sleep(0)
    stats = waiter.result()
    assert stats.finished and not stats.interrupted
    assert stats.played_samples == stats.pushed_samples == 24000
    assert stats.played_ms == 500.0


async def test_push_without_a_turn_starts_one_and_after_end_starts_the_next(track: AgentAudioTrack) -> None:
    await track.push(ramp_signal(N).tobytes())
    first = track.current_turn
    assert first is not None and first.id == 1
    track.end_turn()
    await track.push(ramp_signal(N).tobytes())
    second = track.current_turn
    assert second is not None and second.id == 2
    assert track.snapshot_playback() == (0, N)


async def test_stale_push_after_interrupt_is_dropped_and_counted(track: AgentAudioTrack) -> None:
    seen = record(track)
    turn = track.start_turn()
    await turn.push(ramp_signal(50 * N).tobytes())
    await receive(track, 2)
    track.interrupt()
    await track.push(ramp_signal(10 * N).tobytes())  # the TTS task has not noticed yet
    await turn.push(ramp_signal(10 * N).tobytes())
    s = turn.stats
    assert s.interrupted and s.pushed_samples == 70 * N
    assert s.pushed_samples == s.played_samples + s.dropped_samples + s.queued_samples
    out = await receive(track, 15)
    assert not out[9600:].any()  # silent after the 200 ms fade tail
    await settle()
    interrupted = [e for e in seen if isinstance(e, Interrupted)]
    assert len(interrupted) == 1 and interrupted[0].turn_ids == (turn.id,)
    assert interrupted[0].fade_samples == 9600 and interrupted[0].dropped_samples == 48 * N - 9600
    assert turn.stats.played_samples == 2 * N + 9600


async def test_push_to_an_ended_turn_is_refused_and_changes_nothing(track: AgentAudioTrack) -> None:
    old = track.start_turn()
    await old.push(ramp_signal(N).tobytes())
    new = track.start_turn()
    with pytest.raises(TurnClosedError, match=f"got turn {old.id}, already ended"):
        await old.push(ramp_signal(N).tobytes())
    assert old.stats.pushed_samples == N and track.metrics().queued_samples == N
    assert new.stats.pushed_samples == 0


async def test_bad_input_changes_nothing_and_starts_no_turn(track: AgentAudioTrack) -> None:
    with pytest.raises(InvalidAudioError):
        await track.push(np.array([0.5, np.nan]))
    assert track.current_turn is None
    await track.push(ramp_signal(N).tobytes())
    turn = track.current_turn
    assert turn is not None
    with pytest.raises(InvalidAudioError, match="got int32"):
        await track.push(np.zeros(10, np.int32))
    assert turn.stats.pushed_samples == N and track.metrics().queued_samples == N
    other = AgentAudioTrack(clock=ManualClock())
    with pytest.raises(InvalidAudioError, match="expected a Turn of this track"):
        await other.push(b"\x00\x00", turn=turn)
    other.stop()


async def test_recv_survives_an_internal_fault_with_silence_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    class FaultyClock(ManualClock):
        def __init__(self) -> None:
            super().__init__()
            self.faults = 0

        def now(self) -> float:
            if self.faults:
                self.faults -= 1
                raise RuntimeError("clock bug")
            return super().now()

    clock = FaultyClock()
    track = AgentAudioTrack(clock=clock)
    await track.push(ramp_signal(10 * N).tobytes())
    clock.faults = 2
    with caplog.at_level(logging.ERROR):
        out = await receive(track, 4)
    assert not out[: 2 * N].any()  # two faulty frames: silence
    assert np.array_equal(out[2 * N :], ramp_signal(2 * N))  # then the voice, from its first sample
    assert caplog.text.count("fault producing a frame") == 1
    track.stop()


async def test_a_stage_that_raises_is_skipped_and_logged_once(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def process(self, frame: OutputFrame) -> OutputFrame:
            raise RuntimeError("stage bug")

    track = AgentAudioTrack(clock=clock, stages=[Broken()])
    await track.push(ramp_signal(10 * N).tobytes())
    with caplog.at_level(logging.ERROR):
        out = await receive(track, 3)
    assert np.array_equal(out, ramp_signal(3 * N))  # the frame goes on without the stage
    assert len([r for r in caplog.records if "output stage" in r.getMessage()]) == 1
    assert clock.now() == pytest.approx(0.04)
    track.stop()


async def test_stop_finishes_turns_emits_then_raises_media_stream_error(clock: ManualClock) -> None:
    track = AgentAudioTrack(clock=clock)
    seen = record(track)
    turn = track.start_turn()
    await turn.push(ramp_signal(10 * N).tobytes())
    await track.recv()
    track.stop()
    stats = await turn.wait_for_playout()
    assert stats.interrupted and stats.played_samples == N and stats.dropped_samples == 9 * N
    assert [type(e) for e in seen] == [PlayoutStarted, TurnFinished]
    with pytest.raises(MediaStreamError):
        await track.recv()
    with pytest.raises(TrackClosedError):
        await track.push(b"\x00\x00")
    with pytest.raises(TrackClosedError):
        track.start_turn()


async def test_small_lateness_is_absorbed_on_the_grid(track: AgentAudioTrack, clock: ManualClock) -> None:
    await receive(track, 5)  # frame 4 left at 0.08 s; frame 5 is due at 0.10 s
    clock.advance(0.045)  # the consumer came back at 0.125 s: frame 5 is 25 ms late
    times = []
    for _ in range(5):
        await track.recv()
        times.append(clock.now())
    assert times[0] == times[1] == pytest.approx(0.125)  # caught up back to back
    assert times[2:] == pytest.approx([0.14, 0.16, 0.18])  # back on the original grid
    m = track.metrics()
    assert m.reanchors == 0 and m.late_frames == 1 and m.max_lateness == pytest.approx(0.025)


async def test_stall_reanchors_instead_of_bursting(track: AgentAudioTrack, clock: ManualClock) -> None:
    await receive(track, 10)  # frame 9 left at 0.18 s; frame 10 is due at 0.20 s
    clock.advance(0.3)  # the event loop was blocked for 300 ms: frame 10 leaves 280 ms late
    times = []
    for _ in range(20):
        await track.recv()
        times.append(clock.now())
    back_to_back = 1 + max(sum(1 for _ in group) - 1 for group in _runs(times))
    assert back_to_back <= 2
    assert np.allclose(np.diff(times[1:]), 0.02)
    m = track.metrics()
    assert m.reanchors == 1 and m.max_lateness == pytest.approx(0.28)


def _runs(times: list[float]) -> list[list[float]]:
    runs: list[list[float]] = [[times[0]]]
    for t in times[1:]:
        if abs(t - runs[-1][-1]) < 1e-9:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


async def test_big_push_yields_to_the_loop_and_pushes_stay_ordered(track: AgentAudioTrack) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    big = asyncio.ensure_future(track.push(tone(10.0, 24000), sample_rate=24000))
    await asyncio.sleep(0)
    small = asyncio.ensure_future(track.push(ramp_signal(N).tobytes()))
    await asyncio.gather(big, small)
    task.cancel()
    assert ticks >= 5
    turn = track.current_turn
    assert turn is not None
    track.end_turn()
    out = await receive(track, 502)
    assert np.array_equal(out[-2 * N : -N], ramp_signal(N))  # the small push came after all of the big one


async def test_turn_ended_mid_push_finishes_after_the_push(track: AgentAudioTrack) -> None:
    turn = track.start_turn()
    push = asyncio.ensure_future(turn.push(tone(3.0, 24000), sample_rate=24000))
    await asyncio.sleep(0)
    turn.end()
    await push
    assert turn.stats.pushed_samples == 144000  # the resampler's tail was flushed at the end
    out = await receive(track, 151)
    assert turn.stats.finished and not out[-N:].any()


async def test_pause_timeout_resumes_or_interrupts(clock: ManualClock) -> None:
    actions: tuple[Literal["resume", "interrupt"], ...] = ("resume", "interrupt")
    for action in actions:
        track = AgentAudioTrack(clock=clock)
        seen = record(track)
        turn = track.start_turn()
        await turn.push(ramp_signal(100 * N).tobytes())
        await receive(track, 1)
        track.pause(timeout=0.1, on_timeout=action)
        await receive(track, 4)  # frames at 0.02 .. 0.08 s
        assert track.is_paused
        await receive(track, 1)  # the frame at 0.10 s decides; the action runs on the loop right after it
        await asyncio.sleep(0)
        assert not track.is_paused
        await settle()
        kinds = [type(e) for e in seen]
        assert (Resumed in kinds) == (action == "resume")
        assert (Interrupted in kinds) == (action == "interrupt")
        assert Paused in kinds
        track.stop()


async def test_is_speaking_bridges_short_gaps_only(track: AgentAudioTrack, clock: ManualClock) -> None:
    assert not track.is_speaking
    turn = track.start_turn()
    await receive(track, 2)
    assert not track.is_speaking  # nothing played yet
    await turn.push(ramp_signal(2 * N).tobytes())
    await receive(track, 1)
    assert track.is_speaking
    track.pause()
    assert not track.is_speaking
    track.resume()
    await receive(track, 2)  # queue ran dry: a gap in streaming TTS
    assert track.is_speaking  # within the 200 ms grace
    await receive(track, 10)
    assert not track.is_speaking


async def test_time_to_first_audio_and_underrun_events(track: AgentAudioTrack, clock: ManualClock) -> None:
    seen = record(track)
    await receive(track, 1)
    turn = track.start_turn()
    clock.advance(0.25)  # TTS latency
    await turn.push(ramp_signal(N // 2).tobytes())
    await receive(track, 2)
    await settle()
    started = [e for e in seen if isinstance(e, PlayoutStarted)]
    assert len(started) == 1 and started[0].time_to_first_audio == pytest.approx(0.25, abs=0.021)
    assert turn.stats.time_to_first_audio == started[0].time_to_first_audio
    assert track.metrics().time_to_first_audio == {turn.id: started[0].time_to_first_audio}
    assert [e for e in seen if isinstance(e, Underrun)] == [Underrun(turn.id, N // 2)]


async def test_voice_tap_sees_played_audio_in_order(clock: ManualClock) -> None:
    got: list[np.ndarray] = []

    class Tap(VoiceTap):
        def voice_queued(self, turn_id: int, samples: np.ndarray) -> None:
            got.append(samples)

    track = AgentAudioTrack(clock=clock, taps=[Tap()])
    turn = track.start_turn()
    for i in range(3):
        await turn.push(ramp_signal(100, start=1 + 100 * i).tobytes())
    await receive(track, 1)  # audible: the interrupt fades instead of dropping at once
    track.interrupt()
    await turn.push(ramp_signal(100).tobytes())  # dropped: not passed to the tap
    assert np.array_equal(np.concatenate(got), ramp_signal(300))
    track.stop()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sample_rate": 0}, "expected sample_rate > 0 Hz, got 0"),
        ({"channels": 9}, "expected channels as an int from 1 to 8, got 9"),
        ({"frame_duration": 0.0201}, "whole number of samples at 48000 Hz"),
        ({"fade_out": -0.1}, "expected fade_out >= 0 and <= 5 seconds, got -0.1"),
        ({"fade_out": 1e9}, "expected fade_out >= 0 and <= 5 seconds, got 1000000000.0"),
        ({"fade_out": True}, "expected fade_out as a number >= 0 and <= 5 seconds, got bool True"),
        ({"speaking_grace": float("nan")}, "expected speaking_grace >= 0 and <= 5 seconds"),
        ({"clock": "not a clock"}, "expected a Clock with now"),
        ({"stages": [object()]}, "expected output stages with process"),
        ({"taps": [object()]}, "expected a voice tap defining one of"),
    ],
)
def test_bad_options_are_refused(kw: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidAudioError, match=message):
        AgentAudioTrack(**kw)  # type: ignore[arg-type]


async def test_pause_arguments_are_checked(track: AgentAudioTrack) -> None:
    with pytest.raises(InvalidAudioError, match="expected timeout >= 0 seconds or None, got -1"):
        track.pause(timeout=-1)
    with pytest.raises(InvalidAudioError, match="expected on_timeout 'resume' or 'interrupt', got 'stop'"):
        track.pause(on_timeout="stop")  # type: ignore[arg-type]
    assert not track.is_paused


async def test_interrupt_forgets_the_turns_resampler_tail(track: AgentAudioTrack) -> None:
    """An interrupted turn's resampler tail is never played; the next turn resamples afresh."""
    turn = track.start_turn()
    await turn.push(tone(0.5, 24000), sample_rate=24000)
    await receive(track, 1)
    track.interrupt()
    turn.end()  # no tail is queued for an interrupted turn
    await receive(track, 12)  # the 200 ms fade
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert stats.played_samples == N + round(track.fade_out * track.sample_rate)
    nxt = track.start_turn()
    await nxt.push(tone(0.1, 16000), sample_rate=16000)
    nxt.end()
    await receive(track, 6)
    assert (await asyncio.wait_for(nxt.wait_for_playout(), 1)).played_samples == round(0.1 * track.sample_rate)


async def test_tap_control_calls_come_in_order_after_the_audio(clock: ManualClock) -> None:
    calls: list[str] = []

    class Spy(VoiceTap):
        def voice_queued(self, turn_id: int, samples: np.ndarray) -> None:
            calls.append(f"audio {turn_id} {len(samples)}")

        def turn_ended(self, turn_id: int) -> None:
            calls.append(f"end {turn_id}")

        def paused(self) -> None:
            calls.append("pause")

        def resumed(self) -> None:
            calls.append("resume")

        def interrupted(self, turn_ids: tuple[int, ...]) -> None:
            calls.append(f"interrupt {turn_ids}")

    track = AgentAudioTrack(clock=clock, taps=[Spy()])
    first = track.start_turn()
    await first.push(tone(0.1, 24000), sample_rate=24000)
    track.pause()
    track.pause()  # no-op: no call
    track.resume()
    first.end()  # the resampler's tail comes before the end
    second = track.start_turn()
    await second.push(ramp_signal(N).tobytes())
    track.interrupt()
    second.end()  # an interrupted turn gets no turn end
    assert calls[0].startswith("audio 1") and calls[1:3] == ["pause", "resume"]
    assert calls[3].startswith("audio 1") and calls[4] == "end 1"  # the tail, then the end
    assert calls[5:] == [f"audio 2 {N}", "interrupt (1, 2)"]
    track.stop()
