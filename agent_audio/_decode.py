"""Streaming decode of one encoded audio stream on a worker thread, with PyAV.

TTS services stream MP3, Ogg (Opus or Vorbis), FLAC, ADTS AAC or WAV in chunks cut
anywhere. :class:`StreamDecoder` feeds the chunks to FFmpeg's demuxer through a
blocking, non-seekable file object, so decoding starts with the first complete frame,
never waiting for the whole stream. Decoding and resampling to the track format run on
a daemon thread (PyAV releases the GIL inside FFmpeg's calls); the event loop only
appends bytes and, later, queues finished blocks.

WAV is not demuxed by FFmpeg here: its demuxer reads about 64 KB ahead of the first
packet on a non-seekable input (its S/PDIF probe), over a second of speech. The header
is read with the standard library's :mod:`wave` instead (:class:`WavHeader`), and the
PCM behind it, like raw ``pcm_s16le``, is resampled on the worker thread as it arrives.

Backpressure: the decoder reports, through its ``caught_up`` callback, each time it has
read every byte fed so far and delivered what they decoded to. A caller bounding its
queue in decoded seconds waits for that before checking for room and feeding the next
chunk, so encoded bytes never pile up undecoded behind the check (see
:class:`StreamDecoder`).
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from ._errors import InvalidAudioError
from ._format import LAYOUTS, AudioFormat, check_channels, check_sample_rate
from ._resample import FormatFollower

__all__ = ["DEMUXERS", "FORMATS", "MAX_RESYNC", "StreamDecoder", "WavHeader", "check_format"]

logger = logging.getLogger(__name__)

#: ``format`` names accepted for encoded input, and FFmpeg's demuxer for each (``wav``
#: and ``pcm_s16le`` are not demuxed by FFmpeg, only resampled).
DEMUXERS: dict[str, str] = {
    "mp3": "mp3",
    "ogg": "ogg",  # Opus or Vorbis in Ogg
    "opus": "ogg",  # the name OpenAI's and ElevenLabs' APIs use for Ogg/Opus
    "flac": "flac",
    "aac": "aac",  # ADTS
    "adts": "aac",
    "wav": "wav",  # header read with the wave module, then PCM
    "pcm_s16le": "pcm_s16le",  # raw: needs a sample rate and channel count
}
FORMATS = tuple(DEMUXERS)
#: FFmpeg options for opening a stream: read as little as possible before the first
#: packet (``probesize`` 32 bytes is FFmpeg's minimum; the stream format is given, not probed).
_OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
#: Bytes FFmpeg asks for per read (it takes short reads, so this only caps a read).
_READ_SIZE = 4096
#: Demuxer errors in a row (no packet between them) after which a stream is given up:
#: FFmpeg's ADTS demuxer fails about once per 40 bytes of garbage while it resyncs.
MAX_RESYNC = 256
#: Bytes read after the last packet beyond which the end of a stream counts as lost
#: (an Ogg page is at most 65307 bytes, but a 20 ms page of speech is well under 1 KB;
#: FFmpeg's Ogg demuxer does not resync after a corrupt page on a non-seekable input).
_LOST_TAIL = 8192

Block = npt.NDArray[np.int16]


def check_format(format: object, sample_rate: object = None, channels: object = None) -> str:
    """Validate the arguments of an encoded stream; nothing else happens.

    Args:
        format: a name in :data:`FORMATS`.
        sample_rate: Hz; required for ``"pcm_s16le"`` (8000 to 192000), refused for
            the other formats (their streams carry it).
        channels: 1 to 8 for ``"pcm_s16le"`` (default: the track's), refused for the
            other formats.

    Returns:
        FFmpeg's demuxer name for ``format`` (what :class:`StreamDecoder` takes).

    Raises:
        InvalidAudioError: an unknown format, or a rate or channel count missing,
            out of range or given where the stream carries its own.
    """
    if not isinstance(format, str) or format not in DEMUXERS:
        raise InvalidAudioError(f"expected format in {list(FORMATS)}, got {format!r}")
    if format == "pcm_s16le":
        if sample_rate is None:
            raise InvalidAudioError('expected sample_rate for format "pcm_s16le", got None')
        check_sample_rate(sample_rate)
        if channels is not None:
            check_channels(channels)
    elif sample_rate is not None or channels is not None:
        raise InvalidAudioError(
            f"expected no sample_rate/channels for {format!r} (the stream carries them), "
            f"got sample_rate={sample_rate!r}, channels={channels!r}"
        )
    return DEMUXERS[format]


class _Pipe:
    """Bytes in from the loop, out to FFmpeg: ``read`` blocks until data, end or abort.

    The loop's side is one :class:`queue.SimpleQueue` put (no lock held across the
    thread boundary), so a push never waits for the decoder.
    """

    def __init__(self, waiting: Callable[[int], None] | None) -> None:
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._buffer = b""
        self._eof = False
        self._waiting = waiting
        self.aborted = False
        self.consumed = 0
        """Bytes handed to the reader so far (written by the reader's thread only)."""

    def feed(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def close(self) -> None:
        self._chunks.put(None)

    def abort(self) -> None:
        self.aborted = True
        self._chunks.put(None)

    def read(self, size: int = -1) -> bytes:
        if not self._buffer and not self._eof and not self._take(block=False) and not self._eof:
            # About to wait: everything read so far was decoded and delivered.
            if self._waiting is not None and not self.aborted:
                self._waiting(self.consumed)
            self._take(block=True)
        while not self._eof and (size < 0 or len(self._buffer) < size) and self._take(block=False):
            pass
        if self.aborted:
            return b""
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self.consumed += len(out)
        return out

    def _take(self, *, block: bool) -> bool:
        try:
            chunk = self._chunks.get(block=block)
        except queue.Empty:
            return False
        if chunk is None:
            self._eof = True
            return False
        self._buffer = self._buffer + chunk if self._buffer else chunk
        return True


class StreamDecoder:
    """Decodes one encoded stream, fed in chunks, to blocks at the track format.

    Args:
        demuxer: FFmpeg's demuxer name (a value of :data:`DEMUXERS`).
        out: the track format; blocks are int16, shape ``(n, out.channels)``, at
            ``out.sample_rate`` Hz.
        deliver: called on the worker thread with each list of decoded blocks, in order.
        finished: called on the worker thread once, last, with the count of corrupt
            packets skipped, after the stream's tail was delivered (or after an abort).
        pcm_rate: source rate in Hz of ``"pcm_s16le"`` (required for it, else ignored).
        pcm_channels: source channel count of ``"pcm_s16le"``; default ``out.channels``.
        caught_up: called on the worker thread with :attr:`fed_bytes`' value at that
            moment each time the decoder has read every byte fed so far and has called
            ``deliver`` for what they decoded to (all but the codec's and the
            resampler's delay, a few milliseconds), just before it waits for more.
            Not called after :meth:`close` or :meth:`abort`: ``finished`` follows.

    Raises:
        InvalidAudioError: ``demuxer`` is not a value of :data:`DEMUXERS`, or
            ``pcm_rate``/``pcm_channels`` are missing or out of range; raised before
            any thread starts.

    Backpressure: a caller that bounds its queue in decoded seconds (``max_queued``)
    passes ``caught_up``, and before each :meth:`feed` waits until the last value it
    received equals :attr:`fed_bytes` (or ``finished`` was called), then checks for
    room, then feeds at most a few KB. What is fed but not decoded is then never more
    than one chunk, so the queue overshoots its bound by at most one chunk's audio.

    :meth:`feed`, :meth:`close` and :meth:`abort` are thread-safe and never block on
    decoding. A corrupt packet is skipped and counted; when the demuxer loses sync it
    resumes at the next frame it recognises (MP3, AAC, FLAC); after :data:`MAX_RESYNC`
    failures in a row without a packet the stream is given up. FFmpeg's Ogg demuxer does
    not resync on a non-seekable input: a corrupt Ogg page ends that stream's audio, and
    the bytes it swallowed are counted as one error at the end of the stream.
    """

    def __init__(
        self,
        demuxer: str,
        out: AudioFormat,
        deliver: Callable[[list[Block]], None],
        finished: Callable[[int], None],
        *,
        pcm_rate: int | None = None,
        pcm_channels: int | None = None,
        caught_up: Callable[[int], None] | None = None,
    ) -> None:
        if demuxer not in DEMUXERS.values():
            raise InvalidAudioError(f"expected a demuxer in {sorted(set(DEMUXERS.values()))}, got {demuxer!r}")
        if demuxer == "pcm_s16le":
            check_format(demuxer, pcm_rate, pcm_channels)
        self._demuxer = demuxer
        self._pcm_rate = pcm_rate
        self._pcm_channels = pcm_channels if pcm_channels is not None else out.channels
        self._out = out
        self._deliver = deliver
        self._finished = finished
        self._pipe = _Pipe(caught_up)
        self._errors = 0
        self.fed_bytes = 0
        """Bytes taken by :meth:`feed` so far (written by the feeding thread only)."""
        self._thread = threading.Thread(target=self._run, name=f"agent_audio-decode-{demuxer}", daemon=True)
        self._thread.start()

    @property
    def pending_bytes(self) -> int:
        """Bytes fed that the worker has not read yet (a snapshot; safe from any thread)."""
        return self.fed_bytes - self._pipe.consumed

    def feed(self, chunk: bytes) -> None:
        """Append encoded bytes (any split point). Call from one thread (the feeding one)."""
        if chunk:
            self.fed_bytes += len(chunk)
            self._pipe.feed(chunk)

    def close(self) -> None:
        """End of stream: decode what is left, flush the decoder and resampler, then finish."""
        self._pipe.close()

    def abort(self) -> None:
        """Discard what is not decoded yet and finish as soon as the current packet is done."""
        self._pipe.abort()

    def _run(self) -> None:
        try:
            if self._demuxer in ("wav", "pcm_s16le"):
                self._decode_pcm()
            else:
                self._decode()
        except Exception as exc:  # a decoder fault must not kill the turn silently
            self._error(exc)
        finally:
            self._finished(self._errors)

    def _decode(self) -> None:
        try:
            container = av.open(
                self._pipe, "r", format=self._demuxer, container_options=_OPEN_OPTIONS, buffer_size=_READ_SIZE
            )
        except (av.FFmpegError, ValueError) as exc:
            if not self._pipe.aborted:
                self._error(exc)
            return
        with container:
            if not container.streams.audio:
                self._error(InvalidAudioError(f"expected an audio stream in the {self._demuxer} data, got none"))
                return
            stream = container.streams.audio[0]
            resampler = FormatFollower(self._out)
            pipe = self._pipe
            misses, last_packet_at = 0, pipe.consumed
            while not pipe.aborted:
                try:
                    for packet in container.demux(stream):
                        if pipe.aborted:
                            return
                        if packet.size:
                            misses, last_packet_at = 0, pipe.consumed
                        try:
                            frames = packet.decode()
                        except av.FFmpegError as exc:
                            self._error(exc)
                            continue
                        blocks = resampler.convert(frames)
                        if blocks:
                            self._deliver(blocks)
                    break
                except av.FFmpegError as exc:  # the demuxer lost sync: count it, read on
                    self._error(exc)
                    misses += 1
                    if misses >= MAX_RESYNC:
                        return
            lost = pipe.consumed - last_packet_at
            if lost > _LOST_TAIL and not pipe.aborted:
                self._error(InvalidAudioError(f"expected {self._demuxer} packets, got {lost} bytes that gave none"))
            if not pipe.aborted:
                tail = resampler.flush()
                if tail:
                    self._deliver(tail)

    def _decode_pcm(self) -> None:
        """WAV (header first) or raw s16le: carry partial samples, resample to the track format."""
        header = WavHeader(bytearray()) if self._demuxer == "wav" else None
        rate, channels = self._pcm_rate, self._pcm_channels
        resampler = FormatFollower(self._out)
        carry = b""
        while chunk := self._pipe.read():
            if header is not None and not header.done:
                try:
                    chunk = header.feed(chunk)
                except InvalidAudioError as exc:
                    self._error(exc)
                    self._pipe.abort()  # not WAV: nothing after this can be read
                    return
                rate, channels = header.sample_rate, header.channels
            data = carry + chunk
            usable = len(data) - len(data) % (2 * channels)
            carry = data[usable:]
            if not usable or rate is None:
                continue
            samples = np.frombuffer(data[:usable], "<i2").reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=LAYOUTS[channels])
            frame.sample_rate = rate
            blocks = resampler.convert([frame])
            if blocks:
                self._deliver(blocks)
        if not self._pipe.aborted:
            tail = resampler.flush()
            if tail:
                self._deliver(tail)

    def _error(self, exc: BaseException) -> None:
        self._errors += 1
        if self._errors == 1:
            logger.warning("agent_audio: skipping undecodable %s data (%s); the stream goes on", self._demuxer, exc)


@dataclass
class WavHeader:
    """Reads a streamed WAV header with :mod:`wave`; what follows it is s16 PCM.

    Feed bytes until :attr:`done`; then :attr:`sample_rate`, :attr:`channels` and
    :attr:`data_offset` (bytes into the stream where the PCM starts) are known. Streamed
    WAV headers often give a data size of 0 or 0xFFFFFFFF; the size is ignored.
    """

    buffer: bytearray
    done: bool = False
    sample_rate: int = 0
    channels: int = 0
    data_offset: int = 0

    #: Bytes after which a header that has not parsed is rejected.
    LIMIT = 64 * 1024

    def feed(self, chunk: bytes) -> bytes:
        """Take ``chunk``; return the PCM bytes available once the header is complete.

        Raises:
            InvalidAudioError: not a RIFF/WAVE header, not 16-bit PCM, or no ``data``
                chunk within the first 64 KB.
        """
        if self.done:
            return chunk
        self.buffer += chunk
        if len(self.buffer) < 12:
            return b""
        if self.buffer[:4] != b"RIFF" or self.buffer[8:12] != b"WAVE":
            raise InvalidAudioError(
                f"expected a WAV stream starting with RIFF....WAVE, got {bytes(self.buffer[:12])!r}"
            )
        source = io.BytesIO(bytes(self.buffer))
        try:
            with wave.open(source, "rb") as reader:
                width, rate, channels = reader.getsampwidth(), reader.getframerate(), reader.getnchannels()
        except (EOFError, wave.Error) as exc:
            if len(self.buffer) > self.LIMIT or (isinstance(exc, wave.Error) and "unknown format" in str(exc)):
                raise InvalidAudioError(f"expected a 16-bit PCM WAV header, got {exc}") from None
            return b""  # the header is not complete yet
        if width != 2:
            raise InvalidAudioError(f"expected 16-bit PCM WAV, got {8 * width}-bit samples")
        check_sample_rate(rate, what="a WAV sample rate")
        check_channels(channels, what="a WAV channel count")
        # wave stops right after the ``data`` chunk's 8-byte header: the PCM starts there.
        self.done, self.sample_rate, self.channels = True, rate, channels
        self.data_offset = source.tell()
        pcm = bytes(self.buffer[self.data_offset :])
        self.buffer.clear()
        return pcm
