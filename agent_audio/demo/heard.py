"""What the listener heard of the demo's words: per-turn heard text, its checks, the truncation payload.

The track reports the heard words of each turn (``TurnStats.heard_text``,
``.heard_words``, ``.partial_word``). The demo checks them against what it pushed and
where it interrupted, computed here on its own from the pushed word timings: turns 1
and 2 played fully, so every word was heard; turn 3's heard text must end at the word
being spoken when the fade began (the interrupt position, from the turn's played
samples at the ``interrupt()`` call): every word that had played at least
:data:`HEARD_SHARE` of its length by then, and no other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent_audio import TurnStats
from agent_audio.truncation import realtime_truncate

from .words import Word

__all__ = ["HEARD_SHARE", "expected_heard", "format_heard", "heard_checks", "heard_report"]

#: Share of a word that must have played at full level for it to count as heard: the
#: library's documented rule (an ASR listener recognises a word from about 20 % on).
HEARD_SHARE = 0.2
#: Milliseconds of slack for sample rounding (words are placed to the sample at 48 kHz).
_SLACK_MS = 1.0


def expected_heard(words_ms: Sequence[Word], cut_ms: float) -> tuple[int, int]:
    """How many leading words a listener heard if full level ended at ``cut_ms``: (fewest, most).

    ``words_ms`` are ``(text, start, end)`` in ms from the turn's first sample. A word
    counts when at least :data:`HEARD_SHARE` of it played before the cut; the two
    counts differ only when the cut lies within rounding slack of a word's threshold.
    """

    def count(cut: float) -> int:
        n = 0
        for _, start, end in words_ms:
            if cut - start < HEARD_SHARE * (end - start) or cut < start:
                break
            n += 1
        return n

    return count(cut_ms - _SLACK_MS), count(cut_ms + _SLACK_MS)


def _around(words_ms: Sequence[Word], cut_ms: float) -> dict[str, Any]:
    """The word being spoken at ``cut_ms`` or, in a pause, the words before and after it (ms, rounded)."""

    def word(w: Word) -> dict[str, Any]:
        return {"text": w[0], "start_ms": round(w[1], 1), "end_ms": round(w[2], 1)}

    spoken = next((w for w in words_ms if w[1] <= cut_ms < w[2]), None)
    if spoken is not None:
        return {"inside": word(spoken)}
    before = [w for w in words_ms if w[2] <= cut_ms]
    after = [w for w in words_ms if w[1] > cut_ms]
    return {"after": word(before[-1]) if before else None, "before": word(after[0]) if after else None}


def heard_report(
    turns: Sequence[TurnStats], words: Sequence[tuple[Word, ...] | None], interrupted_at: int | None, source: str | None
) -> dict[str, Any] | None:
    """Per-turn heard text, turn 3's cut and its OpenAI Realtime truncation; None without timed words.

    Args:
        turns: The three turns' final stats.
        words: Per turn, the words pushed, seconds from the turn's first sample.
        interrupted_at: Turn 3's played samples (at ``turns[2].sample_rate``) at ``interrupt()``.
        source: Where the timings came from, for the printed report.
    """
    if len(words) != len(turns) or any(w is None for w in words) or interrupted_at is None:
        return None
    entries = []
    for stats, pushed in zip(turns, words, strict=True):
        assert pushed is not None
        partial = stats.partial_word
        entries.append(
            {
                "turn_id": stats.turn_id,
                "words_pushed": len(pushed),
                "words_heard": len(stats.heard_words),
                "heard_text": stats.heard_text,
                "partial_word": None
                if partial is None
                else {
                    "text": partial.word.text,
                    "start_ms": round(partial.word.start_ms, 1),
                    "end_ms": round(partial.word.end_ms, 1),
                    "fraction": round(partial.fraction, 3),
                    "heard": partial.heard,
                },
            }
        )
    last = turns[2]
    cut_ms = interrupted_at * 1000.0 / last.sample_rate
    pushed_ms = [(text, start * 1000, end * 1000) for text, start, end in words[2] or ()]
    fewest, most = expected_heard(pushed_ms, cut_ms)
    return {
        "source": source,
        "turns": entries,
        "interrupt_ms": round(cut_ms, 1),
        "word_at_interrupt": _around(pushed_ms, cut_ms),
        "expected_words_heard": [fewest, most],
        "expected_heard_text": " ".join(text for text, _, _ in pushed_ms[:most]),
        "truncate": realtime_truncate(f"item_turn_{last.turn_id}", 0, last),
    }


def heard_checks(heard: dict[str, Any], words: Sequence[tuple[Word, ...] | None]) -> dict[str, bool]:
    """The report's checks on the heard text (see the module docstring)."""
    full = all(
        t["words_heard"] == t["words_pushed"] > 0 and t["heard_text"] == " ".join(text for text, _, _ in w or ())
        for t, w in zip(heard["turns"][:2], words[:2], strict=True)
    )
    last = heard["turns"][2]
    said = last["heard_text"].split()
    fewest, most = heard["expected_words_heard"]
    pushed = [text for text, _, _ in words[2] or ()]
    cut = 0 < fewest <= len(said) <= most < len(pushed) and said == pushed[: len(said)]
    return {
        "turns 1 and 2 heard all their words": full,
        "turn 3 heard text ends at the word spoken when the fade began": cut,
    }


def format_heard(heard: dict[str, Any] | None) -> list[str]:
    """The printed lines: one per turn with its heard text, then turn 3's truncation payload."""
    if heard is None:
        return ["heard text: no word timings for this speech (the bundled sample and --say have them)"]
    lines = [f"heard text (words pushed with the audio, timed by {heard['source']}):"]
    for t in heard["turns"]:
        count = f"{t['words_heard']:>2} of {t['words_pushed']:>2} words"
        partial = t["partial_word"]
        if partial is not None:
            share = f"{partial['fraction'] * 100:.0f} %"
            verdict = ">= 20 %: heard" if partial["heard"] else "< 20 %: not heard"
            count += f' + "{partial["text"]}" cut at {share} ({verdict})'
        lines.append(f'  turn {t["turn_id"]}: {count}  "{t["heard_text"]}"')
    at = heard["word_at_interrupt"]
    if "inside" in at:
        w = at["inside"]
        where = f'inside "{w["text"]}" ({w["start_ms"]:.0f}-{w["end_ms"]:.0f} ms)'
    else:
        last, following = at["after"], at["before"]
        ended = "the start" if last is None else f'"{last["text"]}" (ended {last["end_ms"]:.0f} ms)'
        then = "the end" if following is None else f'"{following["text"]}" (from {following["start_ms"]:.0f} ms)'
        where = f"between {ended} and {then}"
    lines.append(f"  turn 3's fade began {heard['interrupt_ms']:.0f} ms in, {where}")
    lines.append(f"  truncate: {json.dumps(heard['truncate'])}")
    return lines
