"""The duplex demo (``python -m agent_audio demo --barge-in``): the user talks back, the policy reacts.

The agent side sends its replies on a plain :class:`~agent_audio.AgentAudioTrack`; the
listener side sends a user's voice back on a second track (:class:`UserVoice`: silence,
and at scripted moments while the agent speaks, three real recordings). The agent runs
Silero VAD (:class:`agent_audio.vad.SileroVAD`) on the track it receives and a
:class:`~agent_audio.BargeInPolicy` on the probabilities; nothing else calls pause,
resume or interrupt. Turn 1 hears a backchannel ("uh-huh": a false interruption, paused
and resumed) and then a cough (nothing should happen); turn 2 hears a real barge-in
sentence (paused at its onset, interrupted as it goes on). Both sides record what they
received; :mod:`agent_audio.demo.duplex_report` measures it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from agent_audio import AgentAudioTrack, BargeInDecision, BargeInPolicy, Turn, TurnStats

from .analysis import levels_dbfs, most_voiced
from .loopback import Listener, Loopback, ReceivedAudio
from .run import STEP_TIMEOUT, DemoError
from .speech import load_speech, split_turns
from .user_voice import SentClip, UserClip, UserVoice

__all__ = ["CLIPS", "DuplexOptions", "DuplexRun", "run_duplex"]

T = TypeVar("T")

#: The user's three clips, bundled in ``agent_audio/data`` (made once with piper), in the order sent.
CLIPS = {"backchannel": "user_backchannel.ogg", "cough": "user_cough.ogg", "barge_in": "user_barge_in.ogg"}
SOURCE_RATE = 24000  # Hz: the agent's speech as a TTS service sends it
_CHUNK = 0.040  # seconds per push


@dataclass(frozen=True)
class DuplexOptions:
    """Where to write, what the agent says, and when the user talks (seconds into a turn's speech).

    Each moment is moved to the most voiced instant within 1.5 s after it, so the agent
    is audibly speaking when the user starts.
    """

    out: Path = Path("agent_audio_demo")
    input: Path | None = None
    fade_out: float = 0.2
    backchannel_at: float = 1.5
    cough_after: float = 2.0
    barge_in_at: float = 1.5
    lead_in: float = 1.0
    gap: float = 0.5
    tail: float = 1.0


@dataclass
class DuplexRun:
    """Everything the duplex conversation produced, for the report. Times are :func:`time.monotonic` seconds."""

    options: DuplexOptions
    started: float
    turns: list[TurnStats]
    sent: dict[str, SentClip]
    """When the listener sent each clip (keys of :data:`CLIPS`)."""
    decisions: list[tuple[float, BargeInDecision]]
    """Every decision of the policy, with the monotonic second it was made."""
    track_events: list[tuple[float, str]]
    """``paused``, ``resumed``, ``interrupted`` calls on the agent's track as its events report them."""
    received: ReceivedAudio
    """The agent's audio as the listener received it."""
    heard: ReceivedAudio
    """The user's audio as the agent received it."""
    vad_windows: int
    vad_cpu: float
    """CPU seconds spent in :meth:`SileroVAD.process` (resampling, model, policy), on the loop's thread."""
    vad_wall: float
    """Seconds the agent was reading the user's track."""
    process_cpu: float
    """CPU seconds of the whole process (both peers, Opus, SRTP, VAD) over ``vad_wall``."""
    log: list[str] = field(default_factory=list)


class _Ear:
    """The agent side's reading of the user's track: records each frame, runs the VAD on it, times the VAD."""

    def __init__(self, track: MediaStreamTrack, policy: BargeInPolicy) -> None:
        from agent_audio.vad import SileroVAD  # the vad extra, checked by the caller

        self.vad = SileroVAD(track, policy)
        self.recorded = Listener()
        self.cpu = 0.0
        self.task = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            self.recorded.record(frame)
            before = time.thread_time()
            self.vad.process(frame)
            self.cpu += time.thread_time() - before

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def run_duplex(options: DuplexOptions, progress: Callable[[str], None]) -> DuplexRun:
    """Run the duplex conversation; call ``progress`` with one line per event.

    Raises:
        DemoError: the speech is too short for the script, or a step took over
            :data:`~agent_audio.demo.run.STEP_TIMEOUT` seconds.
        FileNotFoundError, AudioFileError: ``options.input`` is missing or not audio.
        RuntimeError: the peer connection did not come up.
        AgentAudioError: the ``vad`` extra is not installed.
    """
    start = time.monotonic()
    log: list[str] = []

    def say(line: str) -> None:
        line = f"[{time.monotonic() - start:6.2f} s] {line}"
        log.append(line)
        progress(line)

    clips = {key: UserClip.load(name) for key, name in CLIPS.items()}
    first, second = _turns(options)
    levels = [levels_dbfs(first, SOURCE_RATE), levels_dbfs(second, SOURCE_RATE)]
    points = {"backchannel": most_voiced(levels[0], start=options.backchannel_at, search=1.5, before=0.1, after=0.6)}
    points["cough"] = most_voiced(
        levels[0], start=points["backchannel"] + options.cough_after, search=1.5, before=0.1, after=0.6
    )
    points["barge_in"] = most_voiced(levels[1], start=options.barge_in_at, search=1.5, before=0.1, after=0.8)
    if points["cough"] + clips["cough"].duration + 0.5 > len(first) / SOURCE_RATE:
        raise DemoError(f"expected a first turn long enough for a cough at {points['cough']:.1f} s, it is shorter")

    track = AgentAudioTrack(fade_out=options.fade_out)  # unused when the interrupt comes while paused
    policy = BargeInPolicy(track)
    decisions: list[tuple[float, BargeInDecision]] = []
    track_events: list[tuple[float, str]] = []

    def on_decision(d: BargeInDecision) -> None:
        decisions.append((time.monotonic(), d))
        say(f"policy: {d.action.value} ({d.reason.value}), turn {d.turn_id}, speech {d.speech_duration * 1000:.0f} ms")

    policy.on("decision", on_decision)
    for name in ("paused", "resumed", "interrupted"):
        track.on(name, lambda _e, name=name: track_events.append((time.monotonic(), name)))
    user = UserVoice()
    say("connecting two RTCPeerConnections on this machine; the listener sends a user's voice back")
    try:
        async with Loopback(track, reply=user) as loopback:
            if loopback.reply_received is None:
                raise RuntimeError("expected the listener's track at the agent side, got none")
            ear = _Ear(loopback.reply_received, policy)
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(options.lead_in)
            sent: dict[str, SentClip] = {}
            say("turn 1: the user says 'uh-huh', then coughs")
            turn, feed = _speak(track, first)
            for key in ("backchannel", "cough"):
                await _reach(turn, points[key], 1)
                say(f"user: {clips[key].name} ({clips[key].duration:.2f} s), {points[key]:.2f} s into turn 1")
                sent[key] = await _within(user.say(clips[key]), f"sending {clips[key].name}")
            stats = [await _within(turn.wait_for_playout(), "turn 1's playout")]
            await feed
            await asyncio.sleep(options.gap)
            say("turn 2: the user barges in")
            turn, feed = _speak(track, second)
            await _reach(turn, points["barge_in"], 2)
            clip = clips["barge_in"]
            say(f"user: {clip.name} ({clip.duration:.2f} s), {points['barge_in']:.2f} s into turn 2")
            sent["barge_in"] = await _within(user.say(clip), f"sending {clip.name}")
            stats.append(await _within(turn.wait_for_playout(), "turn 2's playout"))
            await _within(feed, "turn 2's speech")
            await asyncio.sleep(options.tail)
            vad_wall, process_cpu = time.monotonic() - wall0, time.process_time() - cpu0
            track.stop()
            user.stop()
            await asyncio.sleep(0.3)  # frames in flight
            await ear.close()
            received, heard = loopback.listener.received(), ear.recorded.received()
    finally:
        policy.close()
        track.stop()
        user.stop()
    say(f"done: the listener received {len(received.samples) / received.sample_rate:.2f} s of the agent")
    return DuplexRun(
        options,
        start,
        stats,
        sent,
        decisions,
        track_events,
        received,
        heard,
        ear.vad.windows,
        ear.cpu,
        vad_wall,
        process_cpu,
        log,
    )


def _turns(options: DuplexOptions) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The agent's first two replies: the speech cut at its longest pauses."""
    speech = load_speech(options.input, rate=SOURCE_RATE)
    parts = split_turns(speech, SOURCE_RATE)
    if min(len(p) for p in parts[:2]) < 4.0 * SOURCE_RATE:
        lengths = ", ".join(f"{len(p) / SOURCE_RATE:.1f}" for p in parts)
        raise DemoError(f"expected two replies of at least 4 s each (cut at the longest pauses), got {lengths} s")
    return parts[0], parts[1]


def _speak(track: AgentAudioTrack, audio: npt.NDArray[np.float32]) -> tuple[Turn, asyncio.Task[None]]:
    """Start a turn and push ``audio`` into it in 40 ms chunks, faster than real time, as a TTS stream does."""
    turn = track.start_turn()

    async def feed() -> None:
        step = round(_CHUNK * SOURCE_RATE)
        try:
            for i in range(0, len(audio), step):
                await turn.push(audio[i : i + step], sample_rate=SOURCE_RATE)
                await asyncio.sleep(_CHUNK / 4)
        finally:
            turn.end()

    return turn, asyncio.ensure_future(feed())


async def _reach(turn: Turn, point: float, number: int) -> None:
    """Wait until ``point`` seconds of the turn have played (bounded)."""
    stats = await _within(turn.wait_played(point), f"turn {number} to play {point:.2f} s")
    if stats.played_ms < point * 1000 - 1:
        raise DemoError(f"expected turn {number} to play {point:.2f} s, it ended at {stats.played_ms / 1000:.2f} s")


async def _within(awaitable: Awaitable[T], what: str) -> T:
    """Await ``awaitable`` for at most :data:`STEP_TIMEOUT` seconds. Raises DemoError naming ``what`` on timeout."""
    try:
        return await asyncio.wait_for(awaitable, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise DemoError(f"expected {what} within {STEP_TIMEOUT:.0f} s, it did not happen") from None
