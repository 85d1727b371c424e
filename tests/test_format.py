"""The output format (agent_audio._format).

Guards: frame length must be a whole number of samples; layout names are FFmpeg's
defaults; rates and channel counts are validated with expected-vs-got messages.
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
    with pytest.raises(InvalidAudioError, match=r"got 0.0001 s \(4.41 samples\)"):
        AudioFormat.for_track(sample_rate=44100, channels=1, frame_duration=0.0001)


@pytest.mark.parametrize("value", [True, 1.5, "48000", None])
def test_rate_must_be_an_int(value: object) -> None:
    with pytest.raises(InvalidAudioError, match="expected sample_rate as a positive int in Hz"):
        check_sample_rate(value)


def test_channel_layouts() -> None:
    assert [AudioFormat(48000, c, 960).layout for c in (1, 2, 6, 8)] == ["mono", "stereo", "5.1", "7.1"]
    with pytest.raises(InvalidAudioError):
        check_channels(True)
