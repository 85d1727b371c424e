"""The output format (agent_audio._format).

Guards: frame length must be a whole number of samples and an Opus frame duration
(2.5, 5, 10, 20, 40 or 60 ms); rates must lie in 8000-192000 Hz (regression: 2**31 gave
OverflowError, 10**12 was accepted; 1000 s frames were accepted); layout names are
FFmpeg's defaults; rates and channel counts are validated with expected-vs-got messages.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from agent_audio import InvalidAudioError
from agent_audio._format import AudioFormat, check_channels, check_sample_rate


def test_default_track_format() -> None:
    fmt = AudioFormat.for_track(sample_rate=48000, channels=1, frame_duration=0.02)
    assert (fmt.frame_samples, fmt.layout, fmt.time_base) == (960, "mono", Fraction(1, 48000))
    assert fmt.frame_duration == 0.02


@pytest.mark.parametrize(("rate", "duration", "samples"), [(16000, 0.01, 160), (44100, 0.02, 882), (8000, 0.06, 480)])
def test_frame_samples(rate: int, duration: float, samples: int) -> None:
    assert AudioFormat.for_track(sample_rate=rate, channels=2, frame_duration=duration).frame_samples == samples


def test_fractional_frames_are_refused() -> None:
    with pytest.raises(InvalidAudioError, match=r"got 0.0025 s \(110.25 samples\)"):
        AudioFormat.for_track(sample_rate=44100, channels=1, frame_duration=0.0025)


@pytest.mark.parametrize("duration", [0.0025, 0.005, 0.01, 0.02, 0.04, 0.06])
@pytest.mark.parametrize("rate", [8000, 16000, 48000, 96000, 192000])
def test_every_opus_frame_duration_is_accepted(rate: int, duration: float) -> None:
    fmt = AudioFormat.for_track(sample_rate=rate, channels=1, frame_duration=duration)
    assert fmt.frame_samples == round(rate * duration)


@pytest.mark.parametrize("duration", [0.001, 0.015, 0.03, 0.1, 1, 1000, 0.02 + 1 / 48000])
def test_frame_durations_opus_cannot_carry_are_refused(duration: float) -> None:
    with pytest.raises(InvalidAudioError, match=r"expected frame_duration as an Opus frame duration \(0.0025, "):
        AudioFormat.for_track(sample_rate=48000, channels=1, frame_duration=duration)


@pytest.mark.parametrize("duration", [True, "0.02", None, float("nan"), float("inf")])
def test_frame_duration_must_be_finite_seconds(duration: object) -> None:
    with pytest.raises(InvalidAudioError, match="expected frame_duration in seconds"):
        AudioFormat.for_track(sample_rate=48000, channels=1, frame_duration=duration)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [1, 4000, 7999, 192001, 2**31, 10**12])
def test_rates_outside_8000_to_192000_hz_are_refused(rate: int) -> None:
    with pytest.raises(InvalidAudioError, match=f"expected sample_rate from 8000 to 192000 Hz, got {rate} Hz"):
        AudioFormat.for_track(sample_rate=rate, channels=1, frame_duration=0.02)
    with pytest.raises(InvalidAudioError, match=f"expected voice rate from 8000 to 192000 Hz, got {rate} Hz"):
        check_sample_rate(rate, what="voice rate")


@pytest.mark.parametrize("value", [True, 1.5, "48000", None])
def test_rate_must_be_an_int(value: object) -> None:
    with pytest.raises(InvalidAudioError, match="expected sample_rate as a positive int in Hz"):
        check_sample_rate(value)


def test_channel_layouts() -> None:
    assert [AudioFormat(48000, c, 960).layout for c in (1, 2, 6, 8)] == ["mono", "stereo", "5.1", "7.1"]
    with pytest.raises(InvalidAudioError):
        check_channels(True)
