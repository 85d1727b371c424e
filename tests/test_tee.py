"""TeeAgentAudioTrack and TeeMixingAgentAudioTrack (agent_audio._tee), on the manual clock.

Guards:
- sinks receive every pushed sample in order (track format, s16 bytes, ahead of
  playout) and the control calls in order with the audio; sync sinks run on their own
  thread;
- with a sink attached the wire carries silence (TeeMixing: the background only) while
  counters, events, TTFA and is_speaking advance as if the voice played; removing the
  last sink puts the voice back on the wire;
- a raising sink is logged once per kind of error and keeps receiving, even when it
  raises SystemExit or KeyboardInterrupt, sync or async, in any method (regression: that
  ended asyncio.run); a stalled sink
  (async or sync) delays neither the other sinks nor push() nor recv(); overflow beyond
  the bound is counted; interrupt drops the audio a sink has not taken yet.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from agent_audio import (
    AudioSink,
    AvatarSink,
    InvalidAudioError,
    InvalidStateError,
    MixingAgentAudioTrack,
    PlayoutStarted,
    TeeAgentAudioTrack,
    TeeMixingAgentAudioTrack,
)
from agent_audio.testing import ManualClock

from helpers import ramp_signal, receive, tone

N = 960


class Recorder:
    """A full avatar sink (async) that records everything."""

    def __init__(self) -> None:
        self.audio = bytearray()
        self.calls: list[str] = []

    async def handle_audio_input(self, data: bytes) -> None:
        self.audio += data
        if not self.calls or self.calls[-1] != "audio":
            self.calls.append("audio")

    async def on_pause(self) -> None:
        self.calls.append("pause")

    async def on_resume(self) -> None:
        self.calls.append("resume")

    async def on_interrupt(self) -> None:
        self.calls.append("interrupt")

    async def on_turn_end(self, turn_id: int) -> None:
        self.calls.append(f"end {turn_id}")


class SyncRecorder:
    """A minimal sync sink: only handle_audio_input."""

    def __init__(self) -> None:
        self.audio = bytearray()
        self.threads: set[str] = set()

    def handle_audio_input(self, data: bytes) -> None:
        self.audio += data
        self.threads.add(threading.current_thread().name)


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0.002)


def test_protocols_recognise_sinks() -> None:
    assert isinstance(Recorder(), AudioSink) and isinstance(Recorder(), AvatarSink)
    assert isinstance(SyncRecorder(), AudioSink) and not isinstance(SyncRecorder(), AvatarSink)
    assert not isinstance(object(), AudioSink)


async def test_sinks_get_every_sample_and_control_calls_in_order() -> None:
    track = TeeAgentAudioTrack(clock=ManualClock())
    full, minimal = Recorder(), SyncRecorder()
    track.add_sink(full)
    track.add_sink(minimal)
    turn = track.start_turn()
    pushed = [ramp_signal(700, start=1 + 700 * i) for i in range(5)]
    for chunk in pushed[:3]:
        await turn.push(chunk.tobytes())
    track.pause()
    track.resume()
    for chunk in pushed[3:]:
        await turn.push(chunk.tobytes())
    turn.end()
    second = track.start_turn()
    await second.push(ramp_signal(N).tobytes())
    await settle()  # the sinks have taken all the audio; an interrupt drops only what they have not
    track.interrupt()
    await settle()
    assert bytes(full.audio) == b"".join(c.tobytes() for c in pushed) + ramp_signal(N).tobytes()
    assert bytes(minimal.audio) == bytes(full.audio)
    assert full.calls == ["audio", "pause", "resume", "audio", "end 1", "audio", "interrupt"]
    assert minimal.threads == {"agent_audio-sink"}
    track.stop()


async def test_wire_is_silent_with_a_sink_but_counters_and_events_advance() -> None:
    track = TeeAgentAudioTrack(clock=ManualClock())
    started: list[PlayoutStarted] = []
    track.on("playout_started", started.append)
    sink = Recorder()
    track.add_sink(sink)
    turn = track.start_turn()
    await turn.push(ramp_signal(3 * N).tobytes())
    out = await receive(track, 2)
    assert not out.any()
    assert track.is_speaking and turn.stats.played_samples == 2 * N
    await asyncio.sleep(0)
    assert len(started) == 1 and turn.stats.time_to_first_audio is not None
    track.remove_sink(sink)
    assert np.array_equal(await receive(track, 1), ramp_signal(3 * N)[2 * N :])  # the voice is back
    track.stop()


async def test_tee_mixing_wire_carries_the_background_only() -> None:
    track = TeeMixingAgentAudioTrack(duck=0.0, clock=ManualClock())
    track.set_background(np.full(N, 1000, np.int16))
    track.add_sink(Recorder())
    await track.push(ramp_signal(10 * N).tobytes())
    out = await receive(track, 5)
    assert np.all(out[2400:] == 1000)  # after the 50 ms fade-in: the bed, no voice
    track.stop()


async def test_raising_sink_is_logged_once_and_keeps_receiving(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        async def handle_audio_input(self, data: bytes) -> None:
            self.calls += 1
            raise ValueError("avatar bug")

    track = TeeAgentAudioTrack(clock=ManualClock())
    flaky, good = Flaky(), Recorder()
    track.add_sink(flaky)
    track.add_sink(good)
    for i in range(4):
        await track.push(ramp_signal(100, start=1 + 100 * i).tobytes())
    await settle()
    assert flaky.calls == 4
    assert len([r for r in caplog.records if "raised in handle_audio_input" in r.getMessage()]) == 1
    assert bytes(good.audio) == ramp_signal(400).tobytes()
    assert track.metrics().sink_errors == 4
    track.stop()


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_stalled_sink_delays_nothing_and_overflow_is_counted(kind: str) -> None:
    release = threading.Event()

    class Stalled:
        async def handle_audio_input(self, data: bytes) -> None:
            await asyncio.Event().wait()  # never returns

    class StalledSync:
        def handle_audio_input(self, data: bytes) -> None:
            release.wait()  # blocks its own thread only

    clock = ManualClock()
    track = TeeAgentAudioTrack(clock=clock, sink_queue=0.1)
    good = Recorder()
    track.add_sink(Stalled() if kind == "async" else StalledSync())
    track.add_sink(good)
    started = time.perf_counter()
    for _ in range(10):
        await track.push(ramp_signal(N).tobytes())
        for _ in range(3):
            await asyncio.sleep(0)  # the healthy sink keeps up; the stalled one cannot
    await receive(track, 10)
    elapsed = time.perf_counter() - started
    assert clock.now() == pytest.approx(0.18)  # every frame on its due time: nothing waited on the sink
    assert elapsed < 1.0  # and nothing blocked the loop (generous bound: shared machine)
    await settle()
    assert len(good.audio) == 10 * N * 2
    metrics = track.metrics()
    # 1 chunk is inside the stalled call, 5 wait (the 0.1 s bound), 4 overflow
    assert metrics.sink_overflow_bytes == 4 * N * 2
    assert metrics.sinks == 2
    release.set()
    track.stop()
    assert track.metrics().sinks == 0


@pytest.mark.parametrize("full", [True, False], ids=["avatar sink", "minimal sink"])
async def test_interrupt_drops_audio_the_sink_has_not_taken(full: bool) -> None:
    """Also for a sink without on_interrupt: stale speech must not reach any avatar."""
    gate = asyncio.Event()

    class Slow(Recorder):
        async def handle_audio_input(self, data: bytes) -> None:
            await gate.wait()
            await super().handle_audio_input(data)

    class Minimal:
        def __init__(self) -> None:
            self.audio = bytearray()

        async def handle_audio_input(self, data: bytes) -> None:
            await gate.wait()
            self.audio += data

    track = TeeAgentAudioTrack(clock=ManualClock())
    sink = Slow() if full else Minimal()
    track.add_sink(sink)
    for _ in range(5):
        await track.push(ramp_signal(N).tobytes())
    await asyncio.sleep(0)
    track.interrupt()
    gate.set()
    await settle()
    assert len(sink.audio) == N * 2  # only the chunk it was already handling
    if isinstance(sink, Slow):
        assert sink.calls == ["audio", "interrupt"]
    track.stop()


async def test_bad_sinks_are_refused() -> None:
    track = TeeAgentAudioTrack(clock=ManualClock())
    with pytest.raises(InvalidAudioError, match="expected a sink with handle_audio_input"):
        track.add_sink(object())  # type: ignore[arg-type]
    sink = Recorder()
    track.add_sink(sink)
    with pytest.raises(InvalidStateError, match="expected a sink not attached yet"):
        track.add_sink(sink)
    for bad in (0, True, float("inf")):
        with pytest.raises(InvalidAudioError, match="sink_queue"):
            TeeAgentAudioTrack(sink_queue=bad)
    track.remove_sink(sink)
    track.remove_sink(sink)  # no-op
    assert track.sinks == []
    track.stop()


async def test_tee_track_stays_a_tone_source_without_sinks() -> None:
    track = TeeAgentAudioTrack(clock=ManualClock())
    await track.push(tone(0.1, 48000))
    out = await receive(track, 5)
    assert np.abs(out).max() > 10000
    track.stop()


@pytest.mark.parametrize("order", ["mixing first", "tee first", "TeeMixing"])
async def test_any_composition_of_tee_and_mixing_keeps_the_background_on_the_wire(order: str) -> None:
    """The wire mute acts on the voice alone, before the background, whatever the base order."""

    class MixingThenTee(MixingAgentAudioTrack, TeeAgentAudioTrack):
        pass

    class TeeThenMixing(TeeAgentAudioTrack, MixingAgentAudioTrack):
        pass

    cls = {"mixing first": MixingThenTee, "tee first": TeeThenMixing, "TeeMixing": TeeMixingAgentAudioTrack}[order]
    # TeeThenMixing gets the tee's constructor, which passes only the base's options on
    # (the background keeps its default ducking): compare against the ducked bed there.
    track = TeeThenMixing(clock=ManualClock()) if cls is TeeThenMixing else cls(duck=0.0, clock=ManualClock())
    assert [type(stage).__name__ for stage in track.stages] == ["SinkTee", "Background"]
    track.set_background(np.full(N, 3000, np.int16))
    sink = Recorder()
    track.add_sink(sink)
    await track.push(np.full(20 * N, 9000, np.int16))
    out = await receive(track, 20)
    bed = 3000 if cls is not TeeThenMixing else round(3000 * 10 ** (-10 / 20))
    assert np.all(np.abs(out[-N:].astype(int) - bed) <= 1)  # the bed alone: the voice went to the sink
    await settle()
    assert len(sink.audio) == 20 * N * 2
    track.stop()


class Exiting:
    """A hostile sink: ``method`` raises ``exc`` (sync or async); it records what it got."""

    def __init__(self, method: str, exc: type[BaseException], *, sync: bool) -> None:
        self.calls: list[str] = []
        self.audio = 0

        def audio(data: bytes) -> None:
            self.calls.append("audio")
            self.audio += len(data)
            if method == "handle_audio_input":
                raise exc("sink says exit")

        def interrupt() -> None:
            self.calls.append("interrupt")
            if method == "on_interrupt":
                raise exc("sink says exit")

        async def audio_async(data: bytes) -> None:
            audio(data)

        async def interrupt_async() -> None:
            interrupt()

        self.handle_audio_input = audio if sync else audio_async
        self.on_interrupt = interrupt if sync else interrupt_async


async def _sink_raising_base_exceptions(method: str, exc: type[BaseException], sync: bool) -> None:
    track = TeeAgentAudioTrack(clock=ManualClock())
    bad, good = Exiting(method, exc, sync=sync), Recorder()
    track.add_sink(bad)
    track.add_sink(good)
    first = track.start_turn()
    await first.push(ramp_signal(2 * N).tobytes())
    await settle()
    await receive(track, 1)
    track.interrupt()
    await settle()
    second = track.start_turn()
    for i in range(3):
        await second.push(ramp_signal(N, start=1 + N * i).tobytes())
    await settle()
    await receive(track, 5)  # the loop goes on and the track keeps playing
    assert second.stats.played_samples == 3 * N
    assert bad.calls == ["audio", "interrupt", "audio", "audio", "audio"]  # still fed after raising
    assert good.calls[-1] == "audio" and len(good.audio) == 5 * N * 2
    assert track.metrics().sink_errors == (3 + 1 if method == "handle_audio_input" else 1)
    track.remove_sink(bad)
    track.remove_sink(good)
    await second.push(ramp_signal(N).tobytes())
    assert np.array_equal(await receive(track, 1), ramp_signal(N))  # the voice is back on the wire
    track.stop()


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
@pytest.mark.parametrize("method", ["handle_audio_input", "on_interrupt"])
def test_a_sink_raising_system_exit_or_keyboard_interrupt_cannot_stop_the_loop(
    method: str, exc: type[BaseException], sync: bool, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        asyncio.run(_sink_raising_base_exceptions(method, exc, sync))
    except (SystemExit, KeyboardInterrupt) as escaped:
        pytest.fail(f"the sink's {escaped!r} escaped and ended asyncio.run")
    assert len([r for r in caplog.records if f"raised in {method}" in r.getMessage()]) == 1
