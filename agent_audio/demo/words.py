"""The words the demo speaks, and how they travel with its audio chunks.

A streaming TTS sends each chunk of audio with the words it starts, timed in seconds
from that chunk's first sample (``turn.push(pcm, sample_rate=..., words=...)``). The
demo makes such a stream from three sources:

* the bundled sample with its word timings (``data/speech.words.json``, seconds in the
  sample's own time, made by ``tools/make_speech_words.py``): :func:`words_in` cuts them
  to a turn, :func:`chunked` to the turn's chunks;
* piper (the ``tts`` extra): :func:`piper_sentence` synthesizes one sentence with its
  phoneme alignments and maps them to the sentence's words;
* a user's ``--input`` file: no timings, so no words.

A word belongs to the chunk its start falls in, and may run past that chunk's end (the
library carries it into the next push).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

# The one library-private name the demo uses: piper's phoneme alignments mapped to the
# text's words (the mapping behind data/speech.words.json; see tools/make_speech_words.py).
from agent_audio.demo.piper_words import piper_words

__all__ = ["WORDS", "Chunk", "Word", "bundled_words", "chunk_words", "chunked", "piper_sentence", "words_in"]

#: Word timings of the bundled speech sample (``[text, start_s, end_s]`` per word).
WORDS = "speech.words.json"

Word = tuple[str, float, float]
"""``(text, start, end)``: seconds from the first sample of the audio it belongs to."""


@dataclass(frozen=True)
class Chunk:
    """One push of a TTS stream.

    ``audio``: mono samples, shape ``(n,)``, float32 in [-1, 1] or int16, at ``rate`` Hz.
    ``words``: the words that start in this chunk, seconds from its first sample (None:
    the source has no timings). ``text``: the chunk's text when its words have no
    timings (the library spreads it over the chunk, marked estimated), else None.
    """

    audio: npt.NDArray[np.generic]
    rate: int
    words: tuple[Word, ...] | None = None
    text: str | None = None

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.audio) / self.rate


def bundled_words() -> tuple[Word, ...]:
    """The bundled sample's words, seconds in the sample's own time (as :func:`~.speech.load_speech` decodes it)."""
    raw: list[list[Any]] = json.loads((resources.files("agent_audio") / "data" / WORDS).read_text(encoding="utf-8"))
    return tuple((str(text), float(start), float(end)) for text, start, end in raw)


def words_in(words: Sequence[Word], start: float, end: float) -> tuple[Word, ...]:
    """The words that start in ``[start, end)`` seconds, in seconds from ``start``."""
    return tuple((text, _us(s - start), _us(e - start)) for text, s, e in words if start <= s < end)


def chunk_words(words: Sequence[Word], starts: Sequence[int], rate: int, length: int) -> list[tuple[Word, ...]]:
    """Give each word to the chunk its start falls in, timed from that chunk's first sample.

    Args:
        words: ``(text, start_s, end_s)`` in seconds from sample 0 of the audio, in order.
        starts: First sample of each chunk, ascending, ``starts[0] == 0``.
        rate: Sample rate of the audio in Hz.
        length: Samples in the audio: a word starting at or after it belongs to no chunk.

    Returns:
        One tuple of words per chunk (empty where no word starts), each word's start and
        end in seconds from that chunk's first sample (the end may lie past the chunk).
    """
    out: list[list[Word]] = [[] for _ in starts]
    for text, start, end in words:
        sample = start * rate
        if sample >= length or not starts:
            continue
        k = max(0, bisect.bisect_right(starts, sample) - 1)
        offset = starts[k] / rate
        out[k].append((text, _us(max(0.0, start - offset)), _us(max(0.0, end - offset))))
    return [tuple(w) for w in out]


def _us(seconds: float) -> float:
    """Seconds rounded to the microsecond: no float noise like 0.0040000000000000036 in what is pushed."""
    return round(seconds, 6)


def chunked(
    audio: npt.NDArray[np.float32], rate: int, step: int, words: Sequence[Word] | None = None
) -> Iterator[Chunk]:
    """Cut float32 mono ``audio`` at ``rate`` Hz into chunks of ``step`` samples, each with its words.

    ``words`` are seconds from ``audio``'s first sample; None makes chunks without words.
    """
    starts = list(range(0, len(audio), step))
    per_chunk = chunk_words(words, starts, rate, len(audio)) if words is not None else [None] * len(starts)
    for start, chunk_words_ in zip(starts, per_chunk, strict=True):
        yield Chunk(audio[start : start + step], rate, chunk_words_)


def piper_sentence(voice: Any, sentence: str) -> Chunk:
    """Synthesize one sentence with piper, with its words timed from piper's phoneme alignments.

    Blocking (seconds of CPU): run it in a worker thread. ``voice`` is a loaded
    ``piper.PiperVoice``; alignments need the voice patched once
    (``python -m piper.patch_voice_with_alignment``). Without them the chunk carries
    the sentence as ``text`` (timings estimated by the library).

    Returns:
        One chunk: int16 mono at the voice's rate (piper: 22,050 Hz), all of the sentence.
    """
    parts = list(voice.synthesize(sentence, include_alignments=True))
    if not parts:
        return Chunk(np.zeros(0, np.int16), voice.config.sample_rate, (), None)
    audio = np.concatenate([p.audio_int16_array.reshape(-1) for p in parts])
    rate = int(parts[0].sample_rate)
    if any(p.phoneme_alignments is None for p in parts):
        return Chunk(audio, rate, None, sentence)
    phonemes = [(a.phoneme, int(a.num_samples)) for p in parts for a in p.phoneme_alignments]
    tokens = sentence.split()
    per_word = [[p for group in voice.phonemize(token) for p in group] for token in tokens]
    return Chunk(audio, rate, tuple(piper_words(tokens, per_word, phonemes, rate)), None)
