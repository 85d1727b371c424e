"""Input normalisation (agent_audio._input).

Guards:
- bytes at the track format are queued without a copy; a chunk ending mid-sample keeps
  the partial sample for the next push (also mid-frame for stereo);
- int16 arrays are copied (the caller may reuse them); floats map to s16 as FFmpeg does;
- anything else goes through one resampler per turn, whose state spans pushes: pushing a
  signal in random chunks gives the same samples as pushing it whole;
- an AudioFrame of any format/rate/layout is converted and never mutated;
- no sample is lost to the resampler: at the end of a turn the output is the source length
  at the track rate, however short the push and however the source rate changes (regression:
  10 samples at 24 kHz gave 0 of 20; 10 at 16 kHz after 1 s at 24 kHz gave 0 of 30);
- bad input (dtype, rank, NaN/inf, peak, rate outside 8000-192000 Hz, channels, a
  non-contiguous memoryview, a format change while a partial sample is pending) raises
  InvalidAudioError naming expected and got, and changes nothing.
"""

from __future__ import annotations

import itertools

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_audio import AgentAudioError, InvalidAudioError
from agent_audio._format import AudioFormat
from agent_audio._input import InputNormalizer

from helpers import ramp_signal, tone

FMT = AudioFormat(sample_rate=48000, channels=1, frame_samples=960)
STEREO = AudioFormat(sample_rate=48000, channels=2, frame_samples=960)


def convert(norm: InputNormalizer, data: object, **kw: int | None) -> np.ndarray:
    prepared = norm.prepare(data, sample_rate=kw.get("sample_rate"), channels=kw.get("channels"))
    blocks = list(norm.convert(prepared, slice_samples=prepared.sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros((0, norm._fmt.channels), np.int16)


def test_track_format_bytes_are_queued_without_copy() -> None:
    norm = InputNormalizer(FMT)
    data = ramp_signal(960).tobytes()
    prepared = norm.prepare(data, sample_rate=None, channels=None)
    (block,) = list(norm.convert(prepared, slice_samples=48000))
    assert np.array_equal(block, ramp_signal(960))
    assert not block.flags.writeable  # a view of the immutable bytes


def test_bytearray_is_copied_so_the_caller_may_reuse_it() -> None:
    norm = InputNormalizer(FMT)
    data = bytearray(ramp_signal(100).tobytes())
    out = convert(norm, data)
    data[:] = bytes(len(data))
    assert np.array_equal(out, ramp_signal(100))


@pytest.mark.parametrize("fmt", [FMT, STEREO])
def test_chunks_split_mid_sample_reassemble_exactly(fmt: AudioFormat) -> None:
    sig = ramp_signal(1000, fmt.channels)
    raw = sig.tobytes()
    norm = InputNormalizer(fmt)
    cuts = [0, 1, 2, 5, 333, 1001, 2047, len(raw)]
    out = [convert(norm, raw[a:b]) for a, b in itertools.pairwise(cuts)]
    assert norm.partial_bytes == 0
    assert np.array_equal(np.concatenate(out), sig)


def test_partial_sample_left_at_end_of_turn_is_discarded_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    norm = InputNormalizer(FMT)
    convert(norm, b"\x01\x00\x02")
    assert norm.partial_bytes == 1
    assert norm.flush() is None
    assert "trailing byte" in caplog.text
    assert norm.partial_bytes == 0


def test_int16_array_is_copied() -> None:
    norm = InputNormalizer(FMT)
    sig = ramp_signal(500)[:, 0].copy()
    out = convert(norm, sig)
    sig[:] = 0
    assert np.array_equal(out[:, 0], ramp_signal(500)[:, 0])


def test_float_maps_to_s16_like_ffmpeg_and_clips_small_overshoot() -> None:
    norm = InputNormalizer(FMT)
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.2, -1.2], dtype=np.float32)
    out = convert(norm, x)[:, 0]
    assert out.tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768]


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100])
def test_other_rates_are_resampled_to_the_track_rate(rate: int) -> None:
    norm = InputNormalizer(FMT)
    out = convert(norm, tone(1.0, rate), sample_rate=rate)
    tail = norm.flush()
    total = len(out) + (0 if tail is None else len(tail))
    assert abs(total - 48000) <= 2
    spectrum = np.abs(np.fft.rfft(out[:, 0].astype(np.float64)))
    assert abs(np.argmax(spectrum) * 48000 / len(out) - 440) < 5


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 23999), max_size=8, unique=True))
def test_resampler_state_spans_pushes_so_chunking_changes_nothing(cuts: list[int]) -> None:
    sig = (tone(1.0, 24000) * 32767).astype(np.int16)
    whole_norm = InputNormalizer(FMT)
    whole = np.concatenate([convert(whole_norm, sig, sample_rate=24000), whole_norm.flush()])
    norm = InputNormalizer(FMT)
    points = [0, *sorted(cuts), len(sig)]
    parts = [convert(norm, sig[a:b], sample_rate=24000) for a, b in itertools.pairwise(points)]
    chunked = np.concatenate([*parts, norm.flush()])
    assert np.array_equal(chunked, whole)


def pushed_total(norm: InputNormalizer, pushes: list[tuple[int, int]]) -> int:
    """Push ``(rate, samples)`` pairs of a constant, flush, return the samples out at 48 kHz."""
    total = 0
    for rate, n in pushes:
        total += len(convert(norm, np.full(n, 0.25, np.float32), sample_rate=rate))
    tail = norm.flush()
    return total + (0 if tail is None else len(tail))


@pytest.mark.parametrize(
    ("pushes", "expected"),
    [
        ([(24000, 10)], 20),  # regression: 0 of 20
        ([(24000, 1)], 2),
        ([(16000, 10)], 30),
        ([(24000, 24000), (16000, 10)], 48030),  # regression: the 16 kHz push gave 0 of 30
        ([(24000, 10)] * 3, 60),  # regression: 58 of 60
        ([(44100, 7)], 8),  # 7.6 samples, rounded
        ([(96000, 3)], 2),  # 1.5, rounded half up
        ([(192000, 5)], 1),
        ([(8000, 1)], 6),
    ],
)
def test_a_short_resampled_push_loses_no_sample_at_the_end_of_the_turn(
    pushes: list[tuple[int, int]], expected: int
) -> None:
    assert pushed_total(InputNormalizer(FMT), pushes) == expected


@settings(max_examples=40, deadline=None)
@given(
    pushes=st.lists(
        st.tuples(st.sampled_from([8000, 11025, 16000, 22050, 24000, 44100, 96000, 192000]), st.integers(1, 400)),
        min_size=1,
        max_size=6,
    )
)
def test_every_resampled_push_comes_out_whole_within_a_sample_per_rate_change(pushes: list[tuple[int, int]]) -> None:
    segments = [list(g) for _, g in itertools.groupby(pushes, key=lambda p: p[0])]
    exact = sum(sum(n for _, n in seg) * 48000 / seg[0][0] for seg in segments)
    assert abs(pushed_total(InputNormalizer(FMT), pushes) - exact) <= len(segments) / 2


def test_a_short_push_keeps_its_signal_and_fades_nothing_in() -> None:
    """The tail is the resampled signal, not zeros appended to reach the count."""
    norm = InputNormalizer(FMT)
    out = convert(norm, np.full(12, 0.5, np.float32), sample_rate=24000)
    out = np.concatenate([out, norm.flush()])[:, 0]
    assert len(out) == 24
    assert (np.abs(out[4:20] - 16384) < 1200).all()  # the middle is the constant, through the filter


def test_audio_frame_of_any_format_is_converted_and_not_mutated() -> None:
    planar = np.stack([tone(0.1, 16000), tone(0.1, 16000, freq=300)])
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
    frame.sample_rate = 16000
    frame.pts = 12345
    norm = InputNormalizer(FMT)
    out = convert(norm, frame)
    out = np.concatenate([out, norm.flush()])
    assert out.shape[1] == 1 and abs(len(out) - 4800) <= 2
    assert frame.pts == 12345 and frame.sample_rate == 16000 and frame.format.name == "fltp"


def test_track_format_frame_passes_through_as_a_copy() -> None:
    frame = av.AudioFrame.from_ndarray(ramp_signal(960).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 48000
    out = convert(InputNormalizer(FMT), frame)
    assert np.array_equal(out, ramp_signal(960))


def test_int16_at_track_format_waits_for_samples_a_resampler_still_holds() -> None:
    norm = InputNormalizer(FMT)
    first = convert(norm, tone(0.1, 24000), sample_rate=24000)
    second = convert(norm, ramp_signal(100))
    # the resampler's tail (held back from the first push) comes before the second push
    assert len(first) + len(second) > 4800
    assert np.array_equal(second[-100:], ramp_signal(100))
    assert norm._resampler is None


def test_mono_array_shapes_for_a_stereo_track_are_upmixed() -> None:
    out = convert(InputNormalizer(STEREO), ramp_signal(480)[:, 0])
    assert out.shape[1] == 2 and abs(len(out) - 480) <= 2


BAD = [
    (np.zeros(10, dtype=np.uint8), {}, "expected int16, float32 or float64 samples, got uint8"),
    (np.zeros(10, dtype=np.int32), {}, "got int32"),
    (np.zeros((2, 2, 2), dtype=np.int16), {}, "expected shape (n,) or (n, channels), got (2, 2, 2)"),
    (np.array([0.1, np.nan], dtype=np.float32), {}, "got NaN or inf"),
    (np.array([0.1, np.inf]), {}, "got NaN or inf"),
    (np.array([0.1, 1200.0]), {}, "got a peak of 1200"),
    (np.zeros((10, 3), dtype=np.int16), {"channels": 2}, "expected shape (n, 2) for channels=2, got (10, 3)"),
    (np.zeros((10, 9), dtype=np.int16), {}, "expected channels (the array's second dimension) as an int from 1 to 8"),
    (b"\x00\x00", {"sample_rate": 0}, "expected sample_rate > 0 Hz, got 0"),
    (b"\x00\x00", {"sample_rate": -8000}, "expected sample_rate > 0 Hz, got -8000"),
    (b"\x00\x00", {"sample_rate": 2**31}, "expected sample_rate from 8000 to 192000 Hz, got 2147483648 Hz"),
    (b"\x00\x00", {"sample_rate": 10**12}, "expected sample_rate from 8000 to 192000 Hz, got 1000000000000 Hz"),
    (b"\x00\x00", {"sample_rate": 4000}, "expected sample_rate from 8000 to 192000 Hz, got 4000 Hz"),
    (memoryview(np.arange(20, dtype=np.int16)[::2].data), {}, "expected a C-contiguous buffer of s16 samples"),
    (b"\x00\x00", {"channels": 0}, "expected channels as an int from 1 to 8, got 0"),
    ("hello", {}, "expected bytes, numpy.ndarray or av.AudioFrame, got builtins.str"),
    ([0, 1, 2], {}, "got builtins.list"),
]


@pytest.mark.parametrize(("data", "kw", "message"), BAD)
def test_bad_input_names_expected_and_got(data: object, kw: dict[str, int], message: str) -> None:
    norm = InputNormalizer(FMT)
    with pytest.raises(InvalidAudioError) as info:
        norm.prepare(data, sample_rate=kw.get("sample_rate"), channels=kw.get("channels"))
    assert message in str(info.value)
    assert isinstance(info.value, (AgentAudioError, ValueError))


def test_format_change_while_a_partial_sample_is_pending_is_refused_and_keeps_it() -> None:
    norm = InputNormalizer(STEREO)
    sig = ramp_signal(10, 2).tobytes()
    convert(norm, sig[:7])
    with pytest.raises(
        InvalidAudioError,
        match=r"expected the rest of a partial sample at 48000 Hz stereo s16, got bytes at 48000 Hz mono s16",
    ):
        norm.prepare(sig[7:], sample_rate=None, channels=1)
    assert norm.partial_bytes == 3
    assert np.array_equal(convert(norm, sig[7:]), ramp_signal(10, 2)[1:])  # 7 bytes = 1 frame + 3


def test_frame_with_a_conflicting_rate_argument_is_refused() -> None:
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 10), np.int16), format="s16", layout="mono")
    frame.sample_rate = 16000
    with pytest.raises(InvalidAudioError, match="expected sample_rate=None or 16000"):
        InputNormalizer(FMT).prepare(frame, sample_rate=24000, channels=None)


@pytest.mark.parametrize("kind", ["bytes", "array", "frame"])
def test_empty_input_is_a_no_op(kind: str) -> None:
    """Regression: an empty AudioFrame made PyAV's resampler raise MemoryError."""
    data: object = {
        "bytes": b"",
        "array": np.zeros(0, np.float32),
        "frame": av.AudioFrame(format="flt", layout="mono", samples=0),
    }[kind]
    if isinstance(data, av.AudioFrame):
        data.sample_rate = 8000
    norm = InputNormalizer(FMT)
    assert len(convert(norm, data, sample_rate=None if kind == "frame" else 8000)) == 0
    assert norm.flush() is None
