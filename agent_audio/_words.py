"""A turn's word timeline: words at exact sample offsets, and what the listener heard of them.

Pure bookkeeping (no asyncio, no PyAV, no clock). The track shell owns one
:class:`WordTimeline` per turn that carries words and feeds it three facts it
already knows: where each push's audio begins in the turn and how many samples it
produced (track rate, after resampling or decoding), how far playout got, and
where full level ended when the turn was cut.

Rules, decided once here:

* **Timings.** ``words=[(text, start, end), ...]`` are seconds relative to the
  push's first sample; a word spans ``[offset + round(start * rate),
  offset + round(end * rate))`` turn samples. Starts must not decrease within a
  push, and no time may be negative, NaN or have ``end < start``
  (:class:`InvalidAudioError`). A word may run past its push's audio (a word split
  across TTS chunks, or an alignment a few ms longer than the audio): its end is
  *carried* and cut where the next word starts, from whichever push that comes;
  at query time no word ends after the last pushed sample. A word whose start lies
  before the previous word's start (only possible across pushes) is moved to it.
* **Estimated timings.** ``text="..."`` is split on whitespace and spread over the
  push's own samples in proportion to each word's characters, marked estimated; it
  never leaves ``[offset, offset + samples)``.
* **Heard.** A word is heard when all of it played at full level. The word that
  full level ended inside (an interrupt's fade start, or the start of the pause
  ramp of a paused turn that was then interrupted) is the *partial* word; it
  counts in ``heard_text`` iff at least :data:`HEARD_FRACTION` (20 %) of its
  samples played at full level. Source: issue 17's measurement with an ASR
  listener on piper speech: a word is recognised when about 20 % or more of it
  played at full level, not when it falls inside the fade. A pause that was
  resumed is not a cut: ramping down and back up restores full level from the
  exact sample where it stopped, so it never changes the heard text.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ._errors import InvalidAudioError

__all__ = ["HEARD_FRACTION", "HeardText", "HeardWord", "PartialWord", "TimedWord", "WordTimeline", "check_words"]

#: Share of a word that must play at full level for a listener to recognise it
#: (issue 17: measured with an ASR listener on piper speech).
HEARD_FRACTION = 0.2
_NEVER = 2**62  # a sample position no turn reaches


@dataclass(frozen=True)
class TimedWord:
    """A word of a turn at exact sample offsets (for captions and lookups)."""

    index: int
    """Position of the word in its turn, from 0."""
    text: str
    """The word as pushed."""
    start_sample: int
    """First sample of the word, in samples per channel at the track rate from the turn's first sample."""
    end_sample: int
    """One past the word's last sample (same unit); ``end_sample >= start_sample``."""
    estimated: bool
    """True when the timing was spread from ``text=`` rather than given by the TTS."""


@dataclass(frozen=True)
class HeardWord:
    """A word the listener heard, with its time in the turn."""

    text: str
    """The word as pushed."""
    start_ms: float
    """Start in milliseconds from the turn's first sample."""
    end_ms: float
    """End in milliseconds from the turn's first sample."""
    estimated: bool
    """True when the timing was estimated from ``text=`` rather than given by the TTS."""


@dataclass(frozen=True)
class PartialWord:
    """The word that full level ended inside (a cut by a fade or a pause ramp)."""

    word: HeardWord
    """The whole word, with its full start and end."""
    fraction: float
    """Share of the word's samples that played at full level, in (0, 1)."""
    heard: bool
    """``fraction >= HEARD_FRACTION``: the word counts in ``HeardText.text``."""


@dataclass(frozen=True)
class HeardText:
    """What the listener heard of a turn's words."""

    words: tuple[HeardWord, ...]
    """Words that played entirely at full level, in order."""
    partial: PartialWord | None
    """The word cut by the end of full level, or None when no word was cut."""
    text: str
    """``words`` joined by single spaces, plus the partial word when ``partial.heard``."""


class WordTimeline:
    """One turn's words at exact sample offsets at the track rate.

    Args:
        sample_rate: Track sample rate in Hz: the unit of every sample offset.

    Raises:
        InvalidAudioError: ``sample_rate`` is not a positive integer.
    """

    def __init__(self, sample_rate: int) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise InvalidAudioError(f"expected a positive sample rate in Hz, got {sample_rate!r}")
        self._rate = sample_rate
        self._words: list[TimedWord] = []
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._pushed_end = 0

    @property
    def sample_rate(self) -> int:
        """Track sample rate in Hz."""
        return self._rate

    def __len__(self) -> int:
        return len(self._words)

    @property
    def words(self) -> tuple[TimedWord, ...]:
        """Every word so far, in order (ends already cut by their successors)."""
        return tuple(self._words)

    def add(
        self,
        offset: int,
        samples: int,
        *,
        words: Sequence[tuple[str, float, float]] | None = None,
        text: str | None = None,
    ) -> int:
        """Place one push's words in the turn; returns how many words were added.

        Args:
            offset: Turn sample (track rate) where the push's audio begins.
            samples: Samples per channel the push produced at the track rate (after
                resampling; for encoded streams after decoding, so priming is not counted).
            words: ``(text, start, end)`` in seconds from the push's first sample.
            text: Words without timings, spread over ``[offset, offset + samples)``.

        Raises:
            InvalidAudioError: both or neither of ``words`` and ``text``; a negative
                ``offset`` or ``samples``; a negative, non-finite or reversed time; starts
                that decrease within the push. Nothing is added then.
        """
        if (words is None) == (text is None):
            given = "both" if words is not None else "neither"
            raise InvalidAudioError(f"expected exactly one of words= or text=, got {given}")
        if offset < 0 or samples < 0:
            raise InvalidAudioError(f"expected offset and samples >= 0, got offset={offset}, samples={samples}")
        spans = _timed(words, offset, self._rate) if words is not None else _spread(text or "", offset, samples)
        for word, start, end in spans:
            self._append(word, start, end, estimated=words is None)
        self._pushed_end = max(self._pushed_end, offset + samples)
        return len(spans)

    def audio_until(self, sample: int) -> None:
        """The turn's audio now reaches ``sample`` (an encoded stream decoded more): words may end there."""
        self._pushed_end = max(self._pushed_end, sample)

    def _append(self, text: str, start: int, end: int, *, estimated: bool) -> None:
        if self._words:
            last = self._words[-1]
            start = max(start, last.start_sample)
            if last.end_sample > start:  # carried past its push, or overlapping: the next word cuts it
                self._words[-1] = replace(last, end_sample=start)
                self._ends[-1] = start
        end = max(start, end)
        self._words.append(TimedWord(len(self._words), text, start, end, estimated))
        self._starts.append(start)
        self._ends.append(end)

    def start_of(self, index: int) -> int:
        """Start sample of word ``index``, or a sample never reached when there is no such word yet."""
        return self._starts[index] if index < len(self._starts) else _NEVER

    def passed_from(self, index: int, played: int) -> tuple[Sequence[TimedWord], int]:
        """Words from ``index`` on whose start sample is below ``played``, and the index after them.

        For captions: the caller keeps the index between calls, so a frame that passes
        no word costs one comparison (starts never decrease, words are only appended).
        """
        starts = self._starts
        if index >= len(starts) or starts[index] >= played:
            return (), index
        end = bisect.bisect_left(starts, played, index)
        return self._words[index:end], end

    def crossed(self, before: int, after: int) -> Sequence[TimedWord]:
        """Words whose start playout passed while going from sample ``before`` to ``after``.

        A word is passed once its start sample is played: ``before <= start < after``.
        O(log n + k) by binary search; call it per frame with the turn's played count
        before and after the frame, for captions (a ``word_played`` event per word).
        """
        lo = bisect.bisect_left(self._starts, before)
        hi = bisect.bisect_left(self._starts, after, lo)
        return self._words[lo:hi]

    def word_at(self, sample: int) -> TimedWord | None:
        """The word playing at turn sample ``sample``, or None in a gap (binary search)."""
        i = bisect.bisect_right(self._starts, sample) - 1
        if i < 0:
            return None
        word = self._words[i]
        return word if sample < min(word.end_sample, self._pushed_end) else None

    def heard(self, played_samples: int, full_level_end: int | None = None) -> HeardText:
        """What the listener heard after ``played_samples`` of the turn played.

        Args:
            played_samples: Samples per channel of the turn handed out (fade tail included).
            full_level_end: Turn sample where full level ended for good: an interrupt's
                fade start, or the pause ramp start when a paused turn was interrupted.
                None when the turn was not cut (finished, still playing, or paused and
                resumed): everything played was at full level.

        Returns:
            The heard words, the partial word at the cut (see the module rule), the text.
        """
        full = max(0, played_samples if full_level_end is None else min(full_level_end, played_samples))
        # Starts are sorted and each end is cut at the next start, so ends are sorted too.
        done = bisect.bisect_right(self._ends, full)
        while done < len(self._words) and self._end(self._words[done]) <= full:  # ran past the pushed audio
            done += 1
        while done > 0 and self._words[done - 1].start_sample >= full:  # empty words not yet reached
            done -= 1
        words = [self._heard_word(w) for w in self._words[:done]]
        partial = None
        if done < len(self._words):
            cut = self._words[done]
            end = self._end(cut)
            if cut.start_sample < full < end:
                fraction = (full - cut.start_sample) / (end - cut.start_sample)
                partial = PartialWord(self._heard_word(cut), fraction, fraction >= HEARD_FRACTION)
        said = [w.text for w in words] + ([partial.word.text] if partial and partial.heard else [])
        return HeardText(tuple(words), partial, " ".join(said))

    def _end(self, word: TimedWord) -> int:
        return max(word.start_sample, min(word.end_sample, self._pushed_end))

    def _heard_word(self, word: TimedWord) -> HeardWord:
        ms = 1000.0 / self._rate
        return HeardWord(word.text, word.start_sample * ms, self._end(word) * ms, word.estimated)


def check_words(words: Sequence[tuple[str, float, float]] | None, text: str | None) -> None:
    """Validate a push's ``words=``/``text=`` as :meth:`WordTimeline.add` would; nothing is kept.

    Raises:
        InvalidAudioError: as :meth:`WordTimeline.add`.
    """
    WordTimeline(1).add(0, 0, words=words, text=text)


def _timed(words: Sequence[tuple[str, float, float]], offset: int, rate: int) -> list[tuple[str, int, int]]:
    spans: list[tuple[str, int, int]] = []
    previous = -math.inf
    if isinstance(words, (str, bytes)) or not isinstance(words, Sequence):
        raise InvalidAudioError(f"expected words as a list of (text, start_s, end_s), got {type(words).__name__}")
    for i, item in enumerate(words):
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise InvalidAudioError(f"expected words as (text, start_s, end_s), got {item!r} at index {i}")
        text, start, end = item
        if not isinstance(text, str) or not all(_is_real(value) for value in (start, end)):
            raise InvalidAudioError(f"expected (str, seconds, seconds), got {item!r} at index {i}")
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise InvalidAudioError(f"expected 0 <= start <= end seconds, got {text!r} ({start}, {end})")
        if start < previous:
            raise InvalidAudioError(f"expected word starts in order, got {text!r} at {start} s after {previous} s")
        previous = start
        spans.append((str(text), offset + round(start * rate), offset + round(end * rate)))
    return spans


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spread(text: str, offset: int, samples: int) -> list[tuple[str, int, int]]:
    """Spread whitespace-separated words over ``samples`` in proportion to their characters."""
    if not isinstance(text, str):
        raise InvalidAudioError(f"expected text as a str, got {type(text).__name__}")
    tokens = text.split()
    total = sum(len(t) for t in tokens)
    spans: list[tuple[str, int, int]] = []
    done = 0
    for token in tokens:
        start = offset + samples * done // total
        done += len(token)
        spans.append((token, start, offset + samples * done // total))
    return spans
