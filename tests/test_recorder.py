"""Recording what the listener heard (agent_audio._recorder).

Guards: the WAV recording equals, sample for sample, the frames recv() returned
(voice, pause ramps, interrupt fade, mixed background, silence); Ogg/Opus decodes to
the same length within an Opus frame; one recording at a time; bad formats rejected.
"""

from __future__ import annotations

import wave
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


async def test_a_write_error_is_raised_by_stop(tmp_path: Path) -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    recorder = track.start_recording(tmp_path / "missing-folder" / "x.wav")
    with pytest.raises(FileNotFoundError):
        await recorder.stop()
    track.stop()


async def test_stopping_the_track_closes_the_recording(tmp_path: Path) -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    recorder = track.start_recording(tmp_path / "a.wav")
    await receive(track, 3)
    track.stop()
    assert recorder.stopped
    assert read_wav(await recorder.stop())[2].shape == (3 * 960, 1)
