"""Extending a track with your own output stage and voice tap, using only public names.

Run: ``python examples/own_stage.py``.

Two small extensions composed into a :class:`agent_audio.MixingAgentAudioTrack`:

* ``LevelMeter`` is an :class:`agent_audio.OutputStage`: it sees every outgoing frame
  (an :class:`agent_audio.OutputFrame` value: int16 samples, whether the voice is in it,
  a peak bound, the turn id, the pts) and keeps the level of the voice in dBFS for a UI.
  It does not change the frame, so it returns it as it is. Stages given to the track run
  before the background mix, in the order given, inside ``recv()``: keep them cheap.
* ``Timeline`` is an :class:`agent_audio.VoiceTap`: it is told, in order, of every block
  of voice as it is queued and of pause, resume, interrupt and turn ends (what an
  avatar plugin needs to schedule lip-sync ahead of playout). It runs inside ``push()``
  and the control calls, never inside ``recv()``.

The track runs on :class:`agent_audio.testing.ManualClock`: one reply with a false
interruption and a barge-in renders in milliseconds.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import numpy.typing as npt

from agent_audio import MixingAgentAudioTrack, OutputFrame, VoiceTap
from agent_audio.testing import ManualClock


class LevelMeter:
    """An output stage: the voice level of each frame, in dBFS (-inf for silence)."""

    def __init__(self) -> None:
        self.levels: list[tuple[int, float]] = []  # (pts in samples, dBFS)

    def process(self, frame: OutputFrame) -> OutputFrame:
        if frame.voiced:
            rms = float(np.sqrt(np.mean(frame.samples.astype(np.float32) ** 2)))
            self.levels.append((frame.pts, 20 * math.log10(rms / 32768) if rms else -math.inf))
        return frame  # unchanged: the next stage (the background mix) gets the same value


class Timeline(VoiceTap):
    """A voice tap: what was queued, and the control events, in order."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.events: list[str] = []
        self.queued: dict[int, int] = {}  # turn id -> samples per channel queued

    def voice_queued(self, turn_id: int, samples: npt.NDArray[np.int16]) -> None:
        self.queued[turn_id] = self.queued.get(turn_id, 0) + len(samples)

    def paused(self) -> None:
        self.events.append("paused")

    def resumed(self) -> None:
        self.events.append("resumed")

    def interrupted(self, turn_ids: tuple[int, ...]) -> None:
        self.events.append(f"interrupted {list(turn_ids)}")

    def turn_ended(self, turn_id: int) -> None:
        self.events.append(f"turn {turn_id} ended after {self.queued[turn_id] / self.sample_rate:.2f} s of voice")


async def main() -> tuple[LevelMeter, Timeline]:
    meter = LevelMeter()
    timeline = Timeline(48000)
    track = MixingAgentAudioTrack(clock=ManualClock(), stages=[meter], taps=[timeline])
    assert [type(stage).__name__ for stage in track.stages] == ["LevelMeter", "Background"]
    t = np.arange(48000) / 48000
    voice = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # 1 s at -13.5 dBFS RMS
    first = track.start_turn()
    await first.push(voice)
    first.end()
    for _ in range(20):
        await track.recv()
    track.pause()  # the user coughed
    for _ in range(10):
        await track.recv()
    track.resume()  # it was nothing
    second = track.start_turn()
    await second.push(voice)
    for _ in range(45):
        await track.recv()
    track.interrupt()  # the user barged in
    second.end()
    for _ in range(15):
        await track.recv()
    track.stop()
    return meter, timeline


if __name__ == "__main__":
    meter, timeline = asyncio.run(main())
    print(f"{len(meter.levels)} voiced frames, loudest {max(level for _, level in meter.levels):.1f} dBFS")
    for event in timeline.events:
        print(event)
