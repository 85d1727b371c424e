"""MixingAgentAudioTrack (agent_audio._mixing), on the manual clock.

Guards:
- the background is exactly continuous through pause, resume and interrupt (no gap, no
  fade): the mixed output minus the voice of an identical voice-only track is the bed,
  sample for sample;
- ducking lowers the bed by ``duck`` dB while the voice plays and releases after;
- a one-shot plays once and its handle resolves; stop() fades it and resolves;
- a streamed background plays in real time, silence when dry;
- volume changes ramp (no jump); replacing or removing the bed fades;
- counters count voice samples only; bad options and volumes are refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from agent_audio import AgentAudioTrack, InvalidAudioError, MixingAgentAudioTrack, OutputFrame, TrackClosedError
from agent_audio.testing import ManualClock

from helpers import ramp_signal, receive

N = 960


async def _drive(track: AgentAudioTrack) -> np.ndarray:
    """The same voice script on any track: speak, pause, resume, interrupt."""
    turn = track.start_turn()
    await turn.push(ramp_signal(100 * N, start=7).tobytes())
    out = [await receive(track, 5)]
    track.pause()
    out.append(await receive(track, 5))
    track.resume()
    out.append(await receive(track, 5))
    track.interrupt()
    out.append(await receive(track, 20))
    return np.concatenate(out).astype(np.int32)


async def test_background_is_continuous_through_pause_and_interrupt() -> None:
    bed = (np.random.default_rng(1).uniform(-0.2, 0.2, 3001) * 32767).astype(np.int16)
    mixing = MixingAgentAudioTrack(duck=0.0, clock=ManualClock())
    mixing.set_background(bed, loop=True)
    mixed = await _drive(mixing)
    voice = await _drive(AgentAudioTrack(clock=ManualClock()))
    background = (mixed - voice)[:, 0]
    expected = np.resize(bed, len(background)).astype(np.int32)
    fade_in = 2400  # 50 ms
    assert np.array_equal(background[fade_in:], expected[fade_in:])
    assert np.all(np.abs(background[:fade_in]) <= np.abs(expected[:fade_in]))
    mixing.stop()


async def test_ducking_lowers_the_bed_while_the_voice_plays() -> None:
    track = MixingAgentAudioTrack(duck=-10.0, duck_attack=0.03, duck_release=0.09, clock=ManualClock())
    track.set_background(np.full(N, 0.25, np.float32))
    before = await receive(track, 5)
    await track.push(np.zeros(20 * N, np.int16))  # a silent voice: the mix shows the bed alone
    during = await receive(track, 20)
    track.end_turn()
    after = await receive(track, 10)
    full = round(0.25 * 32768)
    assert before[-1, 0] == full
    assert during[-1, 0] == round(full * 10 ** (-10 / 20))
    assert after[-1, 0] == full
    track.stop()


async def test_counters_count_voice_only() -> None:
    track = MixingAgentAudioTrack(clock=ManualClock())
    track.set_background(np.full(N, 0.5, np.float32))
    turn = track.start_turn()
    await turn.push(ramp_signal(3 * N).tobytes())
    turn.end()
    await receive(track, 10)
    stats = await turn.wait_for_playout()
    assert stats.played_samples == stats.pushed_samples == 3 * N
    track.stop()


async def test_one_shot_plays_once_and_resolves() -> None:
    track = MixingAgentAudioTrack(clock=ManualClock())
    handle = track.play_sound(ramp_signal(1500).tobytes())
    assert handle.duration == pytest.approx(1500 / 48000)
    out = await receive(track, 3)
    assert np.array_equal(out[:1500], ramp_signal(1500)) and not out[1500:].any()
    await asyncio.wait_for(handle.wait(), 1)
    assert handle.done
    other = track.play_sound(np.full(48000, 0.1, np.float32))
    await receive(track, 1)
    other.stop()
    await receive(track, 3)
    await asyncio.wait_for(other, 1)
    track.stop()


async def test_streamed_background_plays_in_real_time() -> None:
    track = MixingAgentAudioTrack(duck=0.0, clock=ManualClock())
    await track.push_background(ramp_signal(1500).tobytes())
    track.set_stream_volume(1.0)
    out = await receive(track, 3)
    assert np.array_equal(out[:1500], ramp_signal(1500)) and not out[1500:].any()
    with pytest.raises(InvalidAudioError):
        await track.push_background(np.array([np.nan]))
    track.stop()


async def test_volume_change_ramps_and_stop_fades() -> None:
    track = MixingAgentAudioTrack(clock=ManualClock())
    track.set_background(np.full(N, 0.5, np.float32))
    await receive(track, 5)
    track.set_background_volume(0.1)
    out = (await receive(track, 2))[:, 0].astype(np.int32)
    assert np.abs(np.diff(out)).max() < 30  # 20 ms linear ramp: no jump
    assert out[-1] == round(0.1 * 0.5 * 32768)
    track.set_background(None)
    tail = (await receive(track, 4))[:, 0]
    assert tail[0] != 0 and not tail[2400:].any()  # faded over 50 ms, then gone
    track.stop()


async def test_bad_options_and_volumes_are_refused(tmp_path: object) -> None:
    with pytest.raises(InvalidAudioError, match="expected duck >= -60 and <= 0 dB, got 6"):
        MixingAgentAudioTrack(duck=6)
    with pytest.raises(InvalidAudioError, match="expected duck_attack >= 0 and <= 5 seconds"):
        MixingAgentAudioTrack(duck_attack=-1)
    track = MixingAgentAudioTrack(clock=ManualClock())
    with pytest.raises(InvalidAudioError, match=r"expected volume >= 0 and <= 100 \(linear gain.*got -1"):
        track.set_background(np.zeros(10, np.int16), volume=-1)
    with pytest.raises(InvalidAudioError, match="got an empty one"):
        track.play_sound(np.zeros(0, np.int16))
    with pytest.raises(FileNotFoundError):
        track.set_background("/no/such/ambience.ogg")
    track.stop()


class Louder:
    """An output stage that doubles the voice and hands on a bound that still holds."""

    def process(self, frame: OutputFrame) -> OutputFrame:
        doubled = np.clip(frame.samples.astype(np.int32) * 2, -32768, 32767).astype(np.int16)
        return frame._replace(samples=doubled, peak=min(32768, 2 * frame.peak))


class Halve:
    def process(self, frame: OutputFrame) -> OutputFrame:
        return frame._replace(samples=frame.samples // 2, peak=frame.peak // 2 + 1)


async def test_a_stage_that_amplifies_the_voice_still_clips_instead_of_wrapping() -> None:
    track = MixingAgentAudioTrack(duck=0.0, clock=ManualClock(), stages=[Louder()])
    track.set_background(np.full(N, 5000, np.int16))
    await track.push(np.full(40 * N, 15000, np.int16))
    out = await receive(track, 40)
    assert np.all(out[-N:] == 32767)  # 30000 + 5000 saturates; never wraps negative
    track.stop()


async def test_user_stages_run_in_order_before_the_background() -> None:
    track = MixingAgentAudioTrack(duck=0.0, clock=ManualClock(), stages=[Halve(), Louder()])
    assert [type(stage).__name__ for stage in track.stages] == ["Halve", "Louder", "Background"]
    track.set_background(np.full(N, 4000, np.int16))
    await track.push(np.full(40 * N, 10000, np.int16))
    out = await receive(track, 40)
    assert np.all(out[-N:] == 14000)  # 10000 // 2 * 2, then the bed under it
    track.stop()


@pytest.mark.realclock
async def test_clips_from_files_load_off_the_loop_without_stalling_playout() -> None:
    """set_background/play_sound with a 6 s file mid-turn: the call returns at once, no re-anchor."""
    import time
    from importlib import resources

    track = MixingAgentAudioTrack()  # the real clock
    await track.push(np.full(48000 * 3, 1000, np.int16))
    for _ in range(10):
        await track.recv()
    with resources.as_file(resources.files("agent_audio") / "data" / "ambience.ogg") as path:
        started = time.perf_counter()
        loading = track.set_background(path)
        sound = track.play_sound(path, volume=0.5)
        blocked = time.perf_counter() - started
        assert not loading.done  # decoding runs on a worker thread
        for _ in range(25):
            await track.recv()
        await asyncio.wait_for(loading, 5)
        await asyncio.wait_for(sound.loading, 5)
    assert blocked < 0.005
    assert sound.duration == pytest.approx(6.0, abs=0.05)
    frames = [await track.recv() for _ in range(5)]
    assert np.abs(frames[-1].to_ndarray()).max() > 1000  # the voice and the layers are mixed
    assert track.metrics().reanchors == 0
    track.stop()


async def test_clip_paths_that_cannot_be_audio_are_refused_at_once(tmp_path: Path) -> None:
    track = MixingAgentAudioTrack(clock=ManualClock())
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    for bad, message in ((tmp_path, "got a directory"), (empty, "got an empty file")):
        with pytest.raises(InvalidAudioError, match=message):
            track.set_background(bad)
        with pytest.raises(InvalidAudioError, match=message):
            track.play_sound(bad)
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("hello")
    with pytest.raises(InvalidAudioError, match="expected an audio file PyAV can decode"):
        await track.set_background(not_audio)  # decoded on the loader thread: the ClipLoad raises
    track.stop()
    with pytest.raises(TrackClosedError):
        track.set_background(np.zeros(10, np.int16))


async def test_a_background_replaced_before_it_loaded_is_never_installed() -> None:
    from importlib import resources

    track = MixingAgentAudioTrack(duck=0.0, clock=ManualClock())
    with resources.as_file(resources.files("agent_audio") / "data" / "ambience.ogg") as path:
        first = track.set_background(path)  # decoded on the loader thread...
        second = track.set_background(np.full(N, 2500, np.int16))  # ...but this one wins at once
        await asyncio.wait_for(first, 5)
        await asyncio.wait_for(second, 5)
    out = await receive(track, 10)
    assert np.all(out[-N:] == 2500)  # the ambience never joined the mix
    track.stop()


async def test_a_sound_still_loading_when_the_track_stops_resolves() -> None:
    from importlib import resources

    track = MixingAgentAudioTrack(clock=ManualClock())
    with resources.as_file(resources.files("agent_audio") / "data" / "ambience.ogg") as path:
        blocker = track.play_sound(path)  # keeps the loader thread busy
        sound = track.play_sound(path)
        track.stop()
        await asyncio.wait_for(blocker.wait(), 5)
        await asyncio.wait_for(sound.wait(), 5)  # skipped, never decoded: the handle still resolves
    assert sound.done and blocker.done
