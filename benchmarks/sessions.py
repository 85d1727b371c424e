"""End-to-end sessions: what one agent session costs on this machine, per kind of track.

N real aiortc peer connections: the senders in one process (a child), the receivers in
this process, over this machine's own interface address (aioice never offers
127.0.0.1), DTLS-SRTP and Opus. Every track speaks the bundled speech about half the
time, in ~4 s turns (offsets staggered per session). Kinds:

- ``track``: :class:`agent_audio.AgentAudioTrack`, frames (aiortc encodes them);
- ``aiortc``: an aiortc ``MediaStreamTrack`` pacing the same PCM the way aiortc's
  ``AudioStreamTrack`` does (aiortc encodes);
- ``opus``: the base track with the track-owned Opus encoder
  (:class:`agent_audio._opus.OpusPacketizer`) returning packets.

Per run, on the sender process, after a warm-up: CPU time (``getrusage``, all threads)
over the window, per session and as sessions per core; p99 frame lateness (when
``recv()`` returns against its due time on the grid of the first frame); frames
delivered (received / handed out); and for the first sessions the received audio's SNR
against what was sent, aligned by RTP timestamp (the receiver's pts) plus a searched
codec delay. Kinds are interleaved and repeated; medians with [min-max].

Usage: ``python benchmarks/sessions.py --sessions 20 --window 20 --repeats 2``;
``--quick`` is N=2, 5 s, one repeat (the smoke test). The machine is shared: expect noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_audio import AgentAudioTrack
from agent_audio._opus import OpusPacketizer
from agent_audio.demo.speech import load_speech

KINDS = ("track", "aiortc", "opus")
RATE = 48000
FRAME = 960
TURN = 4.0  # seconds of speech per turn, then as long quiet
RECORDED = 2  # sessions whose sent and received audio are kept for SNR
Pcm = npt.NDArray[np.int16]


STALL = 0.1  # lateness (s) at which the grid is re-based, as the track re-anchors


class Probe:
    """Lateness and the sent audio of one session, measured where recv() returns.

    Due times are a 20 ms grid anchored at the first frame of the measured window; a
    frame later than ``STALL`` (an event-loop stall) counts as a stall, its lateness is
    kept, and the grid is re-based on it (the track re-anchors; aiortc's pacing bursts).
    """

    def __init__(self, record: bool) -> None:
        self.anchor: float | None = None
        self.count = 0
        self.measuring = False
        self.lateness: list[float] = []
        self.stalls = 0
        self.sent: list[Pcm] | None = [] if record else None

    def returned(self, block: Pcm) -> None:
        if self.measuring:
            now = time.monotonic()
            if self.anchor is None:
                self.anchor = now - self.count * FRAME / RATE
            late = now - (self.anchor + self.count * FRAME / RATE)
            self.lateness.append(max(0.0, late))
            if late > STALL:
                self.stalls += 1
                self.anchor = now - self.count * FRAME / RATE
        if self.sent is not None:
            self.sent.append(block.reshape(-1).copy())
        self.count += 1


class MeasuredTrack(AgentAudioTrack):
    """The base track, frames out."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self.probe = probe

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        self.probe.returned(frame.to_ndarray())
        return frame


class OpusTrack(AgentAudioTrack):
    """TEMPORARY, until the lead's shell takes an output object: the base track, Opus packets out."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self.probe = probe
        self.output = OpusPacketizer()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        frame = await super().recv()
        block = frame.to_ndarray().reshape(-1, 1)
        self.probe.returned(block)
        return self.output.emit(block, frame.pts)


class AiortcTrack(MediaStreamTrack):
    """aiortc's ``AudioStreamTrack`` pacing (wall clock, one sleep per frame), fed PCM."""

    kind = "audio"

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self.probe = probe
        self.queue: list[Pcm] = []
        self.buffer = np.zeros(0, np.int16)
        self._start = 0.0
        self._timestamp: int | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._timestamp is not None:
            self._timestamp += FRAME
            await asyncio.sleep(self._start + self._timestamp / RATE - time.time())
        else:
            self._start, self._timestamp = time.time(), 0
        if len(self.buffer) < FRAME and self.queue:
            self.buffer = np.concatenate([self.buffer, *self.queue])
            self.queue.clear()
        block = self.buffer[:FRAME]
        self.buffer = self.buffer[FRAME:]
        if len(block) < FRAME:
            block = np.concatenate([block, np.zeros(FRAME - len(block), np.int16)])
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(block)  # type: ignore[arg-type]
        frame.pts, frame.sample_rate, frame.time_base = self._timestamp, RATE, Fraction(1, RATE)
        self.probe.returned(block)
        return frame


async def speak(track: MediaStreamTrack, turns: list[Pcm], offset: float) -> None:
    """Speak ``TURN`` s, stay quiet ``TURN`` s, forever, starting ``offset`` s in."""
    await asyncio.sleep(offset)
    index = 0
    while True:
        pcm = turns[index % len(turns)]
        index += 1
        if isinstance(track, AgentAudioTrack):
            turn = track.start_turn()
            await turn.push(pcm)
            track.end_turn(turn)
        else:
            assert isinstance(track, AiortcTrack)
            track.queue.append(pcm)
        await asyncio.sleep(2 * TURN)


def make_track(kind: str, probe: Probe) -> MediaStreamTrack:
    return {"track": MeasuredTrack, "aiortc": AiortcTrack, "opus": OpusTrack}[kind](probe)


async def sender(conn: Any, kind: str, sessions: int, warmup: float, window: float) -> None:
    loop = asyncio.get_running_loop()
    speech = (np.clip(load_speech(None, rate=RATE), -1, 1) * 32767).astype(np.int16)
    step = int(TURN * RATE)
    turns = [speech[i : i + step] for i in range(0, len(speech) - step + 1, step)]
    probes = [Probe(i < RECORDED) for i in range(sessions)]
    tracks = [make_track(kind, probe) for probe in probes]
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(sessions)]
    offers = []
    for pc, track in zip(pcs, tracks, strict=True):
        pc.addTrack(track)
        await pc.setLocalDescription(await pc.createOffer())
        offers.append(pc.localDescription.sdp)
    conn.send(offers)
    answers = await loop.run_in_executor(None, conn.recv)
    for pc, sdp in zip(pcs, answers, strict=True):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    deadline = time.monotonic() + 30
    while any(pc.connectionState != "connected" for pc in pcs) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # polling N connection states; an Event per pc buys nothing here
    drivers = [
        asyncio.ensure_future(speak(t, turns, (i * 2 * TURN / sessions) % (2 * TURN))) for i, t in enumerate(tracks)
    ]
    await asyncio.sleep(warmup)
    for probe in probes:
        probe.measuring = True
    usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(window)
    usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    for probe in probes:
        probe.measuring = False
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    lateness = np.concatenate([np.asarray(p.lateness) for p in probes]) if sessions else np.zeros(0)
    conn.send(
        {
            "cpu_fraction": cpu / (wall1 - wall0),
            "p99_ms": float(np.percentile(lateness, 99) * 1000) if len(lateness) else float("nan"),
            "handed_out": [p.count for p in probes],
            "stalls": sum(p.stalls for p in probes),
            "connected": sum(pc.connectionState == "connected" for pc in pcs),
            "sent": [np.concatenate(p.sent) if p.sent else np.zeros(0, np.int16) for p in probes[:RECORDED]],
        }
    )
    await loop.run_in_executor(None, conn.recv)  # the receivers have what they need
    for task in drivers:
        task.cancel()
    await asyncio.gather(*drivers, return_exceptions=True)
    for pc in pcs:
        await pc.close()


def sender_process(conn: Any, kind: str, sessions: int, warmup: float, window: float) -> None:
    asyncio.run(sender(conn, kind, sessions, warmup, window))


class Receiver:
    """Reads one remote track; keeps (pts, mono int16) for recorded sessions, counts frames."""

    def __init__(self, record: bool) -> None:
        self.record = record
        self.frames: list[tuple[int, npt.NDArray[np.float64]]] = []
        self.pts: list[int] = []
        self.task: asyncio.Task[None] | None = None

    def attach(self, track: MediaStreamTrack) -> None:
        self.task = asyncio.ensure_future(self.read(track))

    async def read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.pts.append(int(frame.pts))
            if self.record:
                pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1)
                self.frames.append((int(frame.pts), pcm))


def snr_db(sent: Pcm, frames: list[tuple[int, npt.NDArray[np.float64]]], skip: int) -> float:
    """SNR (dB) of the received audio against the sent, placed by pts, best codec delay <= 50 ms."""
    if not frames or len(sent) <= skip:
        return float("nan")
    base = frames[0][0]
    end = max(pts - base + len(pcm) for pts, pcm in frames)
    received = np.zeros(end)
    for pts, pcm in frames:
        received[pts - base : pts - base + len(pcm)] = pcm
    ref = sent.astype(np.float64)[skip:]
    best = float("-inf")
    for lag in range(0, 2400, 8):  # coarse search, then fine around the best
        seg = received[skip + lag : skip + lag + len(ref)]
        n = len(seg)
        if n < len(ref) // 2:
            break
        err = float(np.dot(seg - ref[:n], seg - ref[:n]))
        value = 10 * np.log10(float(np.dot(ref[:n], ref[:n])) / max(err, 1e-9))
        if value > best:
            best, best_lag = value, lag
    for lag in range(max(0, best_lag - 8), best_lag + 9):
        seg = received[skip + lag : skip + lag + len(ref)]
        n = len(seg)
        err = float(np.dot(seg - ref[:n], seg - ref[:n]))
        best = max(best, 10 * np.log10(float(np.dot(ref[:n], ref[:n])) / max(err, 1e-9)))
    return best


async def run_one(kind: str, sessions: int, warmup: float, window: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    child = ctx.Process(target=sender_process, args=(there, kind, sessions, warmup, window), daemon=True)
    child.start()
    loop = asyncio.get_running_loop()
    offers = await loop.run_in_executor(None, here.recv)
    receivers = [Receiver(i < RECORDED) for i in range(sessions)]
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(sessions)]
    answers = []
    for pc, rx, sdp in zip(pcs, receivers, offers, strict=True):
        pc.on("track", rx.attach)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answers.append(pc.localDescription.sdp)
    here.send(answers)
    result: dict[str, Any] = await loop.run_in_executor(None, here.recv)
    await asyncio.sleep(0.3)  # the last packets in flight
    here.send("done")
    for pc in pcs:
        await pc.close()
    for rx in receivers:
        if rx.task is not None:
            rx.task.cancel()
    await loop.run_in_executor(None, child.join, 30)
    sent = result.pop("sent")
    skip = int(RATE * 0.5)  # the first half second: jitter-buffer start-up
    result["snr_db"] = [snr_db(s, rx.frames, skip) for s, rx in zip(sent, receivers, strict=False)]
    # Frames received among those handed out before the report (pts counted from the first).
    got = sum(
        sum(1 for p in rx.pts if p - rx.pts[0] < n * FRAME)
        for rx, n in zip(receivers, result["handed_out"], strict=True)
        if rx.pts
    )
    result["delivered"] = got / max(1, sum(result["handed_out"]))
    result["kind"], result["sessions"] = kind, sessions
    result["session_cpu"] = result["cpu_fraction"] / sessions
    del result["handed_out"]
    return result


def summary(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{statistics.median(values):.4g} [{min(values):.4g}-{max(values):.4g}]"


async def main_async(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in args.kinds}
    for repeat in range(args.repeats):
        order = args.kinds if repeat % 2 == 0 else list(reversed(args.kinds))
        for kind in order:
            result = await run_one(kind, args.sessions, args.warmup, args.window)
            result["snr_mean_db"] = float(np.nanmean(result["snr_db"])) if result["snr_db"] else float("nan")
            runs[kind].append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--window", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--quick", action="store_true", help="N=2, 5 s, one repeat: a smoke test")
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.window, args.warmup, args.repeats = 2, 5.0, 1.0, 1
    runs = asyncio.run(main_async(args))
    print(f"N = {args.sessions} sessions, {args.window:g} s window, {args.repeats} repeat(s); median [min-max]")
    print(
        f"{'kind':8} {'CPU/session %':>22} {'sessions/core':>10} {'p99 late ms':>22} {'delivered':>10} {'SNR dB':>22}"
    )
    for kind, kind_runs in runs.items():
        for r in kind_runs:
            r["cpu_pct"] = 100 * r["session_cpu"]
        per_core = 1 / statistics.median(r["session_cpu"] for r in kind_runs)
        print(
            f"{kind:8} {summary(kind_runs, 'cpu_pct'):>22} {per_core:>10.1f} {summary(kind_runs, 'p99_ms'):>22} "
            f"{statistics.median(r['delivered'] for r in kind_runs):>10.3f} {summary(kind_runs, 'snr_mean_db'):>22}"
        )
    if "opus" in runs and "aiortc" in runs:
        ratio = statistics.median(r["session_cpu"] for r in runs["opus"]) / statistics.median(
            r["session_cpu"] for r in runs["aiortc"]
        )
        print(f"session CPU opus / aiortc: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
