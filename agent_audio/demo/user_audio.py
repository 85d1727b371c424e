"""The page's audio at the server: with the ``vad`` extra it drives a barge-in policy, else it is discarded.

The demo page always sends audio back (silence, its microphone, or a bundled user
clip). :class:`UserAudio` reads that remote track for one session: with the ``vad``
extra, Silero VAD (:class:`agent_audio.vad.SileroVAD`) feeds a
:class:`~agent_audio.BargeInPolicy` on the session's agent track, and every decision
goes to the session's event log; without it, aiortc's ``MediaBlackhole`` reads and
drops the audio (an unread remote track queues every decoded frame).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamTrack

from agent_audio import AgentAudioTrack, BargeInDecision, BargeInPolicy

__all__ = ["UserAudio"]

#: ``(event name, turn id, detail)``: the session's event log.
Log = Callable[[str, "int | None", str], None]


class UserAudio:
    """What one session does with the audio its page sends.

    Args:
        track: the session's agent track, which the policy pauses, resumes and interrupts.
        vad: whether the ``vad`` extra is installed (then a policy listens).
        log: receives a ``decision`` event per policy decision.
    """

    def __init__(self, track: AgentAudioTrack, *, vad: bool, log: Log) -> None:
        self.policy = BargeInPolicy(track) if vad else None
        self._log = log
        self._last: dict[str, Any] | None = None
        self._reader: Any = None  # SileroVAD or MediaBlackhole, once the page's track arrived
        if self.policy is not None:
            self.policy.on("decision", self._on_decision)

    async def attach(self, remote: MediaStreamTrack) -> None:
        """Start reading the page's audio track (the first one; later ones are ignored)."""
        if remote.kind != "audio" or self._reader is not None:
            return
        if self.policy is not None:
            from agent_audio.vad import SileroVAD  # the vad extra

            vad = SileroVAD(remote, self.policy)
            vad.start()
            self._reader = vad
        else:
            blackhole = MediaBlackhole()
            blackhole.addTrack(remote)
            self._reader = blackhole
            await blackhole.start()

    def state(self) -> dict[str, Any]:
        """For the page: whether the policy listens, whether the user is speaking, its last decision."""
        return {
            "enabled": self.policy is not None,
            "user_speaking": self.policy is not None and self.policy.user_speaking,
            "last": self._last,
        }

    async def close(self) -> None:
        """Stop reading and detach the policy from the track. Idempotent."""
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.stop()
        if self.policy is not None:
            self.policy.close()
            self.policy.remove_all_listeners()

    def _on_decision(self, d: BargeInDecision) -> None:
        self._last = {
            "action": d.action.value,
            "reason": d.reason.value,
            "turn_id": d.turn_id,
            "speech_ms": round(d.speech_duration * 1000, 1),
        }
        self._log(
            "decision", d.turn_id, f"{d.action.value} ({d.reason.value}), speech {d.speech_duration * 1000:.0f} ms"
        )
