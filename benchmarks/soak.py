"""A long run on the manual clock: 10,000 turns over an hour of virtual time, then count what is left.

Run: ``python benchmarks/soak.py [--turns 10000] [--json soak.json]``.

One :class:`agent_audio.TeeMixingAgentAudioTrack` (a sink attached, a streamed background,
words with every push) plays ``--turns`` replies of 0.36 s of speech each (1 h of
virtual time at 10,000) on :class:`agent_audio.testing.ManualClock`. The turns vary the
way a conversation does: every 5th is interrupted mid-reply, every 7th paused and resumed,
every 3rd pushed at 24 kHz (resampled), every 50th sent as an MP3 stream (a decoder
thread each), every 11th paused with a timeout that interrupts; pushes with
``max_queued`` set. Checked as it goes: every turn finishes exactly once, ``pushed ==
played + dropped + queued``. Reported: Python heap (tracemalloc) and RSS per turn after a
warm-up, threads, asyncio tasks and open file descriptors at the start and at the end
(after ``stop()``), and the wall time. One thread stays: the process's clip loader,
started with the first mixing track. The figures go into the README's "Reliability".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from agent_audio import TeeMixingAgentAudioTrack, TurnFinished
from agent_audio.demo.speech import encode_stream
from agent_audio.testing import ManualClock

RATE = 48000
TURN = 0.36  # seconds of speech per reply: 10,000 of them is an hour


class CountingSink:
    """An avatar sink that only counts bytes."""

    def __init__(self) -> None:
        self.bytes = 0

    async def handle_audio_input(self, data: bytes) -> None:
        self.bytes += len(data)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _snapshot() -> dict[str, int]:
    gc.collect()
    return {
        "heap_bytes": tracemalloc.get_traced_memory()[0],
        "max_rss_kb": _rss_kb(),
        "threads": threading.active_count(),
        "tasks": len(asyncio.all_tasks()),
        "fds": _fds(),
    }


async def soak(turns: int) -> dict[str, Any]:
    t = np.arange(round(TURN * RATE)) / RATE
    speech48 = (0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    speech24 = speech48[::2].copy()
    mp3 = encode_stream(speech24, 24000, "mp3")
    words = [("one", 0.0, 0.1), ("two", 0.12, 0.22), ("three", 0.24, 0.36)]
    clock = ManualClock()
    base = _snapshot()
    track = TeeMixingAgentAudioTrack(clock=clock, max_queued=1.0)
    sink = CountingSink()
    track.add_sink(sink)
    finished = bytearray(turns + 2)  # times each turn finished, allocated up front: not counted as growth

    def on_finished(event: TurnFinished) -> None:
        finished[event.turn_id] += 1
        s = event.stats
        assert s.pushed_samples == s.played_samples + s.dropped_samples + s.queued_samples, s

    track.on("turn_finished", on_finished)
    frame = np.zeros(960, np.int16)
    checkpoints: list[dict[str, int]] = []
    warm: dict[str, int] | None = None
    started = time.perf_counter()
    for i in range(1, turns + 1):
        turn = track.start_turn()
        if i % 50 == 0:
            for start in range(0, len(mp3), 1500):
                await turn.push_encoded(mp3[start : start + 1500], format="mp3", words=words if start == 0 else None)
            turn.end()
            for _ in range(200):  # the decoder thread: let it finish (bounded)
                if not turn.decoding:
                    break
                await asyncio.sleep(0.001)
        elif i % 3 == 0:
            await turn.push(speech24, sample_rate=24000, words=words)
        else:
            await turn.push(speech48, words=words)
        if i % 50:
            turn.end()
        await track.push_background(frame)
        frames = round(TURN / 0.02) + 2
        for n in range(frames):
            if n == 5 and i % 7 == 0:
                track.pause()
            if n == 8 and i % 7 == 0:
                track.resume()
            if n == 6 and i % 11 == 0:
                track.pause(timeout=0.04, on_timeout="interrupt")
            if n == 9 and i % 5 == 0:
                track.interrupt()
            await track.recv()
        if i % 1000 == 0:
            await asyncio.sleep(0)
            snap = {"turn": i, **_snapshot()}
            checkpoints.append(snap)
            if warm is None:
                warm = snap
    for _ in range(100):
        await track.recv()
    await asyncio.sleep(0)
    track.stop()
    for _ in range(5):
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    end = _snapshot()
    missing = [tid for tid in range(1, turns + 1) if finished[tid] != 1]
    assert warm is not None
    per_turn = (checkpoints[-1]["heap_bytes"] - warm["heap_bytes"]) / max(1, checkpoints[-1]["turn"] - warm["turn"])
    return {
        "turns": turns,
        "virtual_seconds": round(clock.now(), 1),
        "wall_seconds": round(elapsed, 1),
        "turns_not_finished_exactly_once": len(missing),
        "heap_bytes_per_turn_after_warmup": round(per_turn, 1),
        "baseline": base,
        "warm": warm,
        "end_after_stop": end,
        "checkpoints": checkpoints,
        "sink_bytes": sink.bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tracemalloc.start()
    report = asyncio.run(soak(args.turns))
    keys = ("threads", "tasks", "fds", "heap_bytes", "max_rss_kb")
    print(f"{report['turns']} turns, {report['virtual_seconds']} s virtual in {report['wall_seconds']} s")
    print(f"turns not finished exactly once: {report['turns_not_finished_exactly_once']}")
    print(f"heap growth per turn after warm-up: {report['heap_bytes_per_turn_after_warmup']} bytes")
    for key in keys:
        start, warm, end = (report[part][key] for part in ("baseline", "warm", "end_after_stop"))
        print(f"  {key:<11} start {start:>10}  warm {warm:>10}  end {end:>10}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
