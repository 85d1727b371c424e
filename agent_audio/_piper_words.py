"""Word timings from piper's per-phoneme sample counts (no piper import here).

piper (1.8, a voice patched with ``python -m piper.patch_voice_with_alignment``)
gives, per sentence, ``phoneme_alignments``: each phoneme with the samples it
produced. Phonemes come from espeak, whose word groups differ from the text's
words ("from the" is one group, ``fɹʌmðə``). So each text word is phonemised
alone, and the two phoneme streams are aligned (difflib's longest matching blocks,
ignoring stress, length marks, spaces and punctuation); each matched phoneme takes
its word's label, an unmatched one takes the label of the next (else the previous)
labelled phoneme of its espeak group, and a word spans its phonemes' samples.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["SEPARATORS", "piper_words"]

#: Phonemes that belong to no word: piper's BOS/EOS/PAD, espeak's word space and punctuation.
SEPARATORS = frozenset('^$_ ,.;:!?¡¿—…"«»“”()-')
#: Marks that espeak places differently in a word alone and in a group: not matched, only covered.
_MARKS = frozenset("\u02c8\u02cc\u02d0\u02d1")  # primary/secondary stress, long, half-long


def piper_words(
    words: Sequence[str],
    word_phonemes: Sequence[Sequence[str]],
    phonemes: Sequence[tuple[str, int]],
    sample_rate: int,
    *,
    offset: int = 0,
) -> list[tuple[str, float, float]]:
    """Map piper's phoneme sample counts to the text's words.

    Args:
        words: The text's words in order (e.g. ``text.split()``).
        word_phonemes: Each word phonemised alone (``voice.phonemize(word)``, flattened).
        phonemes: ``(phoneme, num_samples)`` for the whole audio in order: the
            ``phoneme_alignments`` of every chunk; add ``(" ", n)`` for any silence of
            ``n`` samples inserted between chunks.
        sample_rate: Rate of the samples counted, in Hz (piper voices: 22,050).
        offset: Samples before the first phoneme (e.g. where this audio starts in a push).

    Returns:
        ``(word, start_s, end_s)`` per word, seconds from sample 0, the shape that
        ``push(words=...)`` takes. A word whose phonemes matched nothing gets an empty
        span at the end of the word before it.

    Raises:
        ValueError: ``words`` and ``word_phonemes`` differ in length.
    """
    if len(words) != len(word_phonemes):
        raise ValueError(f"expected phonemes for each of {len(words)} words, got {len(word_phonemes)}")
    starts: list[int] = []
    position = offset
    for _, count in phonemes:
        starts.append(position)
        position += count
    ends = [*starts[1:], position]
    spoken = [i for i, (p, _) in enumerate(phonemes) if p not in SEPARATORS]
    keyed = [i for i in spoken if phonemes[i][0] not in _MARKS]
    target: list[str] = []
    owner: list[int] = []
    for w, phones in enumerate(word_phonemes):
        for p in phones:
            if p not in SEPARATORS and p not in _MARKS:
                target.append(p)
                owner.append(w)
    label: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, [phonemes[i][0] for i in keyed], target, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            label[keyed[a + k]] = owner[b + k]
    _fill_groups(spoken, phonemes, label)
    spans: dict[int, tuple[int, int]] = {}
    for i, w in label.items():
        lo, hi = spans.get(w, (starts[i], ends[i]))
        spans[w] = (min(lo, starts[i]), max(hi, ends[i]))
    result: list[tuple[str, float, float]] = []
    last = offset
    for w, word in enumerate(words):
        lo, hi = spans.get(w, (last, last))
        lo = max(lo, last)
        hi = max(hi, lo)
        result.append((word, lo / sample_rate, hi / sample_rate))
        last = hi
    return result


def _fill_groups(spoken: list[int], phonemes: Sequence[tuple[str, int]], label: dict[int, int]) -> None:
    """Give each unlabelled phoneme the next (else previous) label within its espeak group."""
    groups: list[list[int]] = []
    for i in spoken:
        if groups and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    for group in groups:
        following: int | None = None
        for i in reversed(group):
            if i in label:
                following = label[i]
            elif following is not None:
                label[i] = following
        preceding: int | None = None
        for i in group:
            if i in label:
                preceding = label[i]
            elif preceding is not None:
                label[i] = preceding
