"""One browser session of the demo page: a peer connection, a mixing track, and what the page shows.

The page (``web/index.html``) sends an SDP offer; the session answers with aiortc,
sends a :class:`~agent_audio.MixingAgentAudioTrack` (the bundled ambience under the
voice), and carries out the page's controls: speak, pause, resume, interrupt, and
background on or off. It keeps a short event log and the current turn's stats for
the page to poll. Speech goes out with its words (the bundled turns' timings, or
piper's alignments for typed text); each ``word_played`` event is logged for the
page's live captions, and ``turn_finished`` carries the turn's heard text.

The page also sends audio back (its microphone, or a bundled user clip played through
WebAudio): :class:`~agent_audio.demo.user_audio.UserAudio` runs the barge-in policy on
it with the ``vad`` extra installed (each decision is a ``decision`` event), and
discards it without.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from aiortc import RTCPeerConnection, RTCSessionDescription

from agent_audio import (
    Interrupted,
    MixingAgentAudioTrack,
    Paused,
    PlayoutStarted,
    Resumed,
    Turn,
    TurnFinished,
    TurnStats,
    Underrun,
    WordPlayed,
)

from .speech import piper_chunks
from .user_audio import UserAudio
from .words import Chunk, Word, chunked

__all__ = ["CONNECT_TIMEOUT", "EVENT_LOG", "Session", "SessionOptions", "turn_stats_json"]

logger = logging.getLogger(__name__)

#: Events the page can fetch (older ones are forgotten).
EVENT_LOG = 100
#: Seconds a session may take to connect before it is closed (a page that went away mid-offer).
CONNECT_TIMEOUT = 30.0
#: Seconds of speech pushed per call when speaking a bundled turn: a TTS-like stream.
_CHUNK = 0.1

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SessionOptions:
    """What every session of one server shares.

    ``turns`` are float32 mono arrays in [-1, 1] at ``rate`` Hz, spoken in rotation by
    Speak; ``background`` is the bed mixed under the voice (None: silence) at linear
    ``background_volume``; ``fade_out`` is the interrupt fade in seconds; ``tts`` says
    whether typed text can be synthesized (the piper ``tts`` extra is installed);
    ``vad`` whether the page's audio drives a barge-in policy (the ``vad`` extra).
    ``words`` are each turn's words, seconds from its first sample (none: no captions).
    """

    turns: tuple[Floats, ...]
    rate: int
    fade_out: float
    background: Path | None
    background_volume: float
    tts: bool
    vad: bool = False
    words: tuple[tuple[Word, ...], ...] = ()


def turn_stats_json(stats: TurnStats) -> dict[str, Any]:
    """A turn's stats as the page shows them: durations in ms, TTFA in ms or None, the heard text."""
    ttfa = stats.time_to_first_audio
    partial = stats.partial_word
    return {
        "turn_id": stats.turn_id,
        "pushed_ms": round(stats.pushed_ms, 1),
        "played_ms": round(stats.played_ms, 1),
        "dropped_ms": round(stats.dropped_ms, 1),
        "queued_ms": round(stats.queued_samples * 1000.0 / stats.sample_rate, 1),
        "interrupted": stats.interrupted,
        "finished": stats.finished,
        "ttfa_ms": None if ttfa is None else round(ttfa * 1000.0, 1),
        "heard_text": stats.heard_text,
        "partial_word": None
        if partial is None
        else {"text": partial.word.text, "fraction": round(partial.fraction, 3), "heard": partial.heard},
    }


class Session:
    """A browser's peer connection and the agent track it hears.

    Args:
        session_id: the id the page uses in its control URLs.
        options: shared speech, background and fade settings.
        on_closed: called once with this session when it has closed, whatever closed it.
    """

    def __init__(self, session_id: str, options: SessionOptions, on_closed: Callable[[Session], object]) -> None:
        self.id = session_id
        self._options = options
        self._on_closed = on_closed
        self._started = time.monotonic()
        self._events: deque[dict[str, Any]] = deque(maxlen=EVENT_LOG)
        self._seq = itertools.count(1)
        self._next_turn = 0
        self._speaking: set[asyncio.Task[None]] = set()
        self._turns: deque[Turn] = deque(maxlen=EVENT_LOG)  # started, oldest first: they play in this order
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self.pc = RTCPeerConnection()
        self.track = MixingAgentAudioTrack(fade_out=options.fade_out)
        self._background = False
        self.set_background(options.background is not None)
        self._wire_events()
        self.user_audio = UserAudio(self.track, vad=options.vad, log=self._log)
        self.pc.on("track", self.user_audio.attach)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self._watchdog = asyncio.get_running_loop().call_later(CONNECT_TIMEOUT, self._connect_timeout)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Apply the page's offer and return the answer (ICE candidates included).

        Raises:
            Exception: whatever aiortc raises for an offer it cannot use (malformed SDP,
                no audio section, an unsupported codec set); the caller answers 400.
        """
        await self.pc.setRemoteDescription(offer)
        self.pc.addTrack(self.track)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    # -- controls --------------------------------------------------------------

    def speak(self, text: str | None = None) -> int:
        """Start a turn: the next bundled turn, or ``text`` synthesized with piper; return its id."""
        turn = self.track.start_turn()
        self._turns.append(turn)
        if text:
            source = self._synthesized(text)
            self._log("speak", turn.id, f'"{text}" (piper, streamed)')
        else:
            index = self._next_turn % len(self._options.turns)
            audio = self._options.turns[index]
            words = self._options.words[index] if index < len(self._options.words) else None
            self._next_turn += 1
            source = self._bundled(audio, words)
            self._log(
                "speak", turn.id, f"bundled turn of {len(audio) / self._options.rate:.1f} s, {len(words or ())} words"
            )
        task = asyncio.ensure_future(self._feed(turn, source))
        self._speaking.add(task)
        task.add_done_callback(self._speaking.discard)
        return turn.id

    def pause(self) -> None:
        """Pause for a false interruption (the track's own ``pause()``)."""
        self.track.pause()

    def resume(self) -> None:
        """Resume after a false interruption."""
        self.track.resume()

    def interrupt(self) -> None:
        """Interrupt: fade the voice out over ``fade_out`` and drop the rest."""
        self.track.interrupt()

    def set_background(self, on: bool) -> None:
        """Mix the background bed under the voice, or fade it out."""
        if self._options.background is None or on == self._background:
            return
        self._background = on
        self.track.set_background(
            self._options.background if on else None, volume=self._options.background_volume, loop=True
        )
        self._log("background", None, "on" if on else "off")

    # -- what the page polls ---------------------------------------------------

    def state(self, after: int = 0) -> dict[str, Any]:
        """The page's view: connection, speaking/paused, the heard turn's stats, the controls that apply, events.

        ``turn`` is the turn the listener hears now: the oldest one not finished (turns
        play in the order they were started), else the last one. A turn started while
        another still plays is counted in ``queued_turns`` and shown once it plays.
        ``controls`` says which of pause, resume and interrupt would do something now.
        ``barge_in`` says whether the page's audio drives the barge-in policy, whether
        the user is speaking, and the policy's last decision.
        """
        unfinished = [t for t in self._turns if not t.stats.finished]
        heard = unfinished[0] if unfinished else (self._turns[-1] if self._turns else None)
        paused = self.track.is_paused
        return {
            "session": self.id,
            "connection": self.pc.connectionState,
            "speaking": self.track.is_speaking,
            "paused": paused,
            "background": self._background,
            "turn": None if heard is None else turn_stats_json(heard.stats),
            "queued_turns": max(0, len(unfinished) - 1),
            "controls": {"pause": bool(unfinished) and not paused, "resume": paused, "interrupt": bool(unfinished)},
            "barge_in": self.user_audio.state(),
            "events": [e for e in self._events if e["seq"] > after],
        }

    async def close(self) -> None:
        """Stop speaking, stop the track and close the peer connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._watchdog.cancel()
        for task in list(self._speaking):
            task.cancel()
        await asyncio.gather(*self._speaking, return_exceptions=True)
        await self.user_audio.close()
        self.track.stop()
        await self.pc.close()
        self._on_closed(self)

    # -- internals -------------------------------------------------------------

    async def _feed(self, turn: Turn, source: AsyncIterator[Chunk]) -> None:
        try:
            async for chunk in source:
                await turn.push(chunk.audio, sample_rate=chunk.rate, words=chunk.words, text=chunk.text)
        except RuntimeError as exc:  # piper missing or failing: say so on the page
            self._log("error", turn.id, str(exc))
        finally:
            turn.end()

    async def _bundled(self, audio: Floats, words: tuple[Word, ...] | None) -> AsyncIterator[Chunk]:
        for chunk in chunked(audio, self._options.rate, round(_CHUNK * self._options.rate), words):
            yield chunk
            await asyncio.sleep(0)

    async def _synthesized(self, text: str) -> AsyncIterator[Chunk]:
        async for chunk in piper_chunks(text):  # each sentence with its words, from piper's alignments
            yield chunk

    def _wire_events(self) -> None:
        track = self.track

        @track.on("playout_started")
        def _started(e: PlayoutStarted) -> None:
            self._log("playout_started", e.turn_id, f"TTFA {e.time_to_first_audio * 1000:.0f} ms")

        @track.on("paused")
        def _paused(e: Paused) -> None:
            self._log("paused", e.turn_id, "")

        @track.on("resumed")
        def _resumed(e: Resumed) -> None:
            self._log("resumed", e.turn_id, f"after {e.paused_for * 1000:.0f} ms")

        @track.on("interrupted")
        def _interrupted(e: Interrupted) -> None:
            rate = track.sample_rate
            self._log(
                "interrupted",
                e.turn_id,
                f"fading {e.fade_samples * 1000 / rate:.0f} ms, dropped {e.dropped_samples * 1000 / rate:.0f} ms",
            )

        @track.on("turn_finished")
        def _finished(e: TurnFinished) -> None:
            s = e.stats
            detail = f"played {s.played_ms:.0f} ms of {s.pushed_ms:.0f} ms"
            self._log("turn_finished", e.turn_id, detail, stats=turn_stats_json(s))

        @track.on("word_played")
        def _word(e: WordPlayed) -> None:  # the page's live captions
            self._log("word_played", e.turn_id, e.text, index=e.index, start_ms=round(e.start_ms, 1))

        @track.on("underrun")
        def _underrun(e: Underrun) -> None:
            self._log("underrun", e.turn_id, f"after {e.played_samples * 1000 / track.sample_rate:.0f} ms")

    def _log(self, name: str, turn_id: int | None, detail: str, **extra: Any) -> None:
        self._events.append(
            {
                "seq": next(self._seq),
                "t": round(time.monotonic() - self._started, 3),
                "name": name,
                "turn_id": turn_id,
                "detail": detail,
                **extra,
            }
        )

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        self._log("connection", None, state)
        if state == "connected":
            self._watchdog.cancel()
        elif state in ("failed", "closed"):
            await self.close()

    def _connect_timeout(self) -> None:
        if self.pc.connectionState != "connected":
            logger.info("session %s did not connect within %.0f s; closing it", self.id, CONNECT_TIMEOUT)
            self._closing = asyncio.ensure_future(self.close())  # keep a reference until it is done

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.pc.connectionState}>"
