"""Word timings from piper's per-phoneme sample counts (no piper import here).

piper (1.8, a voice patched with ``python -m piper.patch_voice_with_alignment``)
gives, per sentence, ``phoneme_alignments``: each phoneme with the samples it
produced. Phonemes come from espeak, whose word groups differ from the text's
words ("from the" is one group, ``fɹʌmðə``). So each text word is phonemised
alone, and the two phoneme streams are aligned (difflib's longest matching blocks,
ignoring stress, length marks, spaces and punctuation); each matched phoneme takes
its word's label; a run of unmatched phonemes goes to words the match skipped, if
any lie around it, else to the next (or previous) word of its espeak group; a word
spans its phonemes' samples.
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
    """Label each run of unmatched phonemes.

    A run between words ``p`` and ``q`` with words skipped in between (espeak said
    "a" as ``ɐ`` in "change a", alone as the letter's name) is shared among the skipped words;
    otherwise the run takes the next (else the previous) label of its espeak group.
    """
    group_of: dict[int, int] = {}
    group = 0
    for k, i in enumerate(spoken):
        if k and spoken[k - 1] != i - 1:
            group += 1
        group_of[i] = group
    k = 0
    while k < len(spoken):
        if spoken[k] in label:
            k += 1
            continue
        end = k
        while end < len(spoken) and spoken[end] not in label:
            end += 1
        run = spoken[k:end]
        before = label[spoken[k - 1]] if k > 0 else -1
        after = label[spoken[end]] if end < len(spoken) else None
        if after is not None and after - before >= 2:
            skipped = after - before - 1
            for n, i in enumerate(run):
                label[i] = before + 1 + n * skipped // len(run)
        else:
            for i in run:
                if after is not None and group_of[spoken[end]] == group_of[i]:
                    label[i] = after
                elif before >= 0 and group_of[spoken[k - 1]] == group_of[i]:
                    label[i] = before
        k = end
