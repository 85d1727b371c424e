"""Demo speech (agent_audio.demo.speech).

Guards: the bundled sample is real speech of 15-25 s that decodes with PyAV; turns are
cut inside pauses, not words; sentence splitting; clear errors for missing files and
for --say without the tts extra.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from agent_audio.demo.analysis import levels_dbfs
from agent_audio.demo.speech import load_speech, piper_chunks, sentences, split_turns, trim_silence


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
    chunks = [chunk async for chunk in piper_chunks("Hello there.")]
    assert chunks and all(rate == 22050 and pcm.dtype == np.int16 for pcm, rate in chunks)


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
