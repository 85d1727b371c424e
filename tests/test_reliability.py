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
    VoiceTap,
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


# -- found in review of the composed shell ------------------------------------------------


async def _drain(turn: Turn, seconds: float = 5.0) -> None:
    for _ in range(round(seconds / 0.005)):
        if not turn.decoding:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"turn {turn.id} still decoding after {seconds} s")


async def test_a_stream_opened_on_an_interrupted_turn_finishes_the_turn() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(np.full(4800, 1000, np.int16))
    track.interrupt()
    stream = turn.open_encoded("mp3")  # a stale TTS task opening the next sentence
    await stream.push(encoded_speech("mp3")[:2000])
    turn.end()
    stats = await asyncio.wait_for(turn.wait_for_playout(), 5)
    assert stats.interrupted and stats.played_samples == 0
    track.stop()


async def test_turn_less_pushes_after_an_interrupt_are_dropped_until_the_turn_is_ended() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(np.full(4800, 1000, np.int16))
    await track.recv()
    track.interrupt()
    await receive(track, 15)  # well past the fade: the turn has finished
    assert turn.finished
    await track.push(np.full(960, 9000, np.int16))  # still the stale task: dropped, not a new turn
    assert track.current_turn is turn and turn.stats.dropped_samples >= 960
    turn.end()
    await track.push(np.full(960, 2000, np.int16))  # the next reply
    assert track.current_turn is not turn
    assert np.array_equal(await receive(track, 1), np.full((960, 1), 2000, np.int16))
    track.stop()


async def test_a_turn_never_overtakes_the_previous_turns_stream_still_decoding() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    started: dict[int, int] = {}
    track.on("playout_started", lambda e: started.setdefault(e.turn_id, e.pts))
    first = track.start_turn()
    stream = first.open_encoded("mp3")
    await stream.push(encoded_speech("mp3"))
    second = track.start_turn()  # ends the first turn; its stream is still decoding
    await second.push(np.full(9600, 3000, np.int16))
    second.end()
    await _drain(first)
    await receive(track, 170)
    await asyncio.sleep(0)
    assert started[1] == 0 and started[2] == first.stats.pushed_samples  # the second follows the first
    assert (await asyncio.wait_for(second.wait_for_playout(), 1)).played_samples == 9600
    track.stop()


async def test_several_streams_in_one_turn_queue_in_order_and_place_their_words() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    data = encoded_speech("mp3")
    first = turn.open_encoded("mp3")
    await first.push(data, words=[("one", 0.0, 1.0)])
    first.end()
    second = turn.open_encoded("mp3")  # the first is still decoding: the second queues behind it
    await second.push(data, words=[("two", 0.0, 1.0)])
    second.end()
    turn.end()
    await _drain(turn)
    await receive(track, 320)
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    half = stats.pushed_samples / 2 * 1000 / 48000
    assert [w.text for w in stats.heard_words] == ["one", "two"]
    assert stats.heard_words[1].start_ms == pytest.approx(half, abs=1.0)  # at the second stream's start
    track.stop()


async def test_encoded_words_are_relative_to_their_own_chunk() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    data = encoded_speech("opus")
    half = len(data) // 2
    await turn.push_encoded(data[:half], format="ogg", words=[("early", 0.0, 0.5)])
    await turn.push_encoded(data[half:], format="ogg", words=[("late", 0.0, 0.5)])
    turn.end()
    await _drain(turn)
    await receive(track, 170)
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert [w.text for w in stats.heard_words] == ["early", "late"]
    assert 1000.0 < stats.heard_words[1].start_ms < 2000.0  # where the second chunk's audio begins
    track.stop()


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
async def test_a_bounded_push_returns_once_the_decoder_gave_up(fmt: str) -> None:
    track = AgentAudioTrack(clock=ManualClock(), max_queued=0.5)
    turn = track.start_turn()
    stream = turn.open_encoded(fmt)
    junk = b"NOTAWAVE" * 512  # 4 KB: 8 pieces
    await asyncio.wait_for(stream.push(junk), 5)
    await asyncio.wait_for(stream.push(junk), 5)
    track.stop()


async def test_a_handler_that_stops_the_track_loses_no_event() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    got: list[object] = []

    def stop_on_interrupt(event: Interrupted) -> None:
        got.append("interrupted")
        track.stop()

    track.on("interrupted", stop_on_interrupt)
    track.on("turn_finished", lambda e: got.append(("turn_finished", e.turn_id)))
    turn = track.start_turn()
    await turn.push(np.full(4800, 1000, np.int16))
    track.pause()
    await track.recv()
    track.interrupt()
    await asyncio.sleep(0.01)
    assert got == ["interrupted", ("turn_finished", 1)]


async def test_push_threadsafe_carries_words() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    future = track.push_threadsafe(np.full(4800, 1000, np.int16), turn=turn, words=[("hello", 0.0, 0.05)])
    await asyncio.wrap_future(future)
    turn.end()
    await receive(track, 6)
    assert (await asyncio.wait_for(turn.wait_for_playout(), 1)).heard_text == "hello"
    track.stop()


async def test_a_tap_raising_system_exit_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    class Exiting(VoiceTap):
        def voice_queued(self, turn_id: int, samples: np.ndarray) -> None:
            raise SystemExit("tap says exit")

    track = AgentAudioTrack(clock=ManualClock(), taps=[Exiting()])
    await track.push(np.full(960, 1000, np.int16))
    assert np.array_equal(await receive(track, 1), np.full((960, 1), 1000, np.int16))
    assert any("tap" in r.getMessage() for r in caplog.records)
    track.stop()


async def test_max_queued_bounds_audio_held_behind_a_decoding_stream_without_deadlock() -> None:
    track = AgentAudioTrack(clock=ManualClock(), max_queued=0.3)
    first = track.start_turn()
    stream = first.open_encoded("mp3")
    feeding = asyncio.ensure_future(stream.push(encoded_speech("mp3")))  # bounded: waits for room
    await asyncio.sleep(0.05)
    second = track.start_turn()  # ends the first turn; its stream is still feeding
    pushing = asyncio.ensure_future(second.push(np.full(48000 * 3, 1000, np.int16)))  # 3 s, held behind it
    peak = 0
    for _ in range(5000):  # the decoder works in real time: give it a millisecond per virtual frame
        await track.recv()
        await asyncio.sleep(0.001)
        peak = max(peak, track.metrics().queued_samples)
        if feeding.done() and pushing.done():
            break
    await asyncio.wait_for(asyncio.gather(feeding, pushing), 5)
    second.end()
    await receive(track, 200)
    assert (await asyncio.wait_for(second.wait_for_playout(), 5)).played_samples == 48000 * 3
    assert (await asyncio.wait_for(first.wait_for_playout(), 5)).played_samples == first.stats.pushed_samples
    assert peak <= round(0.3 * 48000) + 2 * 12000  # the bound, plus a slice and a decoded piece
    track.stop()
