"""Demo speech (agent_audio.demo.speech) and its words (agent_audio.demo.words).

Guards: the bundled sample is real speech of 15-25 s that decodes with PyAV; turns are
cut inside pauses, not words; sentence splitting; clear errors for missing files and
for --say without the tts extra. Words: the bundled timings fall inside the sample and
each lands in exactly one turn; each word goes to the chunk its start falls in, timed
from that chunk's first sample (a word may run past its chunk), so a turn pushed in
chunks places every word where the whole-turn timings put it; piper gives every
sentence's words with timings inside its audio.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from agent_audio.demo.analysis import levels_dbfs
from agent_audio.demo.speech import (
    load_speech,
    loud_bounds,
    piper_chunks,
    sentences,
    split_turns,
    trim_silence,
    turn_bounds,
)
from agent_audio.demo.words import bundled_words, chunk_words, chunked, words_in


def test_bundled_sample_is_real_speech_of_15_to_25_seconds() -> None:
    speech = load_speech(None, rate=16000)
    assert 15.0 <= len(speech) / 16000 <= 25.0
    levels = levels_dbfs(speech, 16000)
    voiced = levels > levels.max() - 30
    assert 0.4 < voiced.mean() < 0.95  # speech: mostly voiced, with pauses


def test_turns_are_cut_in_pauses() -> None:
    speech = load_speech(None, rate=16000)
    turns = split_turns(speech, 16000)
    assert len(turns) == 3 and sum(len(t) for t in turns) == len(speech)
    for turn in turns[1:]:
        assert np.abs(turn[:160]).max() < 0.01  # starts in silence


def test_missing_file_is_named() -> None:
    with pytest.raises(FileNotFoundError, match=r"got no file at /nonexistent\.wav"):
        load_speech("/nonexistent.wav", rate=16000)


def test_sentences_make_three_parts() -> None:
    assert sentences("One. Two! Three? Four.", 3) == ["One.", "Two!", "Three? Four."]
    assert sentences("Just one", 3) == ["Just one", "Just one", "Just one"]


@pytest.mark.skipif(importlib.util.find_spec("piper") is not None, reason="piper installed: see the next test")
async def test_say_without_the_tts_extra_says_how_to_install_it() -> None:
    with pytest.raises(RuntimeError, match=r"pip install 'agent_audio\[tts\]'"):
        async for _ in piper_chunks("hello"):
            pass


@pytest.mark.skipif(importlib.util.find_spec("piper") is None, reason="needs the tts extra (piper)")
async def test_piper_streams_chunks() -> None:
    text = "Hello there. I can help you track an order, or change a delivery."
    chunks = [chunk async for chunk in piper_chunks(text)]
    assert len(chunks) == 2  # one per sentence, each with its words
    assert all(c.rate == 22050 and c.audio.dtype == np.int16 and c.text is None for c in chunks)
    assert [w for c in chunks for w, _, _ in c.words or ()] == text.split()
    for chunk in chunks:
        assert chunk.words is not None
        starts = [start for _, start, _ in chunk.words]
        assert starts == sorted(starts) and 0 <= starts[0] and chunk.words[-1][2] <= chunk.seconds + 1e-9
        assert all(end > start for _, start, end in chunk.words)  # every word got some of the audio


def test_trim_silence_keeps_20_ms_around_the_loud_part() -> None:
    rate = 16000
    loud = np.full(rate // 2, 0.1, np.float32)  # -20 dBFS
    quiet = np.full(rate, 0.001, np.float32)  # -60 dBFS
    speech = np.concatenate([quiet, loud, quiet])
    trimmed = trim_silence(speech, rate)
    assert len(trimmed) == len(loud) + 2 * round(0.02 * rate)
    assert np.shares_memory(trimmed, speech)  # a view, not a copy
    assert len(trim_silence(quiet, rate)) == 0
    assert len(trim_silence(loud, rate)) == len(loud)  # nothing quiet to cut


def test_bundled_words_lie_in_the_sample_and_each_turn_gets_its_own() -> None:
    rate = 24000
    speech = load_speech(None, rate=rate)
    words = bundled_words()
    assert len(words) == 79 and words[0][0] == "Hello," and words[-1][0] == "easier."
    assert all(0 <= start < end <= len(speech) / rate for _, start, end in words)
    bounds = turn_bounds(speech, rate)
    assert [b - a for a, b in bounds] == [len(t) for t in split_turns(speech, rate)]  # the same cut
    per_turn = [words_in(words, a / rate, b / rate) for a, b in bounds]
    assert sum(len(t) for t in per_turn) == len(words)
    assert [t[-1][0] for t in per_turn] == ["account.", "noon.", "easier."]  # turns end at sentence ends
    for turn, (a, b) in zip(per_turn, bounds, strict=True):
        assert all(0 <= start < end <= (b - a) / rate for _, start, end in turn)  # no word crosses a cut


def test_each_word_goes_to_the_chunk_its_start_falls_in() -> None:
    words = [("one", 0.0, 0.05), ("two", 0.05, 0.13), ("three", 0.1999, 0.25), ("late", 0.5, 0.6)]
    # 100 ms chunks at 1000 Hz: 0-99, 100-199, 200-299, 300-349 (350 samples of audio)
    assert chunk_words(words, [0, 100, 200, 300], 1000, 350) == [
        (("one", 0.0, 0.05), ("two", 0.05, 0.13)),  # "two" runs past its chunk: it stays with its start
        (("three", 0.0999, 0.15),),
        (),
        (),  # "late" starts after the audio: no chunk gets it
    ]


def test_chunked_words_land_where_the_whole_turn_timings_put_them() -> None:
    rate = 24000
    words = [(f"w{i}", 0.013 + i * 0.097, 0.013 + i * 0.097 + 0.15) for i in range(40)]  # overlapping chunk edges
    audio = np.zeros(rate * 4, np.float32)
    chunks = list(chunked(audio, rate, 960, words))
    assert len(chunks) == 100 and all(len(c.audio) == 960 for c in chunks)
    placed = []
    for k, chunk in enumerate(chunks):
        assert chunk.words is not None
        placed += [(text, k * 0.04 + start, k * 0.04 + end) for text, start, end in chunk.words]
        assert all(0 <= start <= 0.04 for _, start, _ in chunk.words)
    assert [w for w, _, _ in placed] == [w for w, _, _ in words]
    assert np.allclose([s for _, s, _ in placed], [s for _, s, _ in words], atol=1e-6)
    assert np.allclose([e for _, _, e in placed], [e for _, _, e in words], atol=1e-6)
    assert all(c.words is None for c in chunked(audio, rate, 960))  # no timings: no words


def test_loud_bounds_are_what_trim_silence_keeps() -> None:
    rate = 16000
    speech = np.concatenate([np.zeros(rate, np.float32), np.full(rate, 0.1, np.float32), np.zeros(rate, np.float32)])
    start, end = loud_bounds(speech, rate)
    assert (start, end) == (rate - 320, 2 * rate + 320)
    assert len(trim_silence(speech, rate)) == end - start
