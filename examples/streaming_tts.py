"""A streaming TTS source pushed through ``push_encoded``, from a producer thread.

Run: ``python examples/streaming_tts.py [--format mp3|ogg|flac|aac|wav] [--say "TEXT"] [--out heard.wav]``.

Most TTS services answer with an encoded stream (MP3, Ogg/Opus, WAV...) that arrives
in chunks cut anywhere, often through an SDK that runs in its own thread. This
example plays such a stream:

* with ``--say`` and the ``tts`` extra installed, piper synthesizes the text in a
  thread and its raw 22.05 kHz PCM is pushed as a ``pcm_s16le`` stream, sentence by
  sentence, with :meth:`AgentAudioTrack.push_threadsafe`;
* otherwise the bundled speech is encoded once (``--format`` takes the names
  ``push_encoded`` takes; ``ogg`` is Opus in Ogg) and its bytes are sent in 1-4 KB
  chunks at twice real time, the way a network delivers them.

Without the ``tts`` extra, ``--say`` prints one line and exits with status 2.

The track decodes on a worker thread and starts playing with the first complete
frame. ``max_queued=2.0`` keeps at most 2 s of speech ahead of playout. A consumer
task plays the part of aiortc's sender, pulling frames on the real clock, and the
track records exactly what it handed out to ``--out``. It prints the time to first
PCM and the turn's account.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent_audio import AgentAudioTrack, TurnStats
from agent_audio.demo.speech import encode_stream, load_speech, piper_voice, tts_installed

RATE = 24000
#: ``--format``: the name ``push_encoded`` takes -> the encoding made of the bundled speech
#: (a key of agent_audio.demo.speech.ENCODINGS).
FORMATS = {"mp3": "mp3", "ogg": "opus", "flac": "flac", "aac": "aac", "wav": "wav"}


def network_chunks(data: bytes, *, seconds: float, speed: float = 2.0) -> list[tuple[float, bytes]]:
    """(send time in s, chunk) pairs: 1-4 KB chunks, paced at ``speed`` x real time."""
    rng = random.Random(7)
    out, pos = [], 0
    while pos < len(data):
        size = rng.randint(1024, 4096)
        out.append((pos / len(data) * seconds / speed, data[pos : pos + size]))
        pos += size
    return out


def produce_from_file(track: AgentAudioTrack, fmt: str) -> None:
    """A producer thread: the bundled speech, encoded, sent like a network would."""
    speech = load_speech(None, rate=RATE)[: 8 * RATE]
    data = encode_stream(speech, RATE, FORMATS[fmt])
    start = time.monotonic()
    futures = []
    for at, chunk in network_chunks(data, seconds=len(speech) / RATE):
        time.sleep(max(0.0, start + at - time.monotonic()))
        futures.append(track.push_threadsafe(chunk, format=fmt))
    for future in futures:
        future.result()


def produce_from_piper(track: AgentAudioTrack, text: str) -> None:
    """A producer thread: piper's raw 22.05 kHz s16 PCM as it is synthesized (a ``pcm_s16le`` stream)."""
    futures = []
    for chunk in piper_voice().synthesize(text):
        pcm = chunk.audio_int16_array.astype("<i2").tobytes()
        futures.append(track.push_threadsafe(pcm, format="pcm_s16le", sample_rate=chunk.sample_rate))
    for future in futures:
        future.result()


def start_producer(produce: Callable[[], None]) -> asyncio.Future[None]:
    """Run ``produce`` on a daemon thread; the future resolves (or raises) on the loop when it returns."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            produce()
        except BaseException as exc:  # handed to the loop, which raises it in main()
            error = exc
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, daemon=True).start()
    return done


async def main(fmt: str = "mp3", say: str | None = None, out: Path | None = None) -> TurnStats:
    track = AgentAudioTrack(max_queued=2.0)
    recorder = track.start_recording(out) if out is not None else None
    first_audio: list[float] = []
    track.on("playout_started", lambda e: first_audio.append(e.time_to_first_audio))

    async def sender() -> None:  # what aiortc's RTCRtpSender does
        while track.readyState == "live":
            await track.recv()

    pulling = asyncio.ensure_future(sender())
    turn = track.start_turn()
    try:
        if say:
            await start_producer(lambda: produce_from_piper(track, say))
        else:
            await start_producer(lambda: produce_from_file(track, fmt))
        turn.end()
        stats = await turn.wait_for_playout()
    finally:
        track.stop()
        await asyncio.gather(pulling, return_exceptions=True)
    if recorder is not None:
        print(f"recorded {recorder.duration:.2f} s to {await recorder.stop()}")
    ttfa = f"{first_audio[0] * 1000:.0f} ms" if first_audio else "-"
    source = "pcm_s16le from piper (voice load included)" if say else fmt
    print(
        f"{source}: time to first audio {ttfa}; pushed {stats.pushed_ms:.0f} ms, "
        f"played {stats.played_ms:.0f} ms, decode errors {track.metrics().decode_errors}"
    )
    return stats


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="mp3", choices=list(FORMATS), help="encoding of the bundled speech")
    parser.add_argument("--say", help="text for piper to synthesize (needs the tts extra)")
    parser.add_argument("--out", type=Path, help="record what was played to this .wav or .ogg")
    args = parser.parse_args()
    if args.say and not tts_installed():
        print("--say needs the tts extra: pip install 'agent_audio[tts]'", file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(main(args.format, args.say, args.out))
    except KeyboardInterrupt:
        sys.exit(130)
