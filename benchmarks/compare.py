"""agent_audio against the output tracks users would pick instead, on identical workloads, in one run.

Run (the peers in their own virtual environment; see the README)::

    python benchmarks/compare.py [--repeat 5] [--json compare.json] [--quick]

Peers (``benchmarks/adapters.py``): videosdk-agents' base, mixing and tee tracks,
pipecat's SmallWebRTC ``RawAudioTrack``, livekit's ``rtc.AudioSource`` and aiortc's
own silence ``AudioStreamTrack``; one that is not installed is listed as such. Beside
them, for recv and pacing only, the "pacing floor": a track that only waits on
agent_audio's clock and builds one new frame, the least any ``recv()``-paced track
pays in this loop. Every track gets the bundled speech (and the bundled ambience as
background) as 24 kHz mono s16 bytes. Workloads:

1. push: 10 s and 60 s of speech in one call and in 20 ms chunks: total ms, the
   longest time the event loop was blocked, and growth from 10 s to 60 s;
2. recv: microseconds per 20 ms of audio with pacing bypassed, for base, mixing
   (speech + as much streamed background) and tee (one sink), 10 s and 60 s queued;
   one adapter's kinds of track take turns in slices of 25 periods;
3. pacing: N tracks in one event loop on the real clock, started at random phases:
   lateness of every frame against its ideal grid (p50, p99, max), frames delivered
   against expected, process CPU per track; the largest N with p99 under 10 ms. Each
   N runs every track type in turn before the next N, so the machine's drift hits
   them alike;
4. stall: a 300 ms blocking call in the loop; frames returned back to back afterwards;
5. interrupt: the cost of the call with 5 s and 60 s queued (pushed in 20 ms chunks),
   and, in the audio returned after it, the time until the level (10 ms RMS windows)
   stays below -40 and -60 dBFS, and the first sample quieter than what was queued;
6. memory: RSS per track holding 10 s of speech pushed in 20 ms chunks, against the
   raw PCM (480 000 bytes);
7. end to end: an aiortc loopback (DTLS-SRTP, Opus); interrupt-to-quiet (-40 dBFS)
   measured on the received audio.

Figures are the median over ``--repeat`` runs with min and max (the recv workload: at
least 7 rounds, each running every track type once, so that a ratio between two of them
is the median of ratios taken round by round); the machine is shared and noisy, so the
ratios (agent_audio / peer, in the same run) are what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapters import RATE, Adapter, LoopWatch, frame_samples, load_adapters

from agent_audio._clip import load_clip
from agent_audio._format import AudioFormat
from agent_audio.demo.analysis import levels_dbfs
from agent_audio.demo.speech import load_speech

CHUNK_BYTES = 960  # 20 ms at 24 kHz s16 mono
WARMUP = 25  # 20 ms periods before measuring recv
PERIODS = 425  # 20 ms periods measured: 8.5 s, inside even the 10 s queued
SLICE = 25  # 20 ms periods each track kind runs before the next kind's turn (recv)
RECV_ROUNDS = 7  # at least this many rounds of the recv workload (each a few ms per track)
Stats = dict[str, float]


def speech(seconds: float) -> bytes:
    """The bundled speech at 24 kHz s16 mono, looped to ``seconds``."""
    base = (load_speech(None, rate=RATE) * 32767).astype(np.int16)
    n = round(seconds * RATE)
    return np.tile(base, -(-n // len(base)))[:n].tobytes()


def ambience(seconds: float) -> bytes:
    """The bundled ambience at 24 kHz s16 mono, looped to ``seconds``."""
    fmt = AudioFormat.for_track(sample_rate=RATE, channels=1, frame_duration=0.02)
    with resources.as_file(resources.files("agent_audio") / "data" / "ambience.ogg") as path:
        clip = load_clip(path, fmt)[:, 0]
    n = round(seconds * RATE)
    return np.tile(clip, -(-n // len(clip)))[:n].tobytes()


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]


def stats(values: list[float]) -> Stats:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def calls_per_period(adapter: Adapter) -> int:
    assert adapter.frame_seconds is not None
    return round(0.02 / adapter.frame_seconds)


# -- 1. push ------------------------------------------------------------------


async def push_ms(adapter: Adapter, data: bytes, *, chunked: bool) -> tuple[float, float]:
    """(total ms, longest event-loop block ms): the longest call, or a ticking task's longest gap if longer.

    The total includes one loop pass per chunk (as when chunks come from the network).
    """
    track = adapter.make("base")
    await adapter.start(track)
    pieces = chunks(data) if chunked else [data]
    longest_call = 0.0
    async with LoopWatch() as watch:
        start = time.perf_counter()
        for piece in pieces:
            call = time.perf_counter()
            await adapter.push(track, piece)
            longest_call = max(longest_call, time.perf_counter() - call)
            if chunked:
                await asyncio.sleep(0)  # chunks arrive from the network: the loop runs between them
        total = time.perf_counter() - start
    longest = watch.longest
    adapter.close(track)
    return total * 1e3, max(longest, longest_call) * 1e3


# -- 2. recv ------------------------------------------------------------------


async def recv_us(adapter: Adapter, queued: bytes, background: bytes) -> dict[str, float]:
    """Microseconds of recv() per 20 ms of audio, pacing bypassed, inside the queued speech, per kind.

    The adapter's kinds of track live side by side and take turns, :data:`SLICE` periods
    each, so that the machine's drift (other tenants, frequency) hits them alike.
    """
    tracks: dict[str, Any] = {}
    for kind in adapter.kinds:
        track = tracks[kind] = adapter.make(kind, bypass=True)
        await adapter.start(track, bypass=True)
        await adapter.push(track, queued)
        if kind == "mixing":
            await adapter.push_background(track, background)
    calls = calls_per_period(adapter)
    for track in tracks.values():
        for _ in range(WARMUP * calls):
            await adapter.recv(track)
    spent = dict.fromkeys(tracks, 0.0)
    for _ in range(PERIODS // SLICE):
        for kind, track in tracks.items():
            start = time.perf_counter()
            for _ in range(SLICE * calls):
                await adapter.recv(track)
            spent[kind] += time.perf_counter() - start
    for track in tracks.values():
        adapter.close(track)
    return {kind: elapsed / (PERIODS // SLICE * SLICE) * 1e6 for kind, elapsed in spent.items()}


# -- 3. pacing ----------------------------------------------------------------


async def pacing(adapter: Adapter, n: int, seconds: float, data: bytes) -> dict[str, float]:
    """N tracks on the real clock for ``seconds``; lateness in ms against each track's ideal grid."""
    assert adapter.frame_seconds is not None
    period = adapter.frame_seconds
    tracks = [adapter.make("base") for _ in range(n)]
    for track in tracks:
        await adapter.push(track, data)
    arrivals: list[list[float]] = [[] for _ in range(n)]
    stop = False

    async def consume(i: int) -> None:
        await asyncio.sleep(random.random() * period)  # sessions start at random phases
        await adapter.start(tracks[i])
        times = arrivals[i]  # the first frame after start() is the origin of the track's grid
        while not stop:
            await adapter.recv(tracks[i])
            times.append(time.monotonic())

    gc.collect()
    cpu0, wall0 = time.process_time(), time.monotonic()
    tasks = [asyncio.ensure_future(consume(i)) for i in range(n)]
    await asyncio.sleep(seconds)
    stop = True
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    late: list[np.ndarray] = []
    delivered = expected = 0
    end = wall0 + seconds
    for times in arrivals:
        if len(times) < 2:
            expected += int(seconds / period)
            continue
        t = np.asarray(times)
        t = t[t <= end]
        ideal = t[0] + period * np.arange(len(t))
        late.append(t - ideal)
        delivered += len(t) - 1
        expected += int((end - t[0]) / period)
    for track in tracks:
        adapter.close(track)
    lateness = np.concatenate(late) * 1e3 if late else np.asarray([float("inf")])
    return {
        "p50 ms": float(np.percentile(lateness, 50)),
        "p99 ms": float(np.percentile(lateness, 99)),
        "max ms": float(lateness.max()),
        "delivered / expected": delivered / max(expected, 1),
        "cpu % per track": cpu / wall / n * 100,
    }


# -- 4. stall -----------------------------------------------------------------


async def stall_burst(adapter: Adapter, data: bytes) -> float:
    """Periods of 20 ms returned back to back (under 1 ms apart) after a 300 ms blocking call."""
    track = adapter.make("base")
    await adapter.start(track)
    await adapter.push(track, data)
    calls = calls_per_period(adapter)
    for _ in range(10 * calls):
        await adapter.recv(track)
    time.sleep(0.3)  # noqa: ASYNC251  (the point: the loop blocked by a slow callback, a GC pause, a sync call)
    arrivals = []
    for _ in range(30 * calls):
        await adapter.recv(track)
        arrivals.append(time.monotonic())
    adapter.close(track)
    burst = 1
    for a, b in itertools.pairwise(arrivals):
        if b - a > 0.001:
            break
        burst += 1
    return burst / calls


# -- 5. interrupt -------------------------------------------------------------


async def interrupt_call_us(adapter: Adapter, data: bytes) -> float:
    """Microseconds one interrupt() takes with ``data`` queued in 20 ms chunks."""
    assert adapter.interrupt is not None
    track = adapter.make("base")
    await adapter.start(track)
    for piece in chunks(data):
        await adapter.push(track, piece)
    if adapter.frame_seconds is not None:
        await adapter.recv(track)
    start = time.perf_counter()
    adapter.interrupt(track)
    elapsed = time.perf_counter() - start
    adapter.close(track)
    return elapsed * 1e6


async def interrupt_quiet(adapter: Adapter, data: bytes) -> dict[str, float]:
    """In the audio after interrupt(): ms until it stays below -40 / -60 dBFS; ms to the first quieter sample."""
    assert adapter.interrupt is not None
    track = adapter.make("base", bypass=True)
    await adapter.start(track, bypass=True)
    for piece in chunks(data):
        await adapter.push(track, piece)
    source = np.frombuffer(data, np.int16)
    played: list[np.ndarray] = []
    count = 0
    while True:  # interrupt at least 1 s in, inside a loud stretch
        block = frame_samples(await adapter.recv(track))
        played.append(block)
        count += len(block)
        rms = np.sqrt(np.mean(block.astype(np.float64) ** 2)) / 32768
        if count >= RATE and rms > 10 ** (-20 / 20):
            break
    adapter.interrupt(track)
    after: list[np.ndarray] = []
    while sum(len(block) for block in after) < RATE:
        after.append(frame_samples(await adapter.recv(track)))
    adapter.close(track)
    out = np.concatenate(after).astype(np.float64)
    expected = source[count : count + len(out)].astype(np.float64)
    levels = levels_dbfs(out / 32768, RATE)
    result = {}
    for threshold in (-40, -60):
        loud = np.flatnonzero(levels >= threshold)
        result[f"to {threshold} dBFS ms"] = 0.0 if not len(loud) else (loud[-1] + 1) * 10.0
    audible = np.abs(expected) > 1000
    quieter = np.flatnonzero(audible & (np.abs(out[: len(expected)]) < 0.98 * np.abs(expected)))
    result["first quieter sample ms"] = float(quieter[0]) / RATE * 1e3 if len(quieter) else float("nan")
    return result


# -- 6. memory ----------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # return freed heap to the OS, so RSS shows what is held
    except OSError:
        pass


async def memory_ratio(adapter: Adapter, data: bytes, tracks: int = 20) -> float:
    """RSS held per track with ``data`` queued (pushed in 20 ms chunks), over ``len(data)``."""
    made = [adapter.make("base") for _ in range(tracks)]
    for track in made:
        await adapter.start(track)
    inputs = [[bytes(piece) for piece in chunks(data)] for _ in range(tracks)]  # fresh objects, as from a TTS
    _trim()
    before = _rss() - sum(len(piece) + 33 for pieces in inputs for piece in pieces)  # 33: a bytes object's header
    for track, pieces in zip(made, inputs, strict=True):
        for piece in pieces:
            await adapter.push(track, piece)
    del inputs, pieces
    _trim()
    held = (_rss() - before) / tracks
    for track in made:
        adapter.close(track)
    return held / len(data)


# -- 7. end to end ------------------------------------------------------------


async def end_to_end(adapter: Adapter, data: bytes) -> float:
    """Milliseconds from interrupt() until the received audio stays below -40 dBFS, over an aiortc loopback."""
    from agent_audio.demo.analysis import silence_after
    from agent_audio.demo.loopback import Loopback

    assert adapter.interrupt is not None
    track = adapter.make("base")
    async with Loopback(track) as loop:
        for piece in chunks(data):
            await adapter.push(track, piece)
        await asyncio.sleep(1.5)
        at = time.monotonic()
        adapter.interrupt(track)
        await asyncio.sleep(1.0)
        received = loop.listener.received()
    window = 0.010
    levels = levels_dbfs(received.samples, received.sample_rate, window)
    times = received.times()[:: round(window * received.sample_rate)][: len(levels)]
    return silence_after(times, levels, at, times[-1]) * 1e3


# -- the run ------------------------------------------------------------------


async def guarded(fn: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await fn()
    except Exception as exc:  # a peer failing a workload is reported, not fatal
        return f"failed: {type(exc).__name__}: {exc}"


def repeat(fn: Callable[[], Awaitable[float]], times: int) -> Stats | str:
    values = []
    for _ in range(times):
        value = asyncio.run(guarded(fn))
        if isinstance(value, str):
            return value
        values.append(value)
    return stats(values)


def run(args: argparse.Namespace) -> dict[str, Any]:
    adapters = [a for a in load_adapters() if not args.only or a.name in args.only]
    r = args.repeat
    s5, s10, s60 = speech(5), speech(10), speech(60)
    bg10, bg60 = ambience(10), ambience(60)
    report: dict[str, Any] = {"peers": {}, "push": {}, "recv": {}, "pacing": {}, "stall": {}, "interrupt": {}}
    report["memory"], report["end to end"] = {}, {}
    live = []
    for a in adapters:
        report["peers"][a.name] = a.error or "measured"
        if a.error is None:
            live.append(a)
    say = print if args.verbose else (lambda *_: None)
    for a in live:
        if not a.takes_audio:
            continue
        say(f"push: {a.name}")
        for label, data in (("10 s", s10), ("60 s", s60)):
            for chunked, how in ((False, "one call"), (True, "20 ms chunks")):
                pairs = [asyncio.run(push_ms(a, data, chunked=chunked)) for _ in range(r)]
                report["push"][f"{a.name}: {label} in {how}"] = {
                    "total ms": stats([p[0] for p in pairs]),
                    "longest loop block ms": stats([p[1] for p in pairs]),
                }
    # Every (track, queued) once per round, its kinds interleaved, rounds repeated: a ratio
    # between two of them is taken run by run, so the machine's drift cancels out.
    jobs = [
        (a, label, partial(recv_us, a, data, bg))
        for a in live
        if a.frame_seconds is not None
        for label, data, bg in (("10 s", s10, bg10), ("60 s", s60, bg60))
    ]
    runs: dict[str, list[float] | str] = {
        f"{a.name} {kind}, {label} queued": [] for a, label, _ in jobs for kind in a.kinds
    }
    for round_ in range(r if args.quick else max(r, RECV_ROUNDS)):
        say(f"recv: round {round_ + 1}")
        for a, label, job in jobs:
            keys = [f"{a.name} {kind}, {label} queued" for kind in a.kinds]
            if isinstance(runs[keys[0]], str):
                continue
            value = asyncio.run(guarded(job))
            for kind, key in zip(a.kinds, keys, strict=True):
                done = runs[key]
                assert isinstance(done, list)
                runs[key] = value if isinstance(value, str) else [*done, value[kind]]
    for key, done in runs.items():
        report["recv"][key] = done if isinstance(done, str) else {**stats(done), "runs": done}
    paced = [a for a in live if a.frame_seconds is not None]
    for n in args.tracks:  # every track type at one N before the next N: drift hits them alike
        for a in paced:
            say(f"pacing: {a.name} N={n}")
            result = asyncio.run(guarded(partial(pacing, a, n, args.seconds, speech(args.seconds + 1))))
            report["pacing"][f"{a.name}, N={n}"] = result
    for a in paced:
        sustained = [
            n
            for n in args.tracks
            if isinstance(report["pacing"][f"{a.name}, N={n}"], dict)
            and report["pacing"][f"{a.name}, N={n}"]["p99 ms"] < 10
            and report["pacing"][f"{a.name}, N={n}"]["delivered / expected"] > 0.99
        ]
        report["pacing"][f"{a.name}: largest N with p99 < 10 ms"] = max(sustained, default=0)
    for a in paced:
        if a.reference:
            continue  # the floor never re-anchors: its burst would say nothing
        say(f"stall: {a.name}")
        report["stall"][a.name] = repeat(partial(stall_burst, a, s5), min(r, 3))
    for a in live:
        if a.interrupt is None:
            report["interrupt"][a.name] = a.interrupt_note
            continue
        say(f"interrupt: {a.name}")
        for label, data in (("5 s", s5), ("60 s", s60)):
            report["interrupt"][f"{a.name}: call us, {label} queued"] = repeat(partial(interrupt_call_us, a, data), r)
        if a.frame_seconds is None:
            report["interrupt"][f"{a.name}: time to quiet"] = a.interrupt_note
            continue
        quiet = [asyncio.run(guarded(partial(interrupt_quiet, a, s5))) for _ in range(r)]
        if any(isinstance(q, str) for q in quiet):
            report["interrupt"][f"{a.name}: time to quiet"] = next(q for q in quiet if isinstance(q, str))
        else:
            for key in quiet[0]:
                report["interrupt"][f"{a.name}: {key}"] = stats([q[key] for q in quiet])
    for a in live:
        if not a.takes_audio:
            continue
        say(f"memory: {a.name}")
        report["memory"][a.name] = repeat(partial(memory_ratio, a, s10), min(r, 3))
    if not args.quick:
        for a in live:
            if a.interrupt is None or a.frame_seconds is None:
                continue
            say(f"end to end: {a.name}")
            report["end to end"][a.name] = repeat(partial(end_to_end, a, s5), min(r, 3))
    report["ratios"] = ratios(report)
    return report


def _median(value: Any) -> float | None:
    return value["median"] if isinstance(value, dict) and "median" in value else None


def _paired(a: Any, b: Any) -> float | None:
    """The median of a / b run by run (both measured in the same rounds), else of the medians."""
    if isinstance(a, dict) and isinstance(b, dict) and len(a.get("runs", ())) == len(b.get("runs", ())) > 0:
        return float(statistics.median([x / y for x, y in zip(a["runs"], b["runs"], strict=True) if y]))
    x, y = _median(a), _median(b)
    return x / y if x is not None and y else None


def ratios(report: dict[str, Any]) -> dict[str, float]:
    """agent_audio / peer for every figure both have (lower is better for all of them)."""
    out: dict[str, float] = {}
    ours = "agent_audio"
    for section in ("recv", "push", "interrupt", "stall", "memory", "end to end"):
        entries = report[section]
        for key, value in entries.items():
            if not key.startswith(ours):
                continue
            for peer in report["peers"]:
                if peer == ours:
                    continue
                other = entries.get(peer + key[len(ours) :])
                if section == "push" and isinstance(value, dict) and isinstance(other, dict):
                    for what in value:
                        a, b = _median(value[what]), _median(other[what])
                        if a is not None and b:
                            out[f"{section}: {key[len(ours) :].lstrip(': ')} {what}, vs {peer}"] = a / b
                    continue
                a, b = _median(value), _median(other)
                if a is not None and b:
                    out[f"{section}: {key[len(ours) :].lstrip(': ') or 'all'}, vs {peer}"] = a / b
    recv = report["recv"]
    for kind in ("mixing", "tee"):
        for label in ("10 s", "60 s"):
            ratio = _paired(recv.get(f"{ours} {kind}, {label} queued"), recv.get(f"{ours} base, {label} queued"))
            if ratio is not None:
                out[f"recv: agent_audio {kind} / agent_audio base, {label} queued (paired)"] = ratio
    for label in ("10 s", "60 s"):
        ratio = _paired(recv.get(f"{ours} base, {label} queued"), recv.get(f"aiortc silence base, {label} queued"))
        if ratio is not None:
            out[f"recv: agent_audio base / aiortc silence, {label} queued (paired)"] = ratio
    pacing = report["pacing"]
    a_n = pacing.get(f"{ours}: largest N with p99 < 10 ms")
    b_n = pacing.get("aiortc silence: largest N with p99 < 10 ms")
    if a_n and b_n:
        out["pacing: largest N, agent_audio / aiortc silence"] = a_n / b_n
    floor_n = pacing.get("pacing floor: largest N with p99 < 10 ms")
    if a_n and floor_n:
        out["pacing: largest N, agent_audio / pacing floor"] = a_n / floor_n
    return out


def print_report(report: dict[str, Any]) -> None:
    print("peers:")
    for name, state in report["peers"].items():
        print(f"  {name}: {state}")
    for section in ("push", "recv", "pacing", "stall", "interrupt", "memory", "end to end"):
        print(f"\n{section}:")
        for key, value in report[section].items():
            if isinstance(value, dict) and "median" in value:
                print(f"  {key:<62}{value['median']:>10.2f}  (min {value['min']:.2f}, max {value['max']:.2f})")
            elif isinstance(value, dict):
                parts = []
                for what, v in value.items():
                    parts.append(f"{what} {v['median'] if isinstance(v, dict) else v:.2f}")
                print(f"  {key:<62}" + ", ".join(parts))
            else:
                print(f"  {key:<62}{value}")
    print("\nratios (agent_audio / other; under 1 is better):")
    for key, value in report["ratios"].items():
        print(f"  {key:<86}{value:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--tracks", type=int, nargs="+", default=[1, 100, 300, 500, 700, 1000], help="N for the pacing run"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each pacing run")
    parser.add_argument("--only", nargs="+", help="adapter names to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 repetition, N=1 and 20, 2 s pacing")
    parser.add_argument("--verbose", action="store_true", help="say which workload runs")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.tracks, args.seconds = 1, [1, 20], 2.0
    report = run(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
