"""The handle of one agent reply: its id, its live account, and a way to await its end."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._engine import TurnState
from ._input import InputNormalizer, PushData
from ._stats import TurnStats

if TYPE_CHECKING:
    from ._track import AgentAudioTrack

__all__ = ["Turn"]


class Turn:
    """One agent reply. Made by :meth:`AgentAudioTrack.start_turn`, not directly.

    Every sample pushed for the turn carries its id. Counts are in samples per
    channel at the track's sample rate.
    """

    def __init__(
        self, track: AgentAudioTrack, state: TurnState, normalizer: InputNormalizer, started_at: float
    ) -> None:
        self._track = track
        self._state = state
        self._normalizer = normalizer
        self._started_at = started_at
        self._time_to_first_audio: float | None = None
        self._done = asyncio.Event()
        self._final: TurnStats | None = None

    def __repr__(self) -> str:
        s = self._state
        return f"<Turn {s.id} pushed={s.pushed} played={s.played} dropped={s.dropped} interrupted={s.interrupted}>"

    @property
    def id(self) -> int:
        """Turn id: 1 for the track's first turn, then counting up."""
        return self._state.id

    @property
    def stats(self) -> TurnStats:
        """The turn's account right now (a snapshot; counts in samples per channel)."""
        s = self._state
        return TurnStats(
            turn_id=s.id,
            sample_rate=self._track.sample_rate,
            pushed_samples=s.pushed,
            played_samples=s.played,
            dropped_samples=s.dropped,
            queued_samples=self._track._engine.queued_for(s),
            interrupted=s.interrupted,
            finished=s.finished,
            time_to_first_audio=self._time_to_first_audio,
        )

    async def push(self, data: PushData, *, sample_rate: int | None = None, channels: int | None = None) -> None:
        """Push audio for this turn: :meth:`AgentAudioTrack.push` with ``turn=self``.

        Pushing through the turn handle rather than the track is what keeps a TTS
        task that outlives its turn from leaking audio into the next one.
        """
        await self._track.push(data, sample_rate=sample_rate, channels=channels, turn=self)

    def end(self) -> None:
        """Mark synthesis complete: :meth:`AgentAudioTrack.end_turn` for this turn."""
        self._track.end_turn(self)

    async def wait_for_playout(self) -> TurnStats:
        """Wait until the turn has finished (played out, or interrupted and faded).

        Returns:
            The stats carried by the turn's ``turn_finished`` event.
        """
        await self._done.wait()
        assert self._final is not None
        return self._final

    def _finish(self, stats: TurnStats) -> None:
        self._final = stats
        self._done.set()
