"""One-off: synthesize the bundled ambience bed, agent_audio/data/ambience.ogg.

Run: ``python tools/make_ambience.py``. Noise is built in the frequency domain over
exactly the clip's length, so the clip is periodic: played back to back it has no seam
and no click. A ventilation-like ambience in two bands that the demo's voice does not
use (piper synthesizes at 22.05 kHz: its speech lies between about 100 Hz and 11 kHz):

* rumble: 20 to 90 Hz, the low hum of an air handler;
* air: 13 to 17 kHz, the hiss of the vents.

So the demo measures the voice (120 Hz-11 kHz) and the background (13-17 kHz) apart on
the received audio: interrupt-to-silence on the voice alone, and the background's
ducking and continuity even under speech.

Encoded as Ogg/Opus at 64 kbit/s, 48 kHz mono (Opus keeps up to 20 kHz).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

RATE = 48000
SECONDS = 6


def band_noise(rng: np.random.Generator, n: int, low: float, high: float, tilt: float) -> np.ndarray:
    """Periodic noise of ``n`` samples in [low, high] Hz, slope ``1/f**tilt``, unit RMS."""
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum = rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))
    shape = np.where((freqs >= low) & (freqs <= high), 1.0 / np.maximum(freqs, 1.0) ** tilt, 0.0)
    signal = np.fft.irfft(spectrum * shape, n)
    return signal / np.sqrt(np.mean(signal**2))


def main() -> None:
    """Write the clip."""
    rng = np.random.default_rng(2026)
    n = RATE * SECONDS
    rumble = band_noise(rng, n, 20, 90, 0.5) * 10 ** (-30 / 20)  # -30 dBFS RMS
    air = band_noise(rng, n, 13000, 17000, 0.0) * 10 ** (-36 / 20)  # -36 dBFS RMS
    pcm = np.clip((rumble + air) * 32767, -32768, 32767).astype(np.int16)
    out = Path(__file__).resolve().parent.parent / "agent_audio" / "data" / "ambience.ogg"
    with av.open(str(out), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = 64000
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    print(f"wrote {out} ({out.stat().st_size} bytes, {SECONDS} s)")


if __name__ == "__main__":
    main()
