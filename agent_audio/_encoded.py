"""``EncodedStream``: one encoded TTS response (MP3, Ogg, FLAC, AAC, WAV, raw PCM) played in a turn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ._decode import StreamDecoder, check_format
from ._errors import InvalidAudioError, TurnClosedError
from ._format import AudioFormat
from ._words import check_words

if TYPE_CHECKING:
    from ._decode import Block
    from ._turn import Turn

__all__ = ["BOUNDED_PIECE", "EncodedStream", "StreamTarget"]

#: Bytes fed to the decoder at a time when the track bounds its queue (``max_queued``):
#: each piece waits until the decoder has caught up with the last one and there is room,
#: so decoded-but-not-queued audio stays within a piece (about 30 ms of 128 kbps MP3).
BOUNDED_PIECE = 512


class StreamTarget(Protocol):
    """Where a stream's decoded audio goes (the track's intake, for one turn)."""

    @property
    def interrupted(self) -> bool:
        """Whether the turn was interrupted (its audio is dropped)."""
        ...

    @property
    def bounded(self) -> bool:
        """Whether the track bounds its queue (``max_queued``): feed in pieces, waiting for room."""
        ...

    def check_live(self) -> None:
        """Raise ``TrackClosedError`` once the track was stopped."""
        ...

    async def wait_for_room(self) -> None:
        """Backpressure: wait while the track holds more than ``max_queued``."""
        ...

    def enqueue(self, block: Block) -> None:
        """Queue decoded int16 samples ``(n, channels)`` at the track format for the turn."""
        ...

    def words(self, offset: int, words: Sequence[tuple[str, float, float]] | None, text: str | None) -> None:
        """Place a push's words: its audio begins ``offset`` decoded samples into the stream.

        Raises:
            InvalidAudioError: malformed ``words`` or ``text``; nothing is placed.
        """
        ...

    def closed(self, stream: EncodedStream, errors: int) -> None:
        """Every decoded sample was queued (or dropped); ``errors`` corrupt packets were skipped."""
        ...


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
        target: StreamTarget,
        turn: Turn,
        format: str,
        fmt: AudioFormat,
        *,
        sample_rate: int | None,
        channels: int | None,
    ) -> None:
        demuxer = check_format(format, sample_rate, channels)
        self._target = target
        self._turn = turn
        self._format = format
        self._loop = asyncio.get_running_loop()
        self._ended = False
        self._aborted = False
        self._gone = False  # the decoder has finished (end, abort, or it gave up by itself)
        self._inflight = 0  # pushes under way; the decoder is closed after the last one
        self._lock = asyncio.Lock()  # pushes feed in call order, piece by piece
        self._finished = False
        self._decoded = 0  # samples per channel (track rate) delivered so far
        self.bytes_pushed = 0
        """Encoded bytes taken by :meth:`push`."""
        self.errors = 0
        """Corrupt packets skipped (known once the stream has finished decoding)."""
        self._idle = asyncio.Event()  # the decoder has read and delivered everything fed
        self._idle.set()
        self._decoder = StreamDecoder(
            demuxer,
            fmt,
            self._deliver_threadsafe,
            self._finished_threadsafe,
            pcm_rate=sample_rate,
            pcm_channels=channels,
            caught_up=self._caught_up_threadsafe,
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

    async def push(
        self,
        chunk: bytes | bytearray | memoryview,
        *,
        words: Sequence[tuple[str, float, float]] | None = None,
        text: str | None = None,
    ) -> None:
        """Take the next encoded bytes of the stream, and the words they speak.

        Args:
            chunk: encoded bytes, cut anywhere.
            words: ``(text, start, end)`` word timings in seconds from this chunk's
                first sample, as for :meth:`AgentAudioTrack.push`. The chunk's start is
                taken after decoding: the push waits until the decoder has delivered
                everything fed before it, and the chunk's audio begins there (to within
                the samples a decoder holds back, at most one codec frame), so an
                MP3's priming samples do not shift the words.
            text: the words without timings: spread, marked estimated, over the audio
                decoded from this chunk up to the next chunk that carries text (or the
                end of the stream).

        With ``max_queued`` set on the track, the chunk is fed in pieces of
        :data:`BOUNDED_PIECE` bytes, each once the decoder has caught up with the last and
        the track holds at most ``max_queued`` seconds of decoded audio, so the bound holds
        in decoded seconds whatever the format. Returns at once if the turn is
        interrupted or the track stops (the rest of the chunk is then discarded).

        Raises:
            InvalidAudioError: ``chunk`` is not bytes-like, or malformed ``words``/``text``
                (nothing is taken then).
            TurnClosedError: :meth:`end` was called.
            agent_audio.TrackClosedError: the track was stopped.
        """
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InvalidAudioError(f"expected encoded bytes, got {type(chunk).__name__}")
        target = self._target
        target.check_live()
        if self._ended and not target.interrupted and not self._aborted:
            raise TurnClosedError(f"expected an open stream, got {self!r}, already ended")
        if target.interrupted or self._aborted:
            self.abort()  # a stale TTS task: nothing more is decoded
            return
        if words is not None or text is not None:
            check_words(words, text)  # malformed words raise before anything is taken
        if self._gone:
            return  # the decoder gave up on this stream (logged): its bytes go nowhere
        data = bytes(chunk)
        self._inflight += 1
        try:
            async with self._lock:
                if words is not None or text is not None:
                    await self._idle.wait()  # what was fed before is decoded: this chunk starts here
                    if target.interrupted or self._aborted or self._gone:
                        return
                    target.words(self._decoded, words, text)
                if not target.bounded:
                    if not (self._aborted or self._gone):
                        self.bytes_pushed += len(data)
                        self._idle.clear()
                        self._decoder.feed(data)
                    return
                for start in range(0, len(data), BOUNDED_PIECE):
                    await self._idle.wait()
                    await target.wait_for_room()
                    if target.interrupted or self._aborted or self._gone:
                        return
                    piece = data[start : start + BOUNDED_PIECE]
                    self._idle.clear()
                    self.bytes_pushed += len(piece)
                    self._decoder.feed(piece)
        finally:
            self._inflight -= 1
            if self._ended and not self._inflight and not (self._aborted or self._gone):
                self._decoder.close()  # end() came while this push was feeding

    def end(self) -> None:
        """End of stream: decode what is left; the turn stays open for more audio. Idempotent.

        Pushes already under way (waiting for room) still feed their bytes first. For an
        interrupted turn the decoder is aborted instead.
        """
        if self._ended:
            return
        self._ended = True
        if self._target.interrupted:
            self.abort()
        elif not self._inflight:
            self._decoder.close()

    def abort(self) -> None:
        """Drop what is still decoding (the turn was interrupted, or the track stopped). Idempotent."""
        self._ended = self._aborted = True
        self._idle.set()
        self._decoder.abort()

    def _caught_up_threadsafe(self, fed: int) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._caught_up, fed)

    def _caught_up(self, fed: int) -> None:
        if fed == self._decoder.fed_bytes:
            self._idle.set()

    def _deliver_threadsafe(self, blocks: list[Block]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody will play them
            self._loop.call_soon_threadsafe(self._deliver, blocks)

    def _deliver(self, blocks: list[Block]) -> None:
        if self._finished:
            return
        for block in blocks:
            self._decoded += len(block)
            self._target.enqueue(block)

    def _finished_threadsafe(self, errors: int) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._done, errors)

    def _done(self, errors: int) -> None:
        # The decoder is gone (end, abort, or it gave up by itself): no push may wait on it.
        self._gone = True
        self._idle.set()
        if not self._finished:
            self.errors = errors
            self._finished = True
            self._target.closed(self, errors)
