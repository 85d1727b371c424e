"""recv() cost in CPU instructions per 20 ms of audio, counted by valgrind: the same on any machine.

Run (valgrind from the distribution, e.g. Debian's ``valgrind``; the peers as for
``compare.py``)::

    python benchmarks/instructions.py [--only agent_audio videosdk-agents] [--json out.json]

``compare.py``'s recv workload times ``recv()`` on a shared machine, where other
tenants move the timings by more than some of the margins being read (mixing / base
ran 1.3-1.6x from run to run). This counts the instructions instead: each track kind
of each adapter runs alone in a child process under ``valgrind --tool=cachegrind``
(no cache simulation), once for a short and once for a long stretch of the same
queued speech (and background, for mixing), and the difference divided by the
difference in 20 ms periods is the cost of one period. Python's hash seed is fixed
and OpenBLAS kept to one thread, so that the two runs start up identically; what is
left of their difference is the frames. Instructions are not time (a cache miss costs
no instruction), so read this beside ``compare.py``, not instead of it.

Slow: valgrind runs Python about 50 times slower, about a minute per figure on two
cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapters import Adapter, load_adapters
from compare import WARMUP, ambience, calls_per_period, speech

#: Seconds queued: the short and the long stretch, in 20 ms periods after the warm-up;
#: both end inside the queued speech.
PLANS = {10: (50, 450), 60: (100, 1100)}
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


async def _child(name: str, kind: str, seconds: float, periods: int) -> None:
    """Run ``periods`` 20 ms periods of one track (pacing bypassed) after the warm-up."""
    # Only this adapter's peer is imported: importing them all costs minutes under valgrind.
    adapter = next(cls for cls in Adapter.__subclasses__() if cls.name == name)()
    track = adapter.make(kind, bypass=True)
    await adapter.start(track, bypass=True)
    await adapter.push(track, speech(seconds))
    if kind == "mixing":
        await adapter.push_background(track, ambience(seconds))
    calls = calls_per_period(adapter)
    for _ in range((WARMUP + periods) * calls):
        await adapter.recv(track)
    adapter.close(track)


def _count(name: str, kind: str, seconds: float, periods: int) -> int:
    """Instructions of one child run under cachegrind."""
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={tmp}/out"]
        command += [sys.executable, __file__, "--child", name, kind, str(seconds), str(periods)]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = REFS.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run of {name} {kind} failed: {proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_period(name: str, kind: str, seconds: int) -> float:
    """Instructions per 20 ms period: the long run minus the short one, over the periods between."""
    short, long = PLANS[seconds]
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two runs side by side, one per core
        results = list(pool.map(lambda n: _count(name, kind, seconds, n), (short, long)))
    return (results[1] - results[0]) / (long - short)


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"instructions per 20 ms": {}, "ratios": {}, "peers": {}}
    figures = report["instructions per 20 ms"]
    adapters: list[Adapter] = [a for a in load_adapters() if not args.only or a.name in args.only]
    for adapter in adapters:
        if adapter.error:
            report["peers"][adapter.name] = adapter.error
            continue
        report["peers"][adapter.name] = "measured"
        for kind in adapter.kinds:
            for seconds in args.queued:
                if args.verbose:
                    print(f"# {adapter.name} {kind}, {seconds} s queued", file=sys.stderr, flush=True)
                figures[f"{adapter.name} {kind}, {seconds} s queued"] = round(per_period(adapter.name, kind, seconds))
    for adapter in adapters:
        for kind in ("mixing", "tee"):
            for seconds in args.queued:
                top = figures.get(f"{adapter.name} {kind}, {seconds} s queued")
                bottom = figures.get(f"{adapter.name} base, {seconds} s queued")
                if top and bottom:
                    report["ratios"][f"{adapter.name} {kind} / {adapter.name} base, {seconds} s queued"] = round(
                        top / bottom, 3
                    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", help="adapter names to run (default: all)")
    parser.add_argument(
        "--queued", nargs="+", type=int, default=list(PLANS), choices=list(PLANS), help="seconds of speech queued"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--verbose", action="store_true", help="say which figure runs")
    parser.add_argument("--child", nargs=4, metavar=("ADAPTER", "KIND", "SECONDS", "PERIODS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, kind, seconds, periods = args.child
        asyncio.run(_child(name, kind, float(seconds), int(periods)))
        return
    if shutil.which("valgrind") is None:
        parser.exit(2, "valgrind is not installed (Debian: apt-get install valgrind)\n")
    report = run(args)
    for key, value in {**report["instructions per 20 ms"], **report["ratios"]}.items():
        print(f"{key:60} {value:>10}")
    for name, state in report["peers"].items():
        if state != "measured":
            print(f"{name}: {state}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
