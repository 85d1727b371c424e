"""Benchmarks for encoded TTS streams: time to first PCM and event-loop cost per push.

Run: ``python benchmarks/bench_encoded.py [--repeat 3] [--json out.json]``.

For each format, 6 s of the bundled speech is encoded with PyAV
(:func:`agent_audio.demo.speech.encode_stream`; Ogg pages every 20 ms) and pushed with
``push_encoded`` in chunks worth 20 ms and 60 ms of audio, paced like a TTS service
that streams four times faster than real time. Measured on a real event loop:

* time to first PCM: from the first ``push_encoded`` call to the first decoded samples
  queued in the turn (ms), and how much audio had been pushed by then (ms);
* event-loop cost per ``push_encoded`` call (us: mean, p95, max), the figure livekit/agents
  PR 5494 reported for its threaded encoder (push mean 40 us, p95 45 us, max 728 us);
* event-loop cost of each hand-over of decoded blocks from the worker thread (us: mean,
  p95, max): the loop pays that too;
* for MP3, the same pushes decoded synchronously on the loop (PyAV's parser and decoder
  inside the call), the design the worker thread replaces.

Each figure is the median over ``--repeat`` runs. Timings from a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from agent_audio import AgentAudioTrack, VoiceTap
from agent_audio._encoded import EncodedStream
from agent_audio.demo.speech import ENCODINGS, encode_stream, load_speech
from agent_audio.testing import ManualClock

SECONDS = 6.0
SPEED = 4.0  # the TTS service streams this many times faster than real time
FORMATS = [*ENCODINGS, "pcm_s16le"]


class FirstPcm(VoiceTap):
    """A voice tap that notes when the first decoded samples of a turn are queued."""

    def __init__(self) -> None:
        self.first_pcm: float | None = None

    def voice_queued(self, turn_id: int, samples: Any) -> None:
        if self.first_pcm is None:
            self.first_pcm = time.perf_counter()


def stream_bytes(name: str) -> tuple[bytes, str, dict[str, int]]:
    speech = load_speech(None, rate=24000)[: round(SECONDS * 24000)]
    if name == "pcm_s16le":
        return (speech * 32767).astype("<i2").tobytes(), "pcm_s16le", {"sample_rate": 24000}
    return encode_stream(speech, 24000, name), ENCODINGS[name][0], {}


def stats_us(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "mean": statistics.fmean(values) * 1e6,
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1e6,
        "max": ordered[-1] * 1e6,
    }


async def run(name: str, chunk_ms: float) -> dict[str, Any]:
    data, fmt, extra = stream_bytes(name)
    step = max(1, round(len(data) * chunk_ms / (SECONDS * 1000)))
    first = FirstPcm()
    track = AgentAudioTrack(sample_rate=48000, clock=ManualClock(), taps=[first])
    deliveries: list[float] = []
    original = EncodedStream._deliver

    def timed_deliver(self: EncodedStream, blocks: Any) -> None:
        start = time.perf_counter()
        original(self, blocks)
        deliveries.append(time.perf_counter() - start)

    EncodedStream._deliver = timed_deliver  # type: ignore[method-assign]
    try:
        turn = track.start_turn()
        pushes: list[float] = []
        pushed_at_first: int | None = None
        start = time.perf_counter()
        for i, offset in enumerate(range(0, len(data), step)):
            due = start + i * chunk_ms / 1000 / SPEED
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            call = time.perf_counter()
            await track.push_encoded(
                data[offset : offset + step], format=fmt, turn=turn, sample_rate=extra.get("sample_rate")
            )
            pushes.append(time.perf_counter() - call)
            if pushed_at_first is None and first.first_pcm is not None:
                pushed_at_first = offset
        turn.end()
        while turn._state.pushing:  # noqa: ASYNC110 - set by the decoder thread's hand-over
            await asyncio.sleep(0.001)
        if pushed_at_first is None:
            pushed_at_first = len(data)
        assert first.first_pcm is not None
        return {
            "first_pcm_ms": (first.first_pcm - start) * 1e3,
            "audio_pushed_before_first_pcm_ms": pushed_at_first / len(data) * SECONDS * 1000,
            "push": stats_us(pushes),
            "deliver": stats_us(deliveries) if deliveries else {"mean": 0.0, "p95": 0.0, "max": 0.0},
        }
    finally:
        EncodedStream._deliver = original  # type: ignore[method-assign]
        track.stop()


async def sync_mp3(chunk_ms: float) -> dict[str, Any]:
    """The same MP3 pushes, decoded and resampled inside the call on the loop."""
    data, _, _ = stream_bytes("mp3")
    step = max(1, round(len(data) * chunk_ms / (SECONDS * 1000)))
    track = AgentAudioTrack(sample_rate=48000, clock=ManualClock())
    codec = av.CodecContext.create("mp3", "r")
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    pushes = []
    start = time.perf_counter()
    for i, offset in enumerate(range(0, len(data), step)):
        due = start + i * chunk_ms / 1000 / SPEED
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        call = time.perf_counter()
        for packet in codec.parse(data[offset : offset + step]):
            try:
                frames = codec.decode(packet)
            except av.InvalidDataError:  # the LAME info frame
                continue
            for frame in frames:
                for out in resampler.resample(frame):
                    await track.push(np.ascontiguousarray(out.to_ndarray().reshape(-1)))
        pushes.append(time.perf_counter() - call)
    track.stop()
    return {"push": stats_us(pushes)}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs])
        else:
            out[key] = statistics.median(r[key] for r in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    header = (
        f"{'format':<10}{'chunk':>6}{'1st PCM ms':>11}{'audio in ms':>12}"
        f"{'push mean':>10}{'p95':>7}{'max':>8}{'deliver mean':>13}{'p95':>7}{'max':>8}  (us)"
    )
    print(header)
    for name in FORMATS:
        for chunk_ms in (20.0, 60.0):
            r = median_of([asyncio.run(run(name, chunk_ms)) for _ in range(args.repeat)])
            results[f"{name} {chunk_ms:.0f} ms"] = r
            p, d = r["push"], r["deliver"]
            print(
                f"{name:<10}{chunk_ms:>4.0f}ms{r['first_pcm_ms']:>11.1f}{r['audio_pushed_before_first_pcm_ms']:>12.0f}"
                f"{p['mean']:>10.1f}{p['p95']:>7.1f}{p['max']:>8.1f}{d['mean']:>13.1f}{d['p95']:>7.1f}{d['max']:>8.1f}"
            )
    for chunk_ms in (20.0, 60.0):
        r = median_of([asyncio.run(sync_mp3(chunk_ms)) for _ in range(args.repeat)])
        results[f"mp3 decoded on the loop {chunk_ms:.0f} ms"] = r
        p = r["push"]
        print(f"{'mp3 sync':<10}{chunk_ms:>4.0f}ms{'':>11}{'':>12}{p['mean']:>10.1f}{p['p95']:>7.1f}{p['max']:>8.1f}")
    for chunk_ms in (20.0, 60.0):
        threaded = results[f"mp3 {chunk_ms:.0f} ms"]["push"]
        sync = results[f"mp3 decoded on the loop {chunk_ms:.0f} ms"]["push"]
        print(
            f"mp3 {chunk_ms:.0f} ms chunks, threaded / on the loop: mean {threaded['mean'] / sync['mean']:.2f}x, "
            f"p95 {threaded['p95'] / sync['p95']:.2f}x, max {threaded['max'] / sync['max']:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
