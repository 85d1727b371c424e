"""``EncodedStream``: one encoded TTS response (MP3, Ogg, FLAC, AAC, WAV, raw PCM) played in a turn."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from ._decode import DEMUXERS, FORMATS, StreamDecoder
from ._errors import InvalidAudioError, TurnClosedError
from ._format import check_channels, check_sample_rate

if TYPE_CHECKING:
    from ._decode import Block
    from ._track import AgentAudioTrack
    from ._turn import Turn

__all__ = ["EncodedStream"]


class EncodedStream:
    """One encoded audio stream decoded into a turn, as its chunks arrive.

    Made by :meth:`AgentAudioTrack.open_encoded` (or implicitly by
    :meth:`AgentAudioTrack.push_encoded`). Chunks may be split anywhere, including
    inside a header, an Ogg page or an MP3 frame; the first samples are queued as soon
    as the first frame decodes. MP3, Ogg (Opus, Vorbis), FLAC and ADTS AAC are decoded
    by PyAV on a worker thread and resampled there to the track format; WAV (16-bit
    PCM, header read with :mod:`wave`) and ``"pcm_s16le"`` are resampled there too. A
    :meth:`push` costs the event loop only a copy of the chunk.

    A corrupt or truncated chunk is skipped, counted in :attr:`errors` and in
    :attr:`agent_audio.TrackMetrics.decode_errors`, and logged once per stream; the
    stream goes on. :meth:`end` flushes the decoder's tail into the turn. An interrupt
    of the turn aborts the decoder and drops what it had not queued.

    Thread safety: call from the event loop's thread (a producer thread uses
    :meth:`AgentAudioTrack.push_threadsafe`, which accepts ``format=``).
    """

    def __init__(
        self,
        track: AgentAudioTrack,
        turn: Turn,
        format: str,
        *,
        sample_rate: int | None,
        channels: int | None,
    ) -> None:
        if format not in DEMUXERS:
            raise InvalidAudioError(f"expected format in {list(FORMATS)}, got {format!r}")
        if format == "pcm_s16le" and sample_rate is None:
            raise InvalidAudioError('expected sample_rate for format "pcm_s16le", got None')
        if format != "pcm_s16le" and (sample_rate is not None or channels is not None):
            raise InvalidAudioError(
                f"expected no sample_rate/channels for {format!r} (the stream carries them), "
                f"got sample_rate={sample_rate!r}, channels={channels!r}"
            )
        self._track = track
        self._turn = turn
        self._format = format
        self._loop = asyncio.get_running_loop()
        self._ended = False
        self._finished = False
        self.bytes_pushed = 0
        """Encoded bytes taken by :meth:`push`."""
        self.errors = 0
        """Corrupt packets skipped (known once the stream has finished decoding)."""
        if channels is not None:
            check_channels(channels)
        if sample_rate is not None:
            check_sample_rate(sample_rate)
        track._stream_opened(self)
        self._decoder = StreamDecoder(
            DEMUXERS[format],
            track._format,
            self._deliver_threadsafe,
            self._finished_threadsafe,
            pcm_rate=sample_rate,
            pcm_channels=channels,
        )

    def __repr__(self) -> str:
        return f"<EncodedStream {self._format} turn={self._turn.id} bytes={self.bytes_pushed} ended={self._ended}>"

    @property
    def format(self) -> str:
        """The ``format`` name given when the stream was opened."""
        return self._format

    @property
    def turn(self) -> Turn:
        """The turn the decoded audio belongs to."""
        return self._turn

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` was called (or the turn was interrupted or ended)."""
        return self._ended

    @property
    def finished(self) -> bool:
        """Whether every decoded sample has been queued (or dropped, after an interrupt)."""
        return self._finished

    async def push(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take the next encoded bytes of the stream.

        Waits first while the track holds more than ``max_queued`` seconds (when set);
        returns at once if the turn is interrupted (the chunk is then discarded).

        Raises:
            InvalidAudioError: ``chunk`` is not bytes-like.
            TurnClosedError: :meth:`end` was called.
            agent_audio.TrackClosedError: the track was stopped.
        """
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InvalidAudioError(f"expected encoded bytes, got {type(chunk).__name__}")
        self._track._check_live()
        if self._ended and not self._turn._state.interrupted:
            raise TurnClosedError(f"expected an open stream, got {self!r}, already ended")
        if self._turn._state.interrupted:
            self._ended = True
            return
        await self._track._wait_for_room(self._turn)
        if self._turn._state.interrupted:
            return
        self.bytes_pushed += len(chunk)
        self._decoder.feed(bytes(chunk))

    def end(self) -> None:
        """End of stream: decode what is left; the turn stays open for more audio. Idempotent."""
        if self._ended:
            return
        self._ended = True
        self._decoder.close()

    def _abort(self) -> None:
        """The turn was interrupted or the track stopped: drop what is still decoding."""
        self._ended = True
        self._decoder.abort()

    def _deliver_threadsafe(self, blocks: list[Block]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody will play them
            self._loop.call_soon_threadsafe(self._deliver, blocks)

    def _deliver(self, blocks: list[Block]) -> None:
        if self._finished:
            return
        for block in blocks:
            self._track._enqueue(self._turn, block)

    def _finished_threadsafe(self, errors: int) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._decoded, errors)

    def _decoded(self, errors: int) -> None:
        self.errors = errors
        self._track._decode_errors += errors
        self._done()

    def _done(self) -> None:
        if not self._finished:
            self._finished = True
            self._track._stream_closed(self)
