"""Loading clips (agent_audio._clip).

Guards: files, arrays, bytes and frames load at the track format in one go, resampled
once; errors for missing files, files without audio, empty clips and unknown types; an
empty file, a directory or a file that is not audio raises InvalidAudioError naming the
path and what was expected (regression: PyAV's InvalidDataError / IsADirectoryError
leaked, with FFmpeg's raw errno).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from agent_audio import InvalidAudioError
from agent_audio._clip import load_clip
from agent_audio._format import AudioFormat

from helpers import tone

FMT = AudioFormat(48000, 2, 960)


def test_file_array_bytes_and_frames_load_at_the_track_format(tmp_path: Path) -> None:
    from_file = load_clip(Path(__file__).parent.parent / "agent_audio" / "data" / "speech.ogg", FMT)
    assert from_file.shape[1] == 2 and abs(len(from_file) / 48000 - 23.4) < 0.1
    from_array = load_clip(tone(0.5, 16000), FMT, sample_rate=16000)
    assert abs(len(from_array) - 24000) <= 2 and from_array.flags.c_contiguous
    from_bytes = load_clip(np.zeros((100, 2), np.int16).tobytes(), FMT)
    assert from_bytes.shape == (100, 2)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 200), np.int16), format="s16", layout="mono")
    frame.sample_rate = 48000
    assert load_clip([frame, frame], FMT).shape == (400, 2)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_clip(tmp_path / "none.wav", FMT)
    with pytest.raises(InvalidAudioError, match="got an empty one"):
        load_clip(b"", FMT)
    with pytest.raises(InvalidAudioError, match="expected a path, bytes"):
        load_clip(42, FMT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.wav", b"", r"expected an audio file, got an empty file \(0 bytes\): .*empty\.wav$"),
        (
            "text.mp3",
            b"hello, not audio\n" * 20,
            r"expected an audio file PyAV can decode, got .*text\.mp3: Invalid data",
        ),
        ("noise.wav", bytes(range(256)) * 20, r"expected an audio file PyAV can decode, got .*noise\.wav: "),
        ("folder", None, r"expected an audio file, got a directory: .*folder$"),
    ],
)
def test_a_file_that_is_not_audio_names_the_path_and_what_was_expected(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(InvalidAudioError, match=message) as info:
        load_clip(path, FMT)
    assert "Errno" not in str(info.value)
    assert not isinstance(info.value, av.FFmpegError) and isinstance(info.value, ValueError)
