"""The words of one turn: where each push lands in the turn, its word timeline, its captions.

:class:`TurnText` keeps the turn's *position*: the turn sample (track rate) where the
next pushed sample lands. It is counted from source samples, not from what was queued,
because a resampler holds a few samples back until the next push or the end of the
turn, where it gives out exactly ``round(in x ratio)`` (see :mod:`agent_audio._resample`).
Words are placed at that position, so their offsets are exact whatever the chunking.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._engine import TurnState
from ._events import WordPlayed
from ._words import HeardText, WordTimeline

__all__ = ["StreamText", "TurnText", "Words"]

Words = Sequence[tuple[str, float, float]]


class StreamText:
    """The words of one encoded stream, placed once its first decoded sample reaches the turn."""

    def __init__(self) -> None:
        self.start: int | None = None
        """Turn sample where the stream's audio begins; None until its first block is queued."""
        self.pending: list[tuple[int, Words]] = []  # (offset in the stream, words) before start is known
        self.texts: list[tuple[int, str]] = []  # (offset in the stream, text), spread when it closes


class TurnText:
    """Position, words and captions of one turn.

    Args:
        sample_rate: the track rate in Hz (the unit of every offset).
    """

    def __init__(self, sample_rate: int) -> None:
        self.timeline: WordTimeline | None = None
        """Made at the first push that carries words."""
        self._rate = sample_rate
        self._seg_rate = 0  # source rate of the current run of pushes (0: none yet)
        self._seg_start = 0  # turn position where that run began
        self._seg_in = 0  # source samples per channel pushed in that run
        self._caption_next = 0  # index of the first word whose word_played event is not made yet
        self.caption_due = -1
        """Played samples beyond which the next caption is due (-1: look at the timeline)."""

    def place(
        self, state: TurnState, source_rate: int, source_samples: int, words: Words | None, text: str | None
    ) -> bool:
        """Account a push of ``source_samples`` at ``source_rate`` Hz, placing its words.

        Returns:
            Whether the turn has words now.

        Raises:
            InvalidAudioError: malformed words or text; nothing changes.
        """
        seg_start, seg_in = self._seg_start, self._seg_in
        if source_rate != self._seg_rate:
            seg_start, seg_in = self._position(state), 0
        offset = seg_start + round(seg_in * self._rate / source_rate)
        end = seg_start + round((seg_in + source_samples) * self._rate / source_rate)
        if (words is not None or text is not None) and not state.interrupted:
            timeline = self.timeline if self.timeline is not None else WordTimeline(self._rate)
            timeline.add(offset, end - offset, words=words, text=text)
            self._keep(state, timeline)
        self._seg_rate, self._seg_start, self._seg_in = source_rate, seg_start, seg_in + source_samples
        return self.timeline is not None

    def stream_opened(self, state: TurnState) -> StreamText:
        """An encoded stream opens on the turn: later PCM pushes continue after its audio."""
        self._seg_rate = self._seg_in = 0
        self._seg_start = self._position(state)
        return StreamText()

    def stream_words(
        self, state: TurnState, stream: StreamText, offset: int, words: Words | None, text: str | None
    ) -> bool:
        """A push of the stream carries words; its audio begins ``offset`` decoded samples in.

        Returns:
            Whether the turn has words now.
        """
        if state.interrupted:
            return self.timeline is not None
        if text is not None:
            stream.texts.append((offset, text))
        elif words is not None:
            if stream.start is None:
                stream.pending.append((offset, words))
            else:
                self._add(state, stream.start + offset, 0, words=words)
        return self.timeline is not None

    def stream_started(self, state: TurnState, stream: StreamText) -> None:
        """The stream's first decoded sample is about to be queued: its words find their place."""
        stream.start = state.pushed
        for offset, words in stream.pending:
            if not state.interrupted:
                self._add(state, stream.start + offset, 0, words=words)
        stream.pending = []

    def stream_closed(self, state: TurnState, stream: StreamText) -> bool:
        """The stream queued all it decoded: its text is spread; pushes continue after it.

        Returns:
            Whether the turn has words now.
        """
        end = state.pushed
        if stream.start is not None and not state.interrupted:
            decoded = end - stream.start
            for i, (offset, text) in enumerate(stream.texts):
                until = stream.texts[i + 1][0] if i + 1 < len(stream.texts) else decoded
                self._add(state, stream.start + offset, max(0, until - offset), text=text)
        self._seg_rate = self._seg_in = 0
        self._seg_start = max(self._seg_start, end)
        return self.timeline is not None

    def queued(self, state: TurnState) -> None:
        """Audio was queued: words may now end as far as it reaches."""
        if self.timeline is not None:
            self.timeline.audio_until(state.pushed)

    def captions(self, state: TurnState) -> list[WordPlayed]:
        """``word_played`` payloads for the words whose start played since the last call."""
        timeline = self.timeline
        if timeline is None:
            return []
        passed, self._caption_next = timeline.passed_from(self._caption_next, state.played)
        if not passed:
            return []
        ms = 1000.0 / self._rate
        return [
            WordPlayed(
                state.id, w.index, w.text, w.start_sample * ms, max(w.start_sample, w.end_sample) * ms, w.estimated
            )
            for w in passed
        ]

    def heard(self, state: TurnState) -> HeardText | None:
        """What the listener heard of the words (None without words); an interrupt is the cut."""
        if self.timeline is None:
            return None
        return self.timeline.heard(state.played, state.full_level_end if state.interrupted else None)

    def _keep(self, state: TurnState, timeline: WordTimeline) -> None:
        self.timeline = timeline
        self.caption_due = -1  # words were added: look again
        timeline.audio_until(state.pushed)

    def _add(
        self, state: TurnState, offset: int, samples: int, *, words: Words | None = None, text: str | None = None
    ) -> None:
        timeline = self.timeline if self.timeline is not None else WordTimeline(self._rate)
        timeline.add(offset, samples, words=words, text=text)
        self._keep(state, timeline)

    def _position(self, state: TurnState) -> int:
        """Turn samples that the pushes so far amount to, resampler tails included."""
        if not self._seg_rate:
            return max(self._seg_start, state.pushed)
        return self._seg_start + round(self._seg_in * self._rate / self._seg_rate)
