"""Benchmarks for AgentAudioTrack on the manual clock (no real sleeps).

Run: ``python benchmarks/bench_track.py [--repeat 5] [--json out.json]``.

Measures, with the bundled speech resampled to 24 kHz s16 mono (what TTS services send):

* ``recv()`` microseconds per frame with 10 s and 60 s of speech queued, against
  aiortc's own silence ``AudioStreamTrack`` with its pacing bypassed (both yield to the
  loop once per frame); for the base track, the mixing track (as much streamed
  background as speech: the bundled ambience, pushed with ``push_background``, the
  workload of videosdk-agents' mixing track; and the same with the ambience also
  looping as a bed) and the tee track (one sink); only frames inside the queued speech
  are measured;
* the cost of pushing 10 s and 60 s in one call and in 20 ms chunks, and the longest
  stretch a push blocked the event loop (seen by a task ticking beside it);
* the cost of ``interrupt()`` with 5 s and 60 s queued (in 20 ms chunks: worst case);
* how many frames come back to back after a 300 ms event-loop stall.

Each figure is the median over ``--repeat`` runs, with min and max. Timings from a
shared, noisy machine: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from adapters import DueClock, LoopWatch, NullSink
from aiortc.mediastreams import AudioStreamTrack

from agent_audio import AgentAudioTrack, MixingAgentAudioTrack, TeeAgentAudioTrack
from agent_audio._clip import load_clip
from agent_audio._format import AudioFormat
from agent_audio.demo.speech import load_speech
from agent_audio.testing import ManualClock

RATE = 24000
CHUNK = 480  # 20 ms at 24 kHz
WARMUP = 25  # frames before measuring (ramps settle)
FRAMES = 425  # frames measured: 9 s, inside even the 10 s of queued speech


def speech(seconds: int) -> bytes:
    base = (load_speech(None, rate=RATE) * 32767).astype(np.int16)
    reps = -(-seconds * RATE // len(base))
    return np.tile(base, reps)[: seconds * RATE].tobytes()


def ambience(seconds: int) -> bytes:
    """The bundled ambience at 24 kHz s16 mono, looped to ``seconds``."""
    with resources.as_file(resources.files("agent_audio") / "data" / "ambience.ogg") as path:
        clip = load_clip(path, AudioFormat.for_track(sample_rate=RATE, channels=1, frame_duration=0.02))[:, 0]
    return np.tile(clip, -(-seconds * RATE // len(clip)))[: seconds * RATE].tobytes()


async def recv_us(queued: bytes, *, paced: bool = True, kind: str = "base", record: bool = False) -> float:
    """recv() cost per frame; ``paced``: on the manual clock (one loop yield per frame); ``record``: to a WAV."""
    clock = ManualClock() if paced else DueClock()
    track: AgentAudioTrack
    if kind in ("mixing", "mixing+bed"):
        mixing = MixingAgentAudioTrack(clock=clock)
        if kind == "mixing+bed":
            with resources.as_file(resources.files("agent_audio") / "data" / "ambience.ogg") as bed:
                await mixing.set_background(bed)
        await mixing.push_background(ambience(len(queued) // (2 * RATE)), sample_rate=RATE)
        track = mixing
    elif kind == "tee":
        tee = TeeAgentAudioTrack(clock=clock)
        tee.add_sink(NullSink())
        track = tee
    else:
        track = AgentAudioTrack(clock=clock)
    await track.push(queued, sample_rate=RATE)
    with tempfile.TemporaryDirectory() as folder:
        recorder = track.start_recording(Path(folder) / "heard.wav") if record else None
        for _ in range(WARMUP):
            await track.recv()
        start = time.perf_counter()
        for _ in range(FRAMES):
            await track.recv()
        elapsed = time.perf_counter() - start
        if recorder is not None:
            await recorder.stop()
    track.stop()
    return elapsed / FRAMES * 1e6


async def aiortc_silence_us() -> float:
    """Aiortc's silence track with every frame already due; its recv() still yields once (asyncio.sleep(<0))."""
    track = AudioStreamTrack()
    await track.recv()
    track._start -= 3600.0
    start = time.perf_counter()
    for _ in range(FRAMES):
        await track.recv()
    return (time.perf_counter() - start) / FRAMES * 1e6


async def push_ms(data: bytes, *, chunked: bool) -> tuple[float, float]:
    """(total ms, longest time the event loop was blocked, ms) for pushing ``data``.

    In one call: the longest gap seen by a task ticking beside the push. In 20 ms
    chunks: the longest single push() call (a small push never yields).
    """
    track = AgentAudioTrack(clock=ManualClock())
    longest_call = 0.0
    async with LoopWatch() as watch:
        start = time.perf_counter()
        if chunked:
            step = CHUNK * 2
            for i in range(0, len(data), step):
                call = time.perf_counter()
                await track.push(data[i : i + step], sample_rate=RATE)
                longest_call = max(longest_call, time.perf_counter() - call)
        else:
            await track.push(data, sample_rate=RATE)
        total = time.perf_counter() - start
    longest = watch.longest
    track.stop()
    return total * 1e3, (longest_call if chunked else longest) * 1e3


async def interrupt_us(data: bytes) -> float:
    track = AgentAudioTrack(clock=ManualClock())
    step = CHUNK * 2
    for i in range(0, len(data), step):
        await track.push(data[i : i + step], sample_rate=RATE)
    await track.recv()
    start = time.perf_counter()
    track.interrupt()
    elapsed = time.perf_counter() - start
    track.stop()
    return elapsed * 1e6


async def stall_burst() -> float:
    clock = ManualClock()
    track = AgentAudioTrack(clock=clock)
    for _ in range(10):
        await track.recv()
    clock.advance(0.3)
    times = []
    for _ in range(20):
        await track.recv()
        times.append(clock.now())
    track.stop()
    return float(max(sum(1 for t in times if abs(t - u) < 1e-9) for u in times))


def measure(fn: Callable[[], Coroutine[Any, Any, float]], repeat: int) -> dict[str, float]:
    values = [asyncio.run(fn()) for _ in range(repeat)]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    s10, s60, s5 = speech(10), speech(60), speech(5)
    r = args.repeat
    results: dict[str, dict[str, float]] = {
        "recv us/frame, aiortc silence track (reference)": measure(aiortc_silence_us, r),
        "recv us/frame, 10 s queued, paced (1 yield/frame)": measure(lambda: recv_us(s10), r),
        "recv us/frame, 60 s queued, paced (1 yield/frame)": measure(lambda: recv_us(s60), r),
        "recv us/frame, 10 s queued, pacing bypassed": measure(lambda: recv_us(s10, paced=False), r),
        "recv us/frame, 60 s queued, pacing bypassed": measure(lambda: recv_us(s60, paced=False), r),
    }
    # With and without a recorder, back to back in each repetition (the difference is small).
    recorded = [
        (asyncio.run(recv_us(s10, paced=False)), asyncio.run(recv_us(s10, paced=False, record=True))) for _ in range(r)
    ]
    recorder_cost = [with_ - without for without, with_ in recorded]
    results["recorder cost us/frame (recording - not), 10 s queued, pacing bypassed"] = {
        "median": statistics.median(recorder_cost),
        "min": min(recorder_cost),
        "max": max(recorder_cost),
    }
    for kind in ("mixing", "mixing+bed", "tee"):
        for label, data in (("10 s", s10), ("60 s", s60)):
            for paced, how in ((True, "paced (1 yield/frame)"), (False, "pacing bypassed")):
                results[f"{kind} recv us/frame, {label} queued, {how}"] = measure(
                    partial(recv_us, data, paced=paced, kind=kind), r
                )
    growth: dict[str, dict[str, float]] = {}
    for chunked in (False, True):
        how = "20 ms chunks" if chunked else "one call"
        # 10 s and 60 s back to back in each repetition, so load drifting on the shared
        # machine affects both sides of the growth ratio alike.
        pairs = [
            (asyncio.run(push_ms(s10, chunked=chunked)), asyncio.run(push_ms(s60, chunked=chunked))) for _ in range(r)
        ]
        for side, label in ((0, "10 s"), (1, "60 s")):
            for idx, what in ((0, "total ms"), (1, "longest loop block ms")):
                values = [pair[side][idx] for pair in pairs]
                stats = {"median": statistics.median(values), "min": min(values), "max": max(values)}
                results[f"push {label} in {how}: {what}"] = stats
        ratios_of_pairs = [long[0] / short[0] for short, long in pairs]
        growth[f"push 60 s / 10 s, {how}"] = {
            "median": statistics.median(ratios_of_pairs),
            "min": min(ratios_of_pairs),
            "max": max(ratios_of_pairs),
        }
    results["interrupt() us, 5 s queued"] = measure(lambda: interrupt_us(s5), r)
    results["interrupt() us, 60 s queued"] = measure(lambda: interrupt_us(s60), r)
    results["frames back to back after a 300 ms stall"] = measure(stall_burst, 1)

    ratios = {
        "recv 10 s paced / aiortc silence": results["recv us/frame, 10 s queued, paced (1 yield/frame)"]["median"]
        / results["recv us/frame, aiortc silence track (reference)"]["median"],
        "recv 10 s bypassed / aiortc silence": results["recv us/frame, 10 s queued, pacing bypassed"]["median"]
        / results["recv us/frame, aiortc silence track (reference)"]["median"],
        **{name: value["median"] for name, value in growth.items()},
    }
    for kind in ("mixing", "mixing+bed"):
        for label in ("10 s", "60 s"):
            for how in ("paced (1 yield/frame)", "pacing bypassed"):
                ratios[f"{kind} / base, {label} queued, {how}"] = (
                    results[f"{kind} recv us/frame, {label} queued, {how}"]["median"]
                    / results[f"recv us/frame, {label} queued, {how}"]["median"]
                )
    ratios["mixing 60 s / 10 s queued, pacing bypassed"] = (
        results["mixing recv us/frame, 60 s queued, pacing bypassed"]["median"]
        / results["mixing recv us/frame, 10 s queued, pacing bypassed"]["median"]
    )
    width = max(map(len, results)) + 2
    print(f"{'measure':<{width}}{'median':>10}{'min':>10}{'max':>10}")
    for name, v in results.items():
        print(f"{name:<{width}}{v['median']:>10.2f}{v['min']:>10.2f}{v['max']:>10.2f}")
    print()
    for name, value in ratios.items():
        spread = growth.get(name)
        extra = f"  (min {spread['min']:.2f}x, max {spread['max']:.2f}x over repetitions)" if spread else ""
        print(f"{name:<{width}}{value:>10.2f}x{extra}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": ratios, "growth": growth}, indent=2) + "\n")


if __name__ == "__main__":
    main()
