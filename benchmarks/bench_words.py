"""What word bookkeeping costs per frame: ``recv()`` with 60 s of speech queued, with and without words.

Run: ``python benchmarks/bench_words.py [--rounds 7] [--json FILE]``.

Two :class:`agent_audio.AgentAudioTrack` on the manual clock hold the same 60 s of
24 kHz speech (resampled to 48 kHz), both pushed in 20 ms chunks: one with no words,
one with a timed word starting in every 12th chunk (4 words per second, fast speech;
240 words), so the second keeps a word timeline, looks up every frame which words it
passed, and emits a ``word_played`` event for each (a listener is attached to both). Both are read frame by
frame, interleaved in slices of 50 frames, ``--rounds`` times; reported: the median
microseconds per frame of each, with min and max over the rounds, and the worded /
plain ratio round by round. The machine is shared: read the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import numpy as np

from agent_audio import AgentAudioTrack
from agent_audio.testing import ManualClock

SECONDS = 60
CHUNK = 480  # 20 ms at 24 kHz
SLICE = 50  # frames read from one track before switching to the other


async def filled(worded: bool) -> AgentAudioTrack:
    track = AgentAudioTrack(clock=ManualClock())
    track.on("word_played", lambda event: None)
    t = np.arange(SECONDS * 24000) / 24000
    speech = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    turn = track.start_turn()
    word = [("word", 0.0, 0.2)]  # runs past its 20 ms chunk, as a word split across TTS chunks does
    for n, start in enumerate(range(0, len(speech), CHUNK)):
        chunk = speech[start : start + CHUNK]
        await turn.push(chunk, sample_rate=24000, words=word if worded and n % 12 == 0 else None)
    turn.end()
    return track


async def measure(rounds: int) -> dict[str, object]:
    results: dict[str, list[float]] = {"plain": [], "worded": []}
    ratios: list[float] = []
    for _ in range(rounds):
        tracks = {"plain": await filled(False), "worded": await filled(True)}
        spent = dict.fromkeys(tracks, 0.0)
        frames = dict.fromkeys(tracks, 0)
        for _ in range(SECONDS * 50 // SLICE - 2):
            for name, track in tracks.items():
                start = time.perf_counter()
                for _ in range(SLICE):
                    await track.recv()
                spent[name] += time.perf_counter() - start
                frames[name] += SLICE
            await asyncio.sleep(0)  # let the scheduled events run, outside the timed slices
        per = {name: spent[name] / frames[name] * 1e6 for name in tracks}
        for name in tracks:
            results[name].append(per[name])
            tracks[name].stop()
        ratios.append(per["worded"] / per["plain"])
    summary = {name: {"median": statistics.median(v), "min": min(v), "max": max(v)} for name, v in results.items()}
    return {"us_per_frame": summary, "worded_over_plain": {"median": statistics.median(ratios), "all": ratios}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = asyncio.run(measure(args.rounds))
    for name, figures in report["us_per_frame"].items():  # type: ignore[attr-defined]
        print(f"{name:<7} recv {figures['median']:.2f} us/frame [{figures['min']:.2f}-{figures['max']:.2f}]")
    ratio = report["worded_over_plain"]
    print(f"worded / plain: {ratio['median']:.3f} (per round: {', '.join(f'{r:.3f}' for r in ratio['all'])})")  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
