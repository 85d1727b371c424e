"""Background under the voice: a looping ambience bed, ducking, and a "thinking" sound.

Run: ``python examples/background_ambience.py [--out ambience_demo.wav]``.

A :class:`agent_audio.MixingAgentAudioTrack` plays the bundled ventilation ambience in a
loop. While the agent "thinks" (waits for its LLM), a soft two-note sound plays on top;
then the reply is spoken and the bed ducks 10 dB under it (30 ms attack, 90 ms release),
and an interrupt fades the voice while the ambience plays on, untouched. The track runs
on :class:`agent_audio.testing.ManualClock`, so the 6 s mix renders to a WAV file in a
fraction of a second, with no real sleeps: the way to test an agent's audio offline.
"""

from __future__ import annotations

import argparse
import asyncio
from importlib import resources
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from agent_audio import MixingAgentAudioTrack
from agent_audio.testing import ManualClock


def thinking_sound(rate: int) -> np.ndarray:
    """Two soft notes (E5 then A5, 150 ms each, 20 ms fades): float32 mono in [-1, 1]."""
    t = np.arange(round(0.15 * rate)) / rate
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    notes = [0.15 * np.sin(2 * np.pi * f * t) * envelope for f in (659.3, 880.0)]
    return np.concatenate([notes[0], np.zeros(round(0.1 * rate)), notes[1]]).astype(np.float32)


async def main(out: Path) -> None:
    track = MixingAgentAudioTrack(duck=-10.0, clock=ManualClock())
    data = resources.files("agent_audio") / "data"
    with resources.as_file(data / "ambience.ogg") as bed, resources.as_file(data / "speech.ogg") as speech:
        await track.set_background(bed, volume=1.0)  # decoded off the loop; wait until it mixes
        mix: list[npt.NDArray[np.int16]] = []

        async def play(seconds: float) -> None:
            for _ in range(round(seconds / 0.02)):
                mix.append(np.asarray((await track.recv()).to_ndarray(), dtype=np.int16).reshape(-1))

        await play(0.5)  # the ambience alone
        thinking = track.play_sound(thinking_sound(track.sample_rate))
        await play(0.5)  # the agent is thinking
        print(f"thinking sound done: {thinking.done}")
        turn = track.start_turn()
        with av.open(str(speech)) as container:
            for frame in container.decode(audio=0):
                await turn.push(frame)
                if frame.time is not None and frame.time > 4.0:
                    break
        turn.end()
        await play(3.0)  # the reply, with the bed ducked under it
        track.interrupt()  # barge-in: the voice fades out, the ambience goes on
        await play(2.0)
        print(f"turn: {turn.stats}")
    track.stop()
    pcm = np.concatenate(mix)
    with av.open(str(out), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=track.sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = track.sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    print(f"wrote {out}: {len(pcm) / track.sample_rate:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("ambience_demo.wav"))
    asyncio.run(main(parser.parse_args().out))
