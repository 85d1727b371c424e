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
from ._errors import InvalidAudioError
from ._events import WordPlayed
from ._words import HeardText, WordTimeline

__all__ = ["TurnText", "Words"]

Words = Sequence[tuple[str, float, float]]


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
        self._stream_start = 0  # turn position where the open encoded stream's audio begins
        self._stream_text: list[str] = []  # text= of the open encoded stream, spread when it ends
        self._caption_pos = 0  # played samples up to which word_played events were made

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

    def stream_opened(self, state: TurnState) -> None:
        """An encoded stream begins at the turn's current position."""
        self._stream_start = self._position(state)
        self._seg_rate = self._seg_in = 0
        self._seg_start = self._stream_start
        self._stream_text = []

    def stream_words(self, state: TurnState, words: Words | None, text: str | None) -> bool:
        """Words of the open stream (seconds from its first decoded sample); ``text`` waits for its end.

        Returns:
            Whether the turn has words now.

        Raises:
            InvalidAudioError: malformed words or text; nothing changes.
        """
        if state.interrupted:
            return self.timeline is not None
        if text is not None:
            if words is not None:
                raise InvalidAudioError("expected exactly one of words= or text=, got both")
            if not isinstance(text, str):
                raise InvalidAudioError(f"expected text as a str, got {type(text).__name__}")
            self._stream_text.append(text)
        elif words is not None:
            timeline = self.timeline if self.timeline is not None else WordTimeline(self._rate)
            timeline.add(self._stream_start, 0, words=words)
            self._keep(state, timeline)
        return self.timeline is not None

    def stream_closed(self, state: TurnState) -> bool:
        """The stream queued all it decoded: its text is spread over it; pushes continue after it.

        Returns:
            Whether the turn has words now.
        """
        end = state.pushed
        if self._stream_text and not state.interrupted:
            timeline = self.timeline if self.timeline is not None else WordTimeline(self._rate)
            timeline.add(self._stream_start, end - self._stream_start, text=" ".join(self._stream_text))
            self._keep(state, timeline)
        self._stream_text = []
        self._seg_rate = self._seg_in = 0
        self._seg_start = end
        return self.timeline is not None

    def queued(self, state: TurnState) -> None:
        """Audio was queued: words may now end as far as it reaches."""
        if self.timeline is not None:
            self.timeline.audio_until(state.pushed)

    def captions(self, state: TurnState) -> list[WordPlayed]:
        """``word_played`` payloads for the words whose start played since the last call."""
        timeline = self.timeline
        played = state.played
        if timeline is None or played <= self._caption_pos:
            return []
        ms = 1000.0 / self._rate
        out = []
        for word in timeline.crossed(self._caption_pos, played):
            start, end = word.start_sample * ms, max(word.start_sample, word.end_sample) * ms
            out.append(WordPlayed(state.id, word.index, word.text, start, end, word.estimated))
        self._caption_pos = played
        return out

    def heard(self, state: TurnState) -> HeardText | None:
        """What the listener heard of the words (None without words); an interrupt is the cut."""
        if self.timeline is None:
            return None
        return self.timeline.heard(state.played, state.full_level_end if state.interrupted else None)

    def _keep(self, state: TurnState, timeline: WordTimeline) -> None:
        self.timeline = timeline
        timeline.audio_until(state.pushed)

    def _position(self, state: TurnState) -> int:
        """Turn samples that the pushes so far amount to, resampler tails included."""
        if not self._seg_rate:
            return max(self._seg_start, state.pushed)
        return self._seg_start + round(self._seg_in * self._rate / self._seg_rate)
