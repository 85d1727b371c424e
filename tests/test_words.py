"""A turn's word timeline (agent_audio._words).

Guards: word times in seconds land on exact turn samples at the track rate (24 kHz
TTS into a 48 kHz track); a cut inside a word gives that partial word and its
full-level fraction to the sample, and the 20 % rule decides whether it counts;
a resumed pause changes nothing; nothing played means nothing heard; ``text=`` is
estimated and stays inside its push; words running past their push are carried and
cut by the next word; bad input is rejected and changes nothing; caption crossings
return each word once; heard words are always a prefix of the pushed words.
"""

from __future__ import annotations

import itertools
import json
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_audio import InvalidAudioError
from agent_audio._words import HEARD_FRACTION, WordTimeline
from agent_audio.demo.piper_words import piper_words

RATE = 48000


def two_pushes() -> WordTimeline:
    """Two 24 kHz pushes of 1 s each (48,000 track samples each), as a 48 kHz track reports them."""
    t = WordTimeline(RATE)
    t.add(0, 48000, words=[("Hello", 0.1, 0.5), ("there", 0.5, 0.9)])
    t.add(48000, 48000, words=[("how", 0.0, 0.25), ("are", 0.3, 0.5), ("you", 0.5, 0.95)])
    return t


def test_seconds_become_exact_turn_samples_at_the_track_rate() -> None:
    spans = [(w.text, w.start_sample, w.end_sample) for w in two_pushes().words]
    assert spans == [
        ("Hello", 4800, 24000),
        ("there", 24000, 43200),
        ("how", 48000, 60000),
        ("are", 62400, 72000),
        ("you", 72000, 93600),
    ]


def test_a_finished_turn_heard_every_word() -> None:
    heard = two_pushes().heard(96000)
    assert heard.text == "Hello there how are you" and heard.partial is None
    assert [(w.start_ms, w.end_ms, w.estimated) for w in heard.words][2] == (1000.0, 1250.0, False)


def test_cut_inside_a_word_gives_the_partial_word_and_its_fraction_to_the_sample() -> None:
    t = two_pushes()
    # Fade began at sample 64,320 ("are" spans 62,400..72,000: 1,920 of 9,600 = 20 %); the
    # fade tail played on to 64,320 + 960.
    heard = t.heard(64320 + 960, full_level_end=64320)
    assert [w.text for w in heard.words] == ["Hello", "there", "how"]
    assert heard.partial is not None and heard.partial.word.text == "are"
    assert heard.partial.fraction == pytest.approx(0.2) and heard.partial.heard
    assert heard.text == "Hello there how are"
    # One sample earlier the partial word is under 20 %: not heard.
    early = t.heard(64319 + 960, full_level_end=64319)
    assert early.partial is not None and early.partial.fraction < HEARD_FRACTION and not early.partial.heard
    assert early.text == "Hello there how"


def test_a_cut_in_a_gap_has_no_partial_word() -> None:
    heard = two_pushes().heard(61000, full_level_end=61000)
    assert heard.text == "Hello there how" and heard.partial is None


def test_a_resumed_pause_changes_nothing() -> None:
    t = two_pushes()
    # Pause at 30,000, resume, play on to 80,000: not a cut, so no full_level_end.
    assert t.heard(80000) == t.heard(80000, full_level_end=None)
    assert t.heard(80000).partial is not None and t.heard(80000).partial.word.text == "you"  # type: ignore[union-attr]
    # Interrupted while paused: full level ended where the pause ramp began.
    assert t.heard(27480, full_level_end=27000).text == "Hello"  # 3,000 of 19,200 samples of "there"


def test_nothing_played_means_nothing_heard() -> None:
    t = WordTimeline(RATE)
    t.add(0, 0, text="")  # an empty push adds no word
    t.add(0, 4800, words=[("Hi", 0.0, 0.1)])
    heard = t.heard(0)
    assert heard.text == "" and heard.words == () and heard.partial is None
    assert WordTimeline(RATE).heard(960).text == ""


def test_text_without_timings_is_estimated_and_stays_inside_its_push() -> None:
    t = WordTimeline(RATE)
    t.add(4800, 9600, text="we go to them")
    words = t.words
    assert all(w.estimated for w in words)
    assert words[0].start_sample == 4800 and words[-1].end_sample == 4800 + 9600
    assert all(4800 <= w.start_sample <= w.end_sample <= 14400 for w in words)
    assert [w.end_sample - w.start_sample for w in words] == [1920, 1920, 1920, 3840]  # by characters


def test_a_word_running_past_its_push_is_carried_and_cut_by_the_next_word() -> None:
    t = WordTimeline(RATE)
    t.add(0, 4800, words=[("long", 0.05, 0.2)])  # ends 4,800 samples past its push
    assert t.heard(4800).text == "long"  # no word ends after the last pushed sample
    assert t.heard(3600, full_level_end=3600).partial.fraction == 0.5  # type: ignore[union-attr]
    t.add(4800, 4800, words=[("word", 0.01, 0.09)])
    assert [(w.start_sample, w.end_sample) for w in t.words] == [(2400, 5280), (5280, 9120)]
    assert t.heard(9600).text == "long word"
    # The last word may not end after the turn's last pushed sample.
    t.add(9600, 480, words=[("end", 0.0, 1.0)])
    assert t.heard(10080).text == "long word end"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([("a", 0.2, 0.3), ("b", 0.1, 0.4)], "expected word starts in order"),
        ([("a", 0.2, 0.1)], "expected 0 <= start <= end"),
        ([("a", -0.1, 0.1)], "expected 0 <= start <= end"),
        ([("a", float("nan"), 0.1)], "expected 0 <= start <= end"),
    ],
)
def test_bad_words_are_rejected_and_change_nothing(words: list[tuple[str, float, float]], message: str) -> None:
    t = two_pushes()
    with pytest.raises(InvalidAudioError, match=message):
        t.add(96000, 9600, words=words)
    assert len(t) == 5
    with pytest.raises(InvalidAudioError, match="exactly one of words= or text="):
        t.add(0, 10, words=[("a", 0.0, 0.1)], text="a")


def test_crossings_return_each_word_once_as_playout_passes_its_start() -> None:
    t = two_pushes()
    seen = [w.text for before in range(0, 96000, 960) for w in t.crossed(before, before + 960)]
    assert seen == ["Hello", "there", "how", "are", "you"]
    assert [w.index for w in t.crossed(4799, 4801)] == [0]
    assert list(t.crossed(4801, 24000)) == []
    assert t.word_at(24000) is not None and t.word_at(24000).text == "there"  # type: ignore[union-attr]
    assert t.word_at(45000) is None and t.word_at(0) is None


words_strategy = st.lists(
    st.tuples(st.floats(0, 0.5), st.floats(0, 0.3)).map(lambda g: (g[0], g[0] + g[1])), max_size=6
).map(sorted)


@given(
    pushes=st.lists(st.tuples(st.integers(0, 48000), words_strategy), max_size=5),
    played=st.integers(0, 300000),
    cut=st.one_of(st.none(), st.integers(0, 300000)),
)
def test_heard_words_are_a_prefix_of_the_pushed_words(
    pushes: list[tuple[int, list[tuple[float, float]]]], played: int, cut: int | None
) -> None:
    t = WordTimeline(RATE)
    offset = 0
    names: list[str] = []
    for samples, spans in pushes:
        words = [(f"w{len(names) + i}", a, b) for i, (a, b) in enumerate(spans)]
        names += [w for w, _, _ in words]
        t.add(offset, samples, words=words)
        offset += samples
    played = min(played, offset)
    heard = t.heard(played, cut)
    said = heard.text.split()
    assert said == names[: len(said)]
    assert [w.text for w in heard.words] == names[: len(heard.words)]
    full = played if cut is None else min(cut, played)
    assert all(w.end_ms * RATE / 1000 <= full + 1e-6 for w in heard.words)
    if heard.partial is not None:
        assert heard.partial.word.text == names[len(heard.words)] and 0 < heard.partial.fraction < 1


def test_piper_phonemes_map_to_words_across_espeak_groups() -> None:
    # espeak phonemises "from the" as one group; each word alone gives "fɹʌm" and "ðə".
    sun = "s\u02c8ʌn"  # with a stress mark, which is covered but not matched
    phonemes = [("^", 100), *[(p, 10) for p in "fɹʌmðə"], (" ", 50), *[(p, 20) for p in sun], (".", 30), ("$", 0)]
    words = piper_words(["from", "the", "sun."], [list("fɹʌm"), list("ðə"), list(sun)], phonemes, 1000)
    assert words == [("from", 0.1, 0.14), ("the", 0.14, 0.16), ("sun.", 0.21, 0.29)]


def test_a_word_espeak_says_differently_in_its_group_takes_the_unmatched_phonemes() -> None:
    # "change a": espeak says "a" as ɐ inside the group, alone as the letter's name.
    change, letter = "tʃe\u026andʒ", "e\u026a"
    phonemes = [*[(p, 10) for p in change + "ɐ"], (" ", 50), *[(p, 10) for p in "du"]]
    words = piper_words(["change", "a", "do"], [list(change), list(letter), list("du")], phonemes, 1000)
    assert words == [("change", 0.0, 0.07), ("a", 0.07, 0.08), ("do", 0.13, 0.15)]


def test_the_bundled_speech_ships_word_timings_in_order() -> None:
    data = resources.files("agent_audio") / "data" / "speech.words.json"
    words = [(str(w), float(a), float(b)) for w, a, b in json.loads(data.read_text())]
    assert len(words) == 79 and words[0][0] == "Hello," and words[-1][0] == "easier."
    assert all(0 <= a <= b <= 23.43 for _, a, b in words)
    assert all(b1 <= a2 for (_, _, b1), (_, a2, _) in itertools.pairwise(words))
    t = WordTimeline(RATE)
    t.add(0, round(23.42 * RATE), words=words)
    assert t.heard(round(1.5 * RATE)).text == "Hello, and thanks for calling."
