"""Reliability regressions of issue 15, items 1-3, through the public track API on the manual clock.

Guards:
- item 1, no hang on ``stop()``: while a push waits on ``max_queued``, while a long push
  is between slices, or while an encoded stream is open on a turn that was not ended
  (every format), ``stop()`` finishes the turn with exactly one ``turn_finished``
  (``interrupted=True``), the push returns and ``wait_for_playout()`` returns; every
  wait is bounded with :func:`asyncio.wait_for`, so a regression fails instead of hanging;
- item 2, no stale speech after a pause during the fade: the fade plays on exactly as
  without the pause, the interrupted turn finishes within the fade plus one frame, and
  ``resume()`` plays nothing of it (audio of a later turn waits for the resume);
- item 3, no click of a reply nobody heard: ``interrupt()`` before the turn's first frame
  (or during an underrun) drops it at once: nothing played, no ``playout_started``,
  silent frames; ``pause()`` then ``interrupt()`` before anything played gives frames of
  exact zeros (no 5 ms blip).
"""

from __future__ import annotations

import asyncio
import io
import math
import wave
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agent_audio import (
    AgentAudioTrack,
    Interrupted,
    MixingAgentAudioTrack,
    PlayoutStarted,
    TeeAgentAudioTrack,
    TeeMixingAgentAudioTrack,
    TrackClosedError,
    Turn,
    TurnFinished,
)
from agent_audio.testing import ManualClock

from helpers import encoded_speech, ramp_signal, receive

RATE = 48000
FRAME = 960
FADE = round(0.2 * RATE)
FADE_FRAMES = math.ceil(FADE / FRAME)
BOUND = 2.0  # seconds of real time any wait may take before the test fails

CLASSES = [AgentAudioTrack, MixingAgentAudioTrack, TeeAgentAudioTrack, TeeMixingAgentAudioTrack]


class Log:
    """Every event a track emitted, by name, in order."""

    def __init__(self, track: AgentAudioTrack) -> None:
        self.events: dict[str, list[Any]] = {}
        for name in ("playout_started", "turn_finished", "interrupted", "paused", "resumed", "underrun"):
            track.on(name, self._keep(name))

    def _keep(self, name: str) -> Callable[[Any], None]:
        def keep(payload: Any) -> None:
            self.events.setdefault(name, []).append(payload)

        return keep

    def __getitem__(self, name: str) -> list[Any]:
        return self.events.get(name, [])

    def finished(self, turn: Turn) -> list[TurnFinished]:
        return [e for e in self["turn_finished"] if e.turn_id == turn.id]


def conserved(turn: Turn) -> None:
    s = turn.stats
    assert s.pushed_samples == s.played_samples + s.dropped_samples + s.queued_samples, s


async def settle() -> None:
    """Let deferred events (scheduled with call_soon) be delivered."""
    for _ in range(3):
        await asyncio.sleep(0)


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Run the loop until ``predicate()``; fail after BOUND seconds of real time."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 - set by other tasks or a decoder thread
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(poll(), BOUND)
    except asyncio.TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def assert_stopped_cleanly(track: AgentAudioTrack, log: Log, turn: Turn) -> None:
    """After stop(): the turn finished once, interrupted, and its wait returns."""
    assert turn.finished and turn.interrupted
    assert len(log.finished(turn)) == 1, log["turn_finished"]
    stats = await asyncio.wait_for(turn.wait_for_playout(), BOUND)
    assert stats.finished and stats.interrupted
    conserved(turn)
    assert track.metrics().queued_samples == 0


# -- item 1: stop() never hangs -----------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
async def test_stop_while_a_push_waits_on_max_queued_returns_and_finishes_the_turn(
    cls: type[AgentAudioTrack],
) -> None:
    track = cls(clock=ManualClock(), max_queued=0.1)
    log = Log(track)
    turn = track.start_turn()
    push = asyncio.ensure_future(turn.push(np.full(RATE, 0.25, np.float32)))
    await until(lambda: track.metrics().queued_samples > 0.1 * RATE, "the push to fill the queue")
    for _ in range(5):
        await asyncio.sleep(0)
    assert not push.done(), "the push should be waiting for room"
    track.stop()
    await asyncio.wait_for(push, BOUND)
    await assert_stopped_cleanly(track, log, turn)


@pytest.mark.parametrize("cls", CLASSES)
async def test_stop_during_a_long_push_between_slices_returns_and_finishes_the_turn(
    cls: type[AgentAudioTrack],
) -> None:
    track = cls(clock=ManualClock())
    log = Log(track)
    turn = track.start_turn()
    push = asyncio.ensure_future(turn.push(np.full(4 * 24000, 0.25, np.float32), sample_rate=24000))
    await until(lambda: turn.stats.pushed_samples > 0, "the first slice")
    assert not push.done(), "the push should be between slices"
    track.stop()
    await asyncio.wait_for(push, BOUND)
    await assert_stopped_cleanly(track, log, turn)
    assert turn.stats.pushed_samples < 4 * RATE  # it stopped early


def wav_bytes(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(ramp_signal(round(seconds * 24000)).tobytes())
    return out.getvalue()


STREAMS: dict[str, tuple[str, Callable[[], bytes], dict[str, int]]] = {
    "pcm_s16le": ("pcm_s16le", lambda: ramp_signal(24000).tobytes(), {"sample_rate": 24000}),
    "wav": ("wav", lambda: wav_bytes(1.0), {}),
    "mp3": ("mp3", lambda: encoded_speech("mp3"), {}),
    "opus": ("ogg", lambda: encoded_speech("opus"), {}),
    "flac": ("flac", lambda: encoded_speech("flac"), {}),
    "aac": ("aac", lambda: encoded_speech("aac"), {}),
}


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("decoded", [False, True], ids=["at-once", "after-decoding"])
async def test_stop_with_an_encoded_stream_open_on_a_turn_not_ended(name: str, decoded: bool) -> None:
    fmt, data, options = STREAMS[name]
    track = AgentAudioTrack(clock=ManualClock())
    log = Log(track)
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    turn = track.start_turn()
    stream = turn.open_encoded(fmt, **options)
    raw = data()
    await stream.push(raw[: len(raw) // 2])
    if decoded:
        await until(lambda: turn.stats.pushed_samples > 0, "the first decoded samples")
        await receive(track, 2)
    assert not turn.ended and turn.decoding
    track.stop()
    await assert_stopped_cleanly(track, log, turn)
    with pytest.raises(TrackClosedError):
        await stream.push(raw[len(raw) // 2 :])
    await until(lambda: stream.finished, "the aborted decoder to finish")
    await settle()
    assert not errors, errors
    assert len(log.finished(turn)) == 1


async def test_stop_releases_every_turn_and_every_push_at_once() -> None:
    """Two turns, one push waiting for room, one waiting for the push lock, one stream open."""
    track = AgentAudioTrack(clock=ManualClock(), max_queued=0.05)
    log = Log(track)
    first = track.start_turn()
    waiting = asyncio.ensure_future(first.push(np.full(RATE, 0.25, np.float32)))
    await until(lambda: track.metrics().queued_samples > 0.05 * RATE, "the queue to fill")
    queued_behind = asyncio.ensure_future(first.push(np.full(RATE, 0.25, np.float32)))
    for _ in range(3):
        await asyncio.sleep(0)
    second = track.start_turn()
    stream = second.open_encoded("pcm_s16le", sample_rate=24000)
    await receive(track, 2)
    track.stop()
    results = await asyncio.wait_for(asyncio.gather(waiting, queued_behind, return_exceptions=True), BOUND)
    assert results[0] is None
    assert results[1] is None or isinstance(results[1], TrackClosedError), results[1]
    for turn in (first, second):
        await assert_stopped_cleanly(track, log, turn)
    await until(lambda: stream.finished, "the aborted stream to finish")


# -- item 2: a pause during the fade does not freeze it -----------------------------


async def speak_and_barge_in(track: AgentAudioTrack, frames: int) -> Turn:
    turn = track.start_turn()
    await turn.push(ramp_signal(RATE))
    await receive(track, frames)
    track.interrupt()
    return turn


async def test_interrupt_then_pause_during_the_fade_finishes_the_turn_and_resume_plays_nothing_of_it() -> None:
    reference = AgentAudioTrack(clock=ManualClock())
    await speak_and_barge_in(reference, 3)
    expected = await receive(reference, FADE_FRAMES + 1)
    reference.stop()

    track = AgentAudioTrack(clock=ManualClock())
    log = Log(track)
    turn = await speak_and_barge_in(track, 3)
    out = [await receive(track, 1)]
    track.pause()
    assert track.is_paused
    out.append(await receive(track, FADE_FRAMES))  # fade + 1 frame since the interrupt
    await settle()
    assert np.array_equal(np.concatenate(out), expected), "the fade must play on as without the pause"
    assert turn.finished and len(log.finished(turn)) == 1
    played = turn.stats.played_samples
    assert played == 3 * FRAME + FADE
    stats = await asyncio.wait_for(turn.wait_for_playout(), BOUND)
    assert stats.interrupted
    assert not (await receive(track, 5)).any()
    track.resume()
    after = await receive(track, 5)
    assert not after.any(), "resume() must play nothing of the interrupted turn"
    assert turn.stats.played_samples == played
    track.stop()


async def test_audio_of_a_later_turn_waits_for_resume_after_a_pause_during_the_fade() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    old = await speak_and_barge_in(track, 2)
    await receive(track, 1)
    track.pause()
    new = track.start_turn()
    await new.push(ramp_signal(3 * FRAME, start=5000))
    await receive(track, FADE_FRAMES + 3)
    assert old.finished and new.stats.played_samples == 0
    track.resume()
    out = await receive(track, 3)
    assert new.stats.played_samples == 3 * FRAME
    assert np.array_equal(out[FRAME:], ramp_signal(2 * FRAME, start=5000 + FRAME))  # after the 5 ms ramp-up
    assert old.stats.played_samples == 2 * FRAME + FADE
    track.stop()


# -- item 3: no click of a reply nobody heard ---------------------------------------


async def test_interrupt_before_the_first_frame_plays_nothing() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    log = Log(track)
    turn = track.start_turn()
    await turn.push(ramp_signal(RATE))
    track.interrupt()
    out = await receive(track, FADE_FRAMES + 2)
    await settle()
    assert not out.any()
    s = turn.stats
    assert s.played_samples == 0 and s.dropped_samples == RATE and s.finished and s.interrupted
    assert log["playout_started"] == []
    interrupted: list[Interrupted] = log["interrupted"]
    assert [(e.turn_ids, e.fade_samples, e.dropped_samples) for e in interrupted] == [((turn.id,), 0, RATE)]
    assert len(log.finished(turn)) == 1
    track.stop()


async def test_pause_then_interrupt_before_anything_played_gives_exact_zeros() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    log = Log(track)
    turn = track.start_turn()
    await turn.push(ramp_signal(RATE))
    track.pause()
    track.interrupt()
    assert not track.is_paused
    out = await receive(track, 5)
    await settle()
    assert not out.any(), "no blip of the pause ramp"
    assert turn.stats.played_samples == 0 and turn.finished
    assert log["playout_started"] == []
    track.stop()


async def test_pause_before_anything_played_holds_at_once() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    log = Log(track)
    turn = track.start_turn()
    await turn.push(ramp_signal(RATE))
    track.pause()
    assert not (await receive(track, 3)).any()
    await settle()
    assert turn.stats.played_samples == 0 and log["playout_started"] == []
    track.resume()
    out = await receive(track, 2)
    assert out[FRAME:].any() and turn.stats.played_samples == 2 * FRAME
    track.stop()


async def test_interrupt_during_an_underrun_drops_at_once() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    log = Log(track)
    turn = track.start_turn()
    await turn.push(ramp_signal(FRAME))
    await receive(track, 2)  # the second frame is an underrun: silence
    await turn.push(ramp_signal(RATE // 2))
    track.interrupt()
    assert not (await receive(track, 3)).any()
    await settle()
    assert turn.stats.played_samples == FRAME and turn.finished
    started: list[PlayoutStarted] = log["playout_started"]
    assert [e.turn_id for e in started] == [turn.id]
    assert [e.fade_samples for e in log["interrupted"]] == [0]
    track.stop()


async def test_a_reply_heard_before_the_interrupt_still_fades() -> None:
    """The contrast to the above: once the listener hears the turn, the interrupt fades it."""
    track = AgentAudioTrack(clock=ManualClock())
    log = Log(track)
    turn = await speak_and_barge_in(track, 1)
    out = await receive(track, FADE_FRAMES + 1)
    await settle()
    assert out[:FRAME].any() and not out[FADE:].any()
    assert [e.fade_samples for e in log["interrupted"]] == [FADE]
    assert turn.stats.played_samples == FRAME + FADE
    track.stop()
