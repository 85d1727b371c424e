"""The track's fixed output format: packed s16 at one sample rate and channel count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ._errors import InvalidAudioError

__all__ = [
    "FRAME_DURATIONS_MS",
    "LAYOUTS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioFormat",
    "check_channels",
    "check_sample_rate",
]

#: Lowest sample rate accepted (Hz), for the track and for pushed audio: Opus's narrowband rate.
MIN_SAMPLE_RATE = 8000
#: Highest sample rate accepted (Hz): the highest rate common audio hardware and FFmpeg's
#: resampler handle routinely; aiortc resamples any of these to Opus's 48 kHz.
MAX_SAMPLE_RATE = 192000
#: Frame durations (milliseconds) a track may use: the Opus frame sizes (RFC 6716, section 2.1.4).
FRAME_DURATIONS_MS = (2.5, 5.0, 10.0, 20.0, 40.0, 60.0)

#: FFmpeg's default channel layout name for each channel count (``av_channel_layout_default``).
LAYOUTS: dict[int, str] = {
    1: "mono",
    2: "stereo",
    3: "2.1",
    4: "quad",
    5: "5.0",
    6: "5.1",
    7: "6.1",
    8: "7.1",
}


def check_sample_rate(sample_rate: object, *, what: str = "sample_rate") -> int:
    """Return ``sample_rate`` (Hz) if it is an int from 8000 to 192000, else raise.

    Raises:
        InvalidAudioError: ``sample_rate`` is not an int, is zero or negative, or is
            outside :data:`MIN_SAMPLE_RATE` to :data:`MAX_SAMPLE_RATE`.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise InvalidAudioError(
            f"expected {what} as a positive int in Hz, got {type(sample_rate).__name__} {sample_rate!r}"
        )
    if sample_rate <= 0:
        raise InvalidAudioError(f"expected {what} > 0 Hz, got {sample_rate}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InvalidAudioError(f"expected {what} from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, got {sample_rate} Hz")
    return sample_rate


def check_channels(channels: object, *, what: str = "channels") -> int:
    """Return ``channels`` if it is an int from 1 to 8, else raise.

    Raises:
        InvalidAudioError: ``channels`` is not an int from 1 to 8 (the counts
            that have a default FFmpeg layout, see :data:`LAYOUTS`).
    """
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in LAYOUTS:
        raise InvalidAudioError(f"expected {what} as an int from 1 to 8, got {channels!r}")
    return channels


@dataclass(frozen=True)
class AudioFormat:
    """Packed signed 16-bit PCM at one sample rate and channel count.

    Attributes:
        sample_rate: samples per second per channel (Hz).
        channels: channel count; the layout is FFmpeg's default for it.
        frame_samples: samples per channel in one output frame.
    """

    sample_rate: int
    channels: int
    frame_samples: int

    @classmethod
    def for_track(cls, *, sample_rate: int, channels: int, frame_duration: float) -> AudioFormat:
        """Validate the track options and build the format.

        Args:
            sample_rate: output rate in Hz, 8000 to 192000.
            channels: output channel count, 1 to 8.
            frame_duration: seconds per frame: an Opus frame duration (0.0025, 0.005,
                0.01, 0.02, 0.04 or 0.06 s, RFC 6716 section 2.1.4) that holds a whole
                number of samples at ``sample_rate`` (0.020 s at 48000 Hz is 960 samples).

        Raises:
            InvalidAudioError: a value is out of range, or ``frame_duration`` is
                not a whole number of samples at ``sample_rate``, or not an Opus
                frame duration.
        """
        check_sample_rate(sample_rate)
        check_channels(channels)
        if (
            isinstance(frame_duration, bool)
            or not isinstance(frame_duration, (int, float))
            or not math.isfinite(frame_duration)
        ):
            raise InvalidAudioError(f"expected frame_duration in seconds, got {frame_duration!r}")
        exact = frame_duration * sample_rate
        frame_samples = round(exact)
        if frame_samples <= 0 or abs(exact - frame_samples) > 1e-6:
            raise InvalidAudioError(
                f"expected frame_duration to be a whole number of samples at {sample_rate} Hz, "
                f"got {frame_duration} s ({exact} samples)"
            )
        # Exact in integers: 2000 x samples == half-milliseconds x rate.
        if not any(frame_samples * 2000 == round(2 * ms) * sample_rate for ms in FRAME_DURATIONS_MS):
            allowed = ", ".join(f"{ms / 1000:g}" for ms in FRAME_DURATIONS_MS)
            raise InvalidAudioError(
                f"expected frame_duration as an Opus frame duration ({allowed} s), got {frame_duration} s"
            )
        return cls(sample_rate=sample_rate, channels=channels, frame_samples=frame_samples)

    @property
    def layout(self) -> str:
        """FFmpeg layout name: ``"mono"``, ``"stereo"``, ...."""
        return LAYOUTS[self.channels]

    @property
    def time_base(self) -> Fraction:
        """``Fraction(1, sample_rate)``: pts counts samples, as in aiortc."""
        return Fraction(1, self.sample_rate)

    @property
    def frame_duration(self) -> float:
        """Seconds per frame."""
        return self.frame_samples / self.sample_rate
