"""End-to-end sessions: what one agent session costs on this machine, per kind of track.

N real aiortc peer connections per sender process: the senders in one process (a
child; ``--processes P`` starts P of them, N sessions each), the receivers in this
process, over this machine's own interface address (aioice never offers 127.0.0.1),
DTLS-SRTP and Opus. Every track speaks the bundled speech about half the time, in 4 s
turns (offsets staggered per session). Kinds:

- ``track``: :class:`agent_audio.AgentAudioTrack`, frames (aiortc encodes them);
- ``mixing``: :class:`agent_audio.MixingAgentAudioTrack` with the bundled ambience
  looping under the voice at -20 dB (ducked by 10 dB while it speaks), frames;
- ``aiortc``: an aiortc ``MediaStreamTrack`` pacing the same PCM the way aiortc's
  ``AudioStreamTrack`` does (aiortc encodes);
- ``opus``: the base track with :func:`agent_audio.enable_opus_output`: the track
  encodes its own Opus packets on the loop, cached packets for digital silence;
- ``mixing-opus``: the mixing track with encoded output (the bed is never digital
  silence: every frame is encoded).

Per run, on each sender process, after a warm-up: CPU time (``getrusage``, all
threads) over the window, per session and as sessions per core; p99 frame lateness
(when the sender gets the frame or packet from its track, against its due time on the
grid of the first frame, taken by a thin wrapper the sender reads); frames delivered
(received / handed out); and for the first two sessions the received audio's SNR
against what was sent (the track's recording, i.e. the final blocks; for ``aiortc``
the frames), aligned by RTP timestamp plus a searched codec delay. Those two sessions
of every agent_audio kind record to a WAV file: a copy and a worker thread, a few
tenths of a percent of a core. Kinds are interleaved and repeated; medians with
[min-max].

Usage: ``python benchmarks/sessions.py --sessions 20 --window 20 --repeats 2``;
``--processes 2`` for one sender process per core; ``--quick`` is N=2, 5 s, one
repeat (the smoke test). The machine is shared: expect noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_audio import AgentAudioTrack, MixingAgentAudioTrack, Recorder, enable_opus_output
from agent_audio.demo.speech import bundled, load_speech

KINDS = ("track", "mixing", "aiortc", "opus", "mixing-opus")
ENCODED = {"opus", "mixing-opus"}
BED_VOLUME = 0.1  # -20 dB
RATE = 48000
FRAME = 960
TURN = 4.0  # seconds of speech per turn, then as long quiet
RECORDED = 2  # sessions whose sent and received audio are kept for SNR
Pcm = npt.NDArray[np.int16]


#: Lateness (s) beyond which the probe's grid is re-based: the track's own re-anchor
#: threshold (3 frames, agent_audio._pacer), so that a track that re-anchored is measured
#: on its new grid, not counted late for ever after. aiortc's pacing bursts instead.
STALL = 0.06


class Probe:
    """Lateness and the sent audio of one session, measured where recv() returns.

    Due times are a 20 ms grid anchored at the first frame of the measured window; a
    frame later than ``STALL`` (an event-loop stall) counts as a stall, its lateness is
    kept, and the grid is re-based on it, as the track re-anchors (aiortc's pacing
    bursts to catch up: its burst then counts as on time).
    """

    def __init__(self, record: bool) -> None:
        self.anchor: float | None = None
        self.count = 0
        self.measuring = False
        self.lateness: list[float] = []
        self.stalls = 0
        self.sent: list[Pcm] | None = [] if record else None

    def returned(self) -> None:
        if self.measuring:
            now = time.monotonic()
            if self.anchor is None:
                self.anchor = now - self.count * FRAME / RATE
            late = now - (self.anchor + self.count * FRAME / RATE)
            self.lateness.append(max(0.0, late))
            if late > STALL:
                self.stalls += 1
                self.anchor = now - self.count * FRAME / RATE
        self.count += 1


class Probed(MediaStreamTrack):
    """What the sender reads: the track (or its encoded view), timed where the sender gets each frame."""

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack, probe: Probe) -> None:
        super().__init__()
        self.inner = inner
        self.probe = probe

    async def recv(self) -> Any:
        data = await self.inner.recv()
        self.probe.returned()
        return data

    def stop(self) -> None:
        super().stop()
        self.inner.stop()


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
        if self.probe.sent is not None:
            self.probe.sent.append(block.copy())
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


def make_track(kind: str, probe: Probe, bed: npt.NDArray[np.float32]) -> MediaStreamTrack:
    if kind == "aiortc":
        return AiortcTrack(probe)
    if kind.startswith("mixing"):
        track = MixingAgentAudioTrack()
        track.set_background(bed, volume=BED_VOLUME)
        return track
    return AgentAudioTrack()


async def sender(conn: Any, kind: str, sessions: int, warmup: float, window: float) -> None:
    loop = asyncio.get_running_loop()
    speech = (np.clip(load_speech(None, rate=RATE), -1, 1) * 32767).astype(np.int16)
    step = int(TURN * RATE)
    turns = [speech[i : i + step] for i in range(0, len(speech) - step + 1, step)]
    bed = load_speech(bundled("ambience.ogg"), rate=RATE)
    probes = [Probe(kind == "aiortc" and i < RECORDED) for i in range(sessions)]
    tracks = [make_track(kind, probe, bed) for probe in probes]
    folder = tempfile.TemporaryDirectory()
    recorders: list[Recorder] = [
        track.start_recording(Path(folder.name) / f"{i}.wav")
        for i, track in enumerate(tracks[:RECORDED])
        if isinstance(track, AgentAudioTrack)
    ]
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(sessions)]
    senders = []
    offers = []
    for pc, track in zip(pcs, tracks, strict=True):
        senders.append(pc.addTrack(track))
        await pc.setLocalDescription(await pc.createOffer())
        offers.append(pc.localDescription.sdp)
    conn.send(offers)
    answers = await loop.run_in_executor(None, conn.recv)
    for pc, sender, probe, sdp in zip(pcs, senders, probes, answers, strict=True):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if kind in ENCODED:
            enable_opus_output(pc, sender)  # after the answer, before the first frame
        sender.replaceTrack(Probed(sender.track, probe))
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
    sent = (
        [await recorded(r) for r in recorders]
        if recorders
        else [np.concatenate(p.sent) if p.sent else np.zeros(0, np.int16) for p in probes[:RECORDED]]
    )
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    lateness = np.concatenate([np.asarray(p.lateness) for p in probes]) if sessions else np.zeros(0)
    conn.send(
        {
            "cpu_fraction": cpu / (wall1 - wall0),
            "lateness": lateness.tolist(),
            "handed_out": [p.count for p in probes],
            "stalls": sum(p.stalls for p in probes),
            "connected": sum(pc.connectionState == "connected" for pc in pcs),
            "sent": sent,
        }
    )
    await loop.run_in_executor(None, conn.recv)  # the receivers have what they need
    for task in drivers:
        task.cancel()
    await asyncio.gather(*drivers, return_exceptions=True)
    for pc in pcs:
        await pc.close()
    folder.cleanup()


async def recorded(recorder: Recorder) -> Pcm:
    """What ``recorder`` holds so far (the final blocks the track handed out), mono int16."""
    path = await recorder.stop()
    with wave.open(str(path), "rb") as wav:
        pcm: Pcm = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).copy()
    return pcm


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
            assert isinstance(frame, av.AudioFrame) and frame.pts is not None
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


async def run_one(kind: str, sessions: int, warmup: float, window: float, processes: int = 1) -> dict[str, Any]:
    """One run: ``processes`` sender processes of ``sessions`` sessions each, all received here."""
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(processes)]
    children = [
        ctx.Process(target=sender_process, args=(there, kind, sessions, warmup, window), daemon=True)
        for _, there in pipes
    ]
    for child in children:
        child.start()
    loop = asyncio.get_running_loop()
    total = sessions * processes
    receivers = [Receiver(i % sessions < RECORDED) for i in range(total)]
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(total)]
    for p, (here, _) in enumerate(pipes):
        offers = await loop.run_in_executor(None, here.recv)
        answers = []
        for k, sdp in enumerate(offers):
            pc, rx = pcs[p * sessions + k], receivers[p * sessions + k]
            pc.on("track", rx.attach)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answers.append(pc.localDescription.sdp)
        here.send(answers)
    reports: list[dict[str, Any]] = [await loop.run_in_executor(None, here.recv) for here, _ in pipes]
    await asyncio.sleep(0.3)  # the last packets in flight
    for here, _ in pipes:
        here.send("done")
    for pc in pcs:
        await pc.close()
    for rx in receivers:
        if rx.task is not None:
            rx.task.cancel()
    for child in children:
        await loop.run_in_executor(None, child.join, 30)
    skip = int(RATE * 0.5)  # the first half second: jitter-buffer start-up
    snrs: list[float] = []
    handed_out: list[int] = []
    for p, report in enumerate(reports):
        mine = receivers[p * sessions : (p + 1) * sessions]
        snrs += [snr_db(sent, rx.frames, skip) for sent, rx in zip(report["sent"], mine, strict=False)]
        handed_out += report["handed_out"]
    lateness = np.concatenate([np.asarray(r["lateness"]) for r in reports])
    # Frames received among those handed out before the report (pts counted from the first).
    got = sum(
        sum(1 for p in rx.pts if p - rx.pts[0] < n * FRAME)
        for rx, n in zip(receivers, handed_out, strict=True)
        if rx.pts
    )
    cpu = [r["cpu_fraction"] for r in reports]
    return {
        "kind": kind,
        "sessions": total,
        "processes": processes,
        "cpu_fraction": sum(cpu),
        "process_cpu": cpu,
        "process_p99_ms": [float(np.percentile(r["lateness"], 99) * 1000) for r in reports],
        "session_cpu": sum(cpu) / total,
        "p99_ms": float(np.percentile(lateness, 99) * 1000) if len(lateness) else float("nan"),
        "stalls": sum(r["stalls"] for r in reports),
        "connected": sum(r["connected"] for r in reports),
        "delivered": got / max(1, sum(handed_out)),
        "snr_db": snrs,
    }


def summary(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{statistics.median(values):.4g} [{min(values):.4g}-{max(values):.4g}]"


async def main_async(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in args.kinds}
    for repeat in range(args.repeats):
        order = args.kinds if repeat % 2 == 0 else list(reversed(args.kinds))
        for kind in order:
            result = await run_one(kind, args.sessions, args.warmup, args.window, args.processes)
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
    parser.add_argument(
        "--processes", type=int, default=1, help="sender processes, --sessions each (one per core: see the README)"
    )
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--quick", action="store_true", help="N=2, 5 s, one repeat: a smoke test")
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.window, args.warmup, args.repeats = 2, 5.0, 1.0, 1
    runs = asyncio.run(main_async(args))
    total = args.sessions * args.processes
    print(
        f"N = {total} sessions ({args.processes} sender process(es) x {args.sessions}), {args.window:g} s window, "
        f"{args.repeats} repeat(s); median [min-max]"
    )
    print(
        f"{'kind':11} {'CPU/session %':>22} {'sess/core':>9} {'p99 late ms':>22} {'stalls':>6} {'delivered':>9} "
        f"{'SNR dB':>22}"
    )
    for kind, kind_runs in runs.items():
        for r in kind_runs:
            r["cpu_pct"] = 100 * r["session_cpu"]
        per_core = 1 / statistics.median(r["session_cpu"] for r in kind_runs)
        print(
            f"{kind:11} {summary(kind_runs, 'cpu_pct'):>22} {per_core:>9.1f} {summary(kind_runs, 'p99_ms'):>22} "
            f"{statistics.median(r['stalls'] for r in kind_runs):>6g} "
            f"{statistics.median(r['delivered'] for r in kind_runs):>9.3f} {summary(kind_runs, 'snr_mean_db'):>22}"
        )
    for encoded, frames in (("opus", "aiortc"), ("opus", "track"), ("mixing-opus", "mixing")):
        if encoded in runs and frames in runs:
            ratio = statistics.median(r["session_cpu"] for r in runs[encoded]) / statistics.median(
                r["session_cpu"] for r in runs[frames]
            )
            print(f"session CPU {encoded} / {frames}: {ratio:.2f}x")
    if args.processes > 1:
        for kind, kind_runs in runs.items():
            for r in kind_runs:
                cores = ", ".join(f"{100 * c:.0f} %" for c in r["process_cpu"])
                p99s = ", ".join(f"{p:.1f}" for p in r["process_p99_ms"])
                print(f"{kind:11} per process: CPU {cores} of a core; p99 lateness {p99s} ms")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
