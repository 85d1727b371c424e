"""Loading a whole clip (a background bed or a one-shot sound) at the track format, once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from ._errors import InvalidAudioError
from ._format import AudioFormat
from ._input import InputNormalizer

__all__ = ["ClipSource", "check_clip_path", "load_clip"]

Block = npt.NDArray[np.int16]
ClipSource = str | Path | bytes | np.ndarray | av.AudioFrame | Iterable[av.AudioFrame]


def load_clip(
    source: ClipSource, fmt: AudioFormat, *, sample_rate: int | None = None, between: Callable[[], object] | None = None
) -> Block:
    """Decode and convert ``source`` to the track format in one go.

    Args:
        source: a file path (any format PyAV reads), s16 ``bytes`` or a numpy array (int16,
            or float in [-1, 1]; shape ``(n,)`` or ``(n, channels)``) at ``sample_rate``, an
            :class:`av.AudioFrame`, or an iterable of them.
        fmt: the track format.
        sample_rate: rate of bytes or array input in Hz; default the track's.
        between: called after each decoded frame of a file (a worker thread passes
            ``time.sleep(0)`` to hand the GIL back to the event loop's thread).

    Returns:
        int16, C-contiguous, shape ``(n, fmt.channels)`` at ``fmt.sample_rate``.

    Raises:
        FileNotFoundError: a path that does not exist.
        PermissionError: a file that cannot be read.
        InvalidAudioError: a directory, an empty file, a file PyAV cannot decode (the
            message names the path and FFmpeg's reason), a file without audio,
            malformed bytes or array input, or an empty clip.
    """
    norm = InputNormalizer(fmt)
    blocks: list[Block] = []

    def add(data: object, rate: int | None) -> None:
        prepared = norm.prepare(data, sample_rate=rate, channels=None)
        blocks.extend(norm.convert(prepared, slice_samples=max(1, prepared.source_samples)))
        if between is not None:
            between()

    if isinstance(source, (str, Path)):
        _decode_file(Path(source), add)
    elif isinstance(source, (bytes, bytearray, memoryview, np.ndarray, av.AudioFrame)):
        add(source, sample_rate)
    elif isinstance(source, Iterable):
        for frame in source:
            add(frame, None)
    else:
        raise InvalidAudioError(f"expected a path, bytes, numpy.ndarray or av.AudioFrame(s), got {type(source)!r}")
    tail = norm.flush()
    if tail is not None:
        blocks.append(tail)
    if not blocks or not sum(len(b) for b in blocks):
        raise InvalidAudioError("expected a clip with at least one sample, got an empty one")
    return np.ascontiguousarray(np.concatenate(blocks))


def check_clip_path(path: Path) -> None:
    """Refuse at once what cannot be an audio file: missing, a directory, or empty.

    Raises:
        FileNotFoundError: no file at ``path``.
        InvalidAudioError: a directory, or an empty file.
    """
    if not path.exists():
        raise FileNotFoundError(f"expected an audio file, got no file at {path}")
    if path.is_dir():
        raise InvalidAudioError(f"expected an audio file, got a directory: {path}")
    if path.stat().st_size == 0:
        raise InvalidAudioError(f"expected an audio file, got an empty file (0 bytes): {path}")


def _decode_file(path: Path, add: Callable[[object, int | None], None]) -> None:
    """Decode every audio frame of the file at ``path`` into ``add``; errors name the path."""
    check_clip_path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InvalidAudioError(f"expected an audio stream in {path}, got none")
            for frame in container.decode(audio=0):
                add(frame, None)
    except av.FFmpegError as exc:
        if isinstance(exc, OSError) and not isinstance(exc, IsADirectoryError):
            raise  # PermissionError and the like: a clear builtin already (PyAV's subclasses it)
        reason = exc.strerror or str(exc)
        raise InvalidAudioError(f"expected an audio file PyAV can decode, got {path}: {reason}") from None
