"""Encoded TTS streams into a track (agent_audio._encoded, agent_audio._decode).

Guards: every format decodes from chunks split at random points, to within one codec
frame of the source (plus the encoder delay ADTS cannot signal); playback starts before
the whole stream has arrived; a corrupted middle chunk is skipped and counted, and the
stream goes on; an interrupt discards what is still decoding; bad arguments get
expected-vs-got errors. Decoding runs on real threads, so the tests wait (with a
timeout) for a condition, never for a fixed time.

The decoder itself (agent_audio._decode.StreamDecoder): a short stream loses no sample
at its end (regression: 10 samples at 24 kHz gave 0 of 20); bad arguments are refused
by ``check_format`` and the constructor before any thread starts; ``caught_up`` tells
the feeder when every byte fed has been decoded and delivered, the hook the shell's
``max_queued`` backpressure waits on (regression: encoded pushes queued 6 s past a
0.3 s bound, the room check running before decoding).
"""

from __future__ import annotations

import asyncio
import io
import queue
import random
import threading
import wave
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_audio import AgentAudioTrack, InvalidAudioError, InvalidStateError, TurnClosedError
from agent_audio._decode import StreamDecoder, WavHeader, check_format
from agent_audio._format import AudioFormat
from agent_audio.demo.speech import ENCODINGS
from agent_audio.testing import ManualClock

from helpers import SPEECH_SECONDS, encoded_speech, receive

RATE = 48000
SOURCE = round(SPEECH_SECONDS * RATE)  # source samples at the track rate
#: One codec frame at the track rate (source rate 24 kHz, Opus at 48 kHz), plus the
#: encoder delay ADTS cannot signal (AAC: 1024 priming samples).
TOLERANCE = {
    "mp3": 576 * 2,
    "opus": 960,
    "vorbis": 2048 * 2,
    "flac": 4608 * 2,
    "aac": (1024 + 1024) * 2,
    "wav": 0,
}


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait (polling the loop) until ``predicate()``; fail after ``timeout`` seconds."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 - the condition is set by a decoder thread
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut at the given sizes (cycled), the last chunk taking the rest."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(data[pos : pos + size])
        pos, i = pos + size, i + 1
    return out


async def decode_all(name: str, pieces: list[bytes]) -> tuple[AgentAudioTrack, int]:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    turn = track.start_turn()
    for piece in pieces:
        await track.push_encoded(piece, format=ENCODINGS[name][0], turn=turn)
    turn.end()
    await until(lambda: not turn.decoding)
    return track, turn.stats.pushed_samples


@pytest.mark.parametrize("name", list(ENCODINGS))
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 4000), min_size=1, max_size=8))
async def test_every_format_decodes_from_chunks_split_anywhere(name: str, sizes: list[int]) -> None:
    track, pushed = await decode_all(name, chunks(encoded_speech(name), sizes))
    try:
        assert abs(pushed - SOURCE) <= TOLERANCE[name], (name, pushed, SOURCE)
        assert track.metrics().decode_errors == 0
    finally:
        track.stop()


@pytest.mark.parametrize("name", list(ENCODINGS))
async def test_decoded_audio_is_the_speech(name: str) -> None:
    """The decoded samples correlate with the source (not just the right length)."""
    track, _ = await decode_all(name, chunks(encoded_speech(name), [1500]))
    try:
        played = (await receive(track, SOURCE // track.frame_samples))[:, 0].astype(np.float64)
        from helpers import source_speech

        source = np.repeat(source_speech().astype(np.float64), 2)  # 24 kHz -> 48 kHz, near enough
        lag = int(np.argmax(np.correlate(played[:20000], source[:16000], "valid")))
        n = min(len(played) - lag, len(source))
        corr = np.corrcoef(played[lag : lag + n], source[:n])[0, 1]
        assert corr > 0.8, (name, corr, lag)
    finally:
        track.stop()


@pytest.mark.parametrize("name", list(ENCODINGS))
async def test_playback_starts_before_the_stream_has_arrived(name: str) -> None:
    data = encoded_speech(name)
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    turn = track.start_turn()
    try:
        part = len(data) * 2 // 5  # 40% of the stream (FLAC's parser wants ~1 s of frames first)
        for piece in chunks(data[:part], [700]):
            await track.push_encoded(piece, format=ENCODINGS[name][0], turn=turn)
        await until(lambda: turn.stats.pushed_samples > 0)  # times out if it waits for the end
        frame = await track.recv()
        assert frame.samples == track.frame_samples
    finally:
        track.stop()


@pytest.mark.parametrize("name", ["mp3", "opus", "vorbis", "flac", "aac"])
async def test_a_corrupted_middle_chunk_is_skipped_and_the_stream_finishes(name: str) -> None:
    data = bytearray(encoded_speech(name))
    middle = len(data) // 2
    data[middle : middle + 1500] = random.Random(1).randbytes(1500)
    track, pushed = await decode_all(name, chunks(bytes(data), [900]))
    try:
        assert pushed > SOURCE * 0.45  # at least everything before the damage
        if name in ("mp3", "aac", "flac", "vorbis"):  # FFmpeg resyncs on these
            assert pushed > SOURCE * 0.8
        if name in ("mp3", "aac"):  # their decoders reject this garbage; Opus decodes almost anything
            assert track.metrics().decode_errors >= 1
        # the track goes on: a new turn plays normally
        turn = track.start_turn()
        await turn.push(np.full(960, 1000, np.int16))
        turn.end()
        assert turn.stats.pushed_samples == 960
    finally:
        track.stop()


async def test_garbage_that_is_not_the_format_finishes_the_turn_with_errors() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    turn = track.start_turn()
    try:
        await track.push_encoded(random.Random(2).randbytes(5000), format="mp3", turn=turn)
        turn.end()
        await until(lambda: not turn.decoding)
        await receive(track, 5)
        assert turn.stats.finished
    finally:
        track.stop()


async def test_interrupt_discards_what_is_still_decoding() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    turn = track.start_turn()
    data = encoded_speech("mp3")
    for piece in chunks(data[: len(data) // 2], [1000]):
        await track.push_encoded(piece, format="mp3", turn=turn)
    await until(lambda: turn.stats.pushed_samples > RATE // 2)
    await receive(track, 5)
    track.interrupt()
    await track.push_encoded(data[len(data) // 2 :], format="mp3", turn=turn)  # a stale TTS task
    await until(lambda: not turn.decoding)
    await receive(track, 20)
    s = turn.stats
    assert s.interrupted and s.finished
    assert s.pushed_samples == s.played_samples + s.dropped_samples
    assert s.played_samples <= 5 * 960 + round(0.2 * RATE) + 960
    assert track.metrics().queued_samples == 0
    track.stop()


async def test_ending_the_turn_flushes_the_decoder_tail_and_finishes_it() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    data = encoded_speech("opus")
    for piece in chunks(data, [4000]):
        await track.push_encoded(piece, format="ogg")
    turn = track.current_turn
    assert turn is not None
    track.end_turn()
    await until(lambda: not turn.decoding)
    assert abs(turn.stats.pushed_samples - SOURCE) <= TOLERANCE["opus"]
    await receive(track, turn.stats.pushed_samples // 960 + 2)
    assert turn.stats.finished and not turn.stats.interrupted
    track.stop()


async def test_two_streams_in_one_turn_play_one_after_the_other() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    turn = track.start_turn()
    for _ in range(2):
        stream = track.open_encoded("mp3", turn=turn)
        for piece in chunks(encoded_speech("mp3"), [3000]):
            await stream.push(piece)
        stream.end()
        await until(lambda s=stream: s.finished)  # type: ignore[misc]
        with pytest.raises(TurnClosedError, match="already ended"):
            await stream.push(b"x")
    assert abs(turn.stats.pushed_samples - 2 * SOURCE) <= 2 * TOLERANCE["mp3"]
    track.stop()


async def test_raw_pcm_carries_a_partial_sample_over_to_the_next_chunk() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    pcm = (np.arange(2400, dtype=np.int16) % 100).tobytes()
    await track.push_encoded(pcm[:1001], format="pcm_s16le", sample_rate=RATE)
    await track.push_encoded(pcm[1001:], format="pcm_s16le", sample_rate=RATE)
    turn = track.current_turn
    assert turn is not None
    track.end_turn()
    await until(lambda: not turn.decoding)
    assert turn.stats.pushed_samples == 2400  # the odd byte was carried over
    played = await receive(track, 3)
    assert np.array_equal(played[:2400, 0], np.frombuffer(pcm, np.int16))
    track.stop()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (dict(format="wma"), "expected format in"),
        (dict(format="pcm_s16le"), 'expected sample_rate for format "pcm_s16le"'),
        (dict(format="mp3", sample_rate=24000), "expected no sample_rate/channels for 'mp3'"),
    ],
)
async def test_bad_stream_arguments_are_rejected_and_change_nothing(call: dict[str, object], message: str) -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    await track.push(np.full(960, 7, np.int16))
    with pytest.raises(InvalidAudioError, match=message):
        await track.push_encoded(b"\x00" * 10, **call)  # type: ignore[arg-type]
    assert track.metrics().queued_samples == 960
    track.stop()


async def test_mixing_pcm_and_a_decoding_stream_in_one_turn_is_refused() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    await track.push_encoded(encoded_speech("mp3")[:2000], format="mp3")
    with pytest.raises(InvalidStateError, match="without an encoded stream decoding"):
        await track.push(np.zeros(960, np.int16))
    with pytest.raises(InvalidAudioError, match="expected format 'mp3'"):
        await track.push_encoded(b"OggS", format="ogg")
    with pytest.raises(InvalidStateError, match="one open encoded stream at a time"):
        track.open_encoded("mp3")
    with pytest.raises(InvalidAudioError, match="expected encoded bytes, got str"):
        await track.push_encoded("text", format="mp3")  # type: ignore[arg-type]
    track.stop()


def wav_bytes(rate: int = 16000, channels: int = 1, width: int = 2, frames: int = 100) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(bytes(range(256)) * (frames * channels * width // 256 + 1))
    return buffer.getvalue()[: 44 + frames * channels * width]


@pytest.mark.parametrize("source", ["stdlib", "ffmpeg"])
def test_wav_header_split_at_every_byte(source: str) -> None:
    data = wav_bytes(rate=22050, channels=2) if source == "stdlib" else encoded_speech("wav")
    expected = (22050, 2) if source == "stdlib" else (24000, 1)
    for cut in range(1, 120):
        header = WavHeader(bytearray())
        pcm = header.feed(data[:cut]) + header.feed(data[cut:])
        assert header.done and (header.sample_rate, header.channels) == expected
        assert pcm == data[header.data_offset :]


def test_wav_header_errors_name_expected_and_got() -> None:
    with pytest.raises(InvalidAudioError, match="expected a WAV stream starting with RIFF"):
        WavHeader(bytearray()).feed(b"ID3\x03" + bytes(20))
    with pytest.raises(InvalidAudioError, match="expected 16-bit PCM WAV, got 8-bit"):
        WavHeader(bytearray()).feed(wav_bytes(width=1))
    header = WavHeader(bytearray())
    assert header.feed(b"RIFF\x00\x00\x00\x00WAVE" + b"JUNK" + (70000).to_bytes(4, "little")) == b""
    with pytest.raises(InvalidAudioError, match="expected a 16-bit PCM WAV header"):
        header.feed(bytes(WavHeader.LIMIT))


OUT = AudioFormat(sample_rate=RATE, channels=1, frame_samples=960)


class Collect:
    """StreamDecoder callbacks, recorded on the worker thread; ``wait()`` for the end."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.caught_up: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self.errors: int | None = None
        self.done = threading.Event()

    @property
    def samples(self) -> int:
        return sum(len(b) for b in self.blocks)

    def deliver(self, blocks: list[np.ndarray]) -> None:
        self.blocks.extend(blocks)

    def on_caught_up(self, fed: int) -> None:
        self.caught_up.put((fed, self.samples))  # samples delivered when it was called

    def finished(self, errors: int) -> None:
        self.errors = errors
        self.done.set()

    def decoder(self, demuxer: str, **kw: int) -> StreamDecoder:
        return StreamDecoder(demuxer, OUT, self.deliver, self.finished, caught_up=self.on_caught_up, **kw)


@pytest.mark.parametrize(("rate", "samples", "expected"), [(24000, 10, 20), (16000, 10, 30), (44100, 1, 1)])
def test_a_short_stream_loses_no_sample_at_its_end(rate: int, samples: int, expected: int) -> None:
    got = Collect()
    decoder = got.decoder("pcm_s16le", pcm_rate=rate)
    decoder.feed(np.full(samples, 1000, np.int16).tobytes())
    decoder.close()
    assert got.done.wait(10)
    assert (got.samples, got.errors) == (expected, 0)


def test_a_short_wav_stream_loses_no_sample_at_its_end() -> None:
    got = Collect()
    decoder = got.decoder("wav")
    decoder.feed(wav_bytes(rate=24000, frames=10))
    decoder.close()
    assert got.done.wait(10)
    assert got.samples == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("wma", None, None), "expected format in"),
        ((["mp3"], None, None), "expected format in"),
        (("pcm_s16le", None, None), 'expected sample_rate for format "pcm_s16le", got None'),
        (("pcm_s16le", 2**31, None), "expected sample_rate from 8000 to 192000 Hz, got 2147483648 Hz"),
        (("pcm_s16le", 24000, 9), "expected channels as an int from 1 to 8, got 9"),
        (("mp3", 24000, None), "expected no sample_rate/channels for 'mp3'"),
        (("wav", None, 2), "expected no sample_rate/channels for 'wav'"),
    ],
)
def test_check_format_refuses_bad_arguments_and_starts_nothing(args: tuple[object, ...], message: str) -> None:
    before = threading.active_count()
    with pytest.raises(InvalidAudioError, match=message):
        check_format(*args)
    assert threading.active_count() == before


def test_check_format_names_the_demuxer() -> None:
    assert [check_format("opus"), check_format("adts"), check_format("pcm_s16le", 16000, 2)] == [
        "ogg",
        "aac",
        "pcm_s16le",
    ]


@pytest.mark.parametrize(
    ("demuxer", "kw", "message"),
    [
        ("wma", {}, "expected a demuxer in"),
        ("pcm_s16le", {}, 'expected sample_rate for format "pcm_s16le"'),
        ("pcm_s16le", {"pcm_rate": 10**12}, "expected sample_rate from 8000 to 192000 Hz"),
    ],
)
def test_a_decoder_with_bad_arguments_starts_no_thread(demuxer: str, kw: dict[str, int], message: str) -> None:
    before = threading.active_count()
    with pytest.raises(InvalidAudioError, match=message):
        Collect().decoder(demuxer, **kw)
    assert threading.active_count() == before


def test_a_wav_header_with_an_absurd_rate_is_refused() -> None:
    data = bytearray(wav_bytes(rate=16000))
    data[24:28] = (2**31 - 1).to_bytes(4, "little")
    with pytest.raises(InvalidAudioError, match="expected a WAV sample rate from 8000 to 192000 Hz"):
        WavHeader(bytearray()).feed(bytes(data))


#: Encoded bytes a demuxer holds before it asks for more: FFmpeg's MP3 demuxer reads
#: 1024-byte raw packets and parses frames out of them; Ogg starts with about 1 KB of
#: OpusHead/OpusTags pages that hold no audio.
HELD = {"wav": 0, "mp3": 1024 + 512, "opus": 1024}


@pytest.mark.parametrize("name", ["wav", "mp3", "opus"])
def test_caught_up_means_everything_fed_was_decoded_and_delivered(name: str) -> None:
    """The shell's backpressure protocol: wait for caught_up == fed_bytes, then feed the next chunk."""
    data = encoded_speech(name)
    got = Collect()
    decoder = got.decoder(ENCODINGS[name][0])
    total_samples = SOURCE
    checked = 0
    for piece in chunks(data, [2048]):
        decoder.feed(piece)
        while True:  # the worker's reports, in order, until it has read all we fed
            fed, delivered = got.caught_up.get(timeout=10)
            if fed == decoder.fed_bytes:
                break
        assert decoder.pending_bytes == 0
        # What the bytes fed so far hold (the stream is near constant bitrate), less what
        # the demuxer holds, one codec frame and the resampler's delay.
        expected = total_samples * (decoder.fed_bytes - HELD[name]) / len(data)
        assert delivered >= expected - TOLERANCE[name] - 0.02 * RATE, (fed, delivered, expected)
        checked += 1
    decoder.close()
    assert got.done.wait(10)
    assert checked == len(chunks(data, [2048]))
    assert abs(got.samples - SOURCE) <= TOLERANCE[name] + 2


def test_caught_up_is_not_reported_after_an_abort() -> None:
    got = Collect()
    decoder = got.decoder("pcm_s16le", pcm_rate=RATE)
    decoder.feed(bytes(1920))
    while (report := got.caught_up.get(timeout=10))[0] < 1920:
        pass  # caught up with nothing yet, before the feed
    assert report == (1920, 960)
    decoder.abort()
    assert got.done.wait(10)
    assert got.caught_up.empty()
