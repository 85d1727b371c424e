"""An avatar plugin: turns the agent's voice into mouth openness, 50 values a second.

Run: ``python examples/avatar_plugin.py [--csv mouth.csv]``.

The plugin is a sink for :class:`agent_audio.TeeAgentAudioTrack`. It receives the voice
as it is pushed (packed s16 bytes, 48 kHz mono here), ahead of playout, and renders one
mouth-openness value per 20 ms on its own clock: the RMS of those 20 ms, mapped from
-50..-10 dBFS to 0..1 (a simple RMS viseme, the kind real avatar renderers smooth and
map to blend shapes). It holds its pose on pause, closes the mouth and drops what it had
buffered on interrupt, and closes the mouth when a turn's audio has all been rendered.
While the sink is attached, the WebRTC track sends silence: the avatar publishes the voice.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from importlib import resources
from pathlib import Path

import av
import numpy as np

from agent_audio import TeeAgentAudioTrack

FRAME = 0.020  # seconds per rendered mouth pose


class MouthAnimator:
    """An avatar sink: audio in, one mouth-openness value (0..1) out every 20 ms."""

    def __init__(self, sample_rate: int) -> None:
        self.samples_per_pose = round(FRAME * sample_rate)
        self.pending = bytearray()  # audio received, not rendered yet
        self.paused = False
        self.poses: list[tuple[float, float, str]] = []  # (seconds, openness, state)
        self._start = 0.0

    # -- the sink protocol (agent_audio.AvatarSink) ------------------------------

    async def handle_audio_input(self, data: bytes) -> None:
        self.pending += data

    async def on_pause(self) -> None:
        self.paused = True  # hold the current pose: it may be a false interruption

    async def on_resume(self) -> None:
        self.paused = False

    async def on_interrupt(self) -> None:
        self.pending.clear()  # the agent stopped talking: so does the face
        self.paused = False

    async def on_turn_end(self, turn_id: int) -> None:
        print(f"avatar: turn {turn_id} audio complete, {len(self.pending) // 2} samples left to render")

    # -- the renderer ------------------------------------------------------------

    async def render(self, seconds: float) -> None:
        """Render poses in real time for ``seconds``."""
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        for n in range(round(seconds / FRAME)):
            await asyncio.sleep(max(0.0, self._start + (n + 1) * FRAME - loop.time()))
            openness, state = self._next_pose()
            self.poses.append((n * FRAME, openness, state))
            print(f"{n * FRAME:5.2f} s {state:>7} |{'#' * round(openness * 40):<40}|")

    def _next_pose(self) -> tuple[float, str]:
        if self.paused:
            last = self.poses[-1][1] if self.poses else 0.0
            return last, "paused"
        size = self.samples_per_pose * 2
        if len(self.pending) < size:
            self.pending.clear()
            return 0.0, "idle"
        chunk = np.frombuffer(bytes(self.pending[:size]), dtype="<i2").astype(np.float64) / 32768
        del self.pending[:size]
        rms = math.sqrt(float(np.mean(chunk**2))) or 1e-9
        return min(1.0, max(0.0, (20 * math.log10(rms) + 50) / 40)), "talking"


async def main() -> list[tuple[float, float, str]]:
    track = TeeAgentAudioTrack()
    avatar = MouthAnimator(track.sample_rate)
    track.add_sink(avatar)
    renderer = asyncio.ensure_future(avatar.render(4.0))

    turn = track.start_turn()
    sample = resources.files("agent_audio") / "data" / "speech.ogg"
    with resources.as_file(sample) as path, av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            await turn.push(frame)  # TTS output arrives faster than real time
            if frame.time is not None and frame.time > 4.0:
                break
    turn.end()

    await asyncio.sleep(1.0)
    track.pause()  # the user coughed
    await asyncio.sleep(0.4)
    track.resume()  # it was nothing
    await asyncio.sleep(1.0)
    track.interrupt()  # the user really talks: the mouth closes at once
    await renderer
    track.stop()
    talking = sum(1 for _, _, state in avatar.poses if state == "talking")
    print(f"rendered {len(avatar.poses)} poses, {talking} talking")
    return avatar.poses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, help="also write the poses here")
    csv = parser.parse_args().csv
    poses = asyncio.run(main())
    if csv is not None:
        csv.write_text("seconds,openness,state\n" + "".join(f"{t:.2f},{o:.3f},{s}\n" for t, o, s in poses))
        print(f"wrote {csv}")
