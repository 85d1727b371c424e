"""Recording what the listener heard (agent_audio._recorder).

Guards: the WAV recording equals, sample for sample, the frames recv() returned
(voice, pause ramps, interrupt fade, mixed background, silence); Ogg/Opus decodes to
the same length within an Opus frame; one recording at a time; bad formats rejected;
a path that cannot be written fails at start_recording() (regression: it returned and
the error came only at stop()); a write error later (disk full) stops the recording by
itself, so frames stop piling up in memory (regression: every frame was kept, about
350 MB per hour), logged once and raised by stop().
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from agent_audio import AgentAudioError, AgentAudioTrack, InvalidAudioError, MixingAgentAudioTrack
from agent_audio.testing import ManualClock

from helpers import receive, tone

RATE = 48000


def read_wav(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as reader:
        data = np.frombuffer(reader.readframes(reader.getnframes()), "<i2")
        return reader.getframerate(), reader.getnchannels(), data.reshape(-1, reader.getnchannels())


@pytest.mark.parametrize("channels", [1, 2])
async def test_wav_recording_equals_the_frames_recv_returned(tmp_path: Path, channels: int) -> None:
    track = AgentAudioTrack(sample_rate=RATE, channels=channels, clock=ManualClock())
    await receive(track, 3)  # not recorded: before start
    recorder = track.start_recording(tmp_path / "heard.wav")
    voice = (tone(1.0, RATE) * 0.8).astype(np.float32)
    await track.push(voice if channels == 1 else np.repeat(voice[:, None], 2, axis=1))
    heard = [await receive(track, 10)]
    track.pause()
    heard.append(await receive(track, 5))
    track.resume()
    heard.append(await receive(track, 10))
    track.interrupt()
    heard.append(await receive(track, 20))  # fade, then silence
    path = await recorder.stop()
    heard.append(await receive(track, 3))  # not recorded: after stop
    rate, got_channels, data = read_wav(path)
    assert (rate, got_channels) == (RATE, channels)
    assert recorder.frames == 45
    assert recorder.duration == pytest.approx(0.9)
    assert np.array_equal(data, np.concatenate(heard[:-1]))
    track.stop()


async def test_recording_a_mixing_track_has_the_background_in_it(tmp_path: Path) -> None:
    track = MixingAgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    track.set_background(tone(0.5, RATE, freq=200.0, amplitude=0.2), sample_rate=RATE)
    recorder = track.start_recording(tmp_path / "mix.wav", format="wav")
    heard = await receive(track, 30)
    _, _, data = read_wav(await recorder.stop())
    assert np.array_equal(data, heard)
    assert np.abs(data).max() > 1000  # the bed, not silence
    track.stop()


async def test_ogg_opus_recording_decodes_to_the_same_length(tmp_path: Path) -> None:
    track = AgentAudioTrack(sample_rate=24000, clock=ManualClock())
    recorder = track.start_recording(tmp_path / "heard.ogg")
    await track.push(tone(0.5, 24000))
    await receive(track, 50)  # 1 s
    path = await recorder.stop()
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].rate
    assert rate == 48000
    assert abs(samples - 48000) <= 960  # one Opus frame
    track.stop()


async def test_one_recording_at_a_time_and_formats_checked(tmp_path: Path) -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    with pytest.raises(InvalidAudioError, match=r"expected a recording format in \['wav', 'ogg'\], got 'mp3'"):
        track.start_recording(tmp_path / "x.mp3")
    first = track.start_recording(tmp_path / "a.wav")
    with pytest.raises(AgentAudioError, match="expected no recording running"):
        track.start_recording(tmp_path / "b.wav")
    await first.stop()
    second = track.start_recording(tmp_path / "b.wav")
    await receive(track, 2)
    await second.stop()
    assert read_wav(tmp_path / "b.wav")[2].shape == (1920, 1)
    assert read_wav(tmp_path / "a.wav")[2].shape == (0, 1)
    track.stop()


@pytest.mark.parametrize("name", ["missing-folder/x.wav", "missing-folder/x.ogg", "."])
async def test_a_path_that_cannot_be_written_fails_at_once(tmp_path: Path, name: str) -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    with pytest.raises(OSError):  # FileNotFoundError, IsADirectoryError
        track.start_recording(tmp_path / name, format="wav" if name == "." else None)
    assert not (tmp_path / "missing-folder").exists()
    recorder = track.start_recording(tmp_path / "ok.wav")  # nothing was left running
    await receive(track, 2)
    assert read_wav(await recorder.stop())[2].shape == (1920, 1)
    track.stop()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (polling the loop) until ``predicate()``, set by the writer thread; fail after ``timeout`` s."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 - the condition is set by the writer thread
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to fail writes with ENOSPC")
@pytest.mark.parametrize("format", ["wav", "ogg"])
async def test_a_write_error_stops_the_recording_and_frames_stop_piling_up(
    format: str, caplog: pytest.LogCaptureFixture
) -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    await track.push(tone(4.0, RATE))
    recorder = track.start_recording("/dev/full", format=format)  # opens; every write fails: disk full
    with caplog.at_level(logging.ERROR, logger="agent_audio"):
        # 3 s: more than the file's and PyAV's write buffers hold, so the writer reaches the disk.
        await receive(track, 150)
        await until(lambda: recorder.error is not None)
        assert isinstance(recorder.error, OSError)
        assert recorder.stopped
        frames = recorder.frames
        assert frames <= 150
        await receive(track, 100)
        assert recorder.frames == frames  # no longer taken, so nothing piles up
    assert len([r for r in caplog.records if "recording to /dev/full failed" in r.getMessage()]) == 1
    with pytest.raises(OSError) as info:
        await recorder.stop()
    assert info.value is recorder.error
    second = track.start_recording("/dev/full", format="wav")  # a failed recording does not block the next
    second.close()
    track.stop()


async def test_stopping_the_track_closes_the_recording(tmp_path: Path) -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    recorder = track.start_recording(tmp_path / "a.wav")
    await receive(track, 3)
    track.stop()
    assert recorder.stopped
    assert read_wav(await recorder.stop())[2].shape == (3 * 960, 1)
