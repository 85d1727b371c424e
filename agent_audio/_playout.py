"""The frame path of one track: render, run the output stages, wrap, record, report.

:class:`Playout` is what ``recv()`` calls once a frame is due: it asks the engine for
the frame's samples (a value), hands them through the output stages in order, builds
the :class:`av.AudioFrame` (or, with an encoder set, the Opus packet), gives the
recorder its copy, and turns what the engine reported into scheduled pyee events.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import av
import numpy as np
import numpy.typing as npt

from ._deferred import Deferred
from ._engine import EngineEvent, EventKind, PlayoutEngine
from ._events import PlayoutStarted, TurnFinished, Underrun
from ._format import AudioFormat
from ._intake import Intake
from ._pacer import Pacer
from ._recorder import Recorder
from ._stages import OutputFrame, OutputStage
from ._turn import TurnBook

__all__ = ["TTFA_KEPT", "FrameEncoder", "Playout"]

logger = logging.getLogger(__name__)

#: Turns whose time to first audio ``metrics()`` reports.
TTFA_KEPT = 64

Block = npt.NDArray[np.int16]
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (once per frame)


class FrameEncoder(Protocol):
    """Turns each outgoing block into what ``recv()`` returns instead of a frame (an Opus packet)."""

    def emit(self, samples: Block, pts: int) -> av.Packet[Any]:
        """``samples``: int16 ``(frame_samples, channels)`` at the track format; ``pts`` in samples."""
        ...

    def silence(self, pts: int) -> av.Packet[Any]:
        """A packet of silence at ``pts`` that never raises: sent when ``emit`` itself failed."""
        ...


class Playout:
    """Everything between "a frame is due" and the frame ``recv()`` returns.

    Args:
        fmt: the track format.
        engine: the playout engine.
        book: the track's turns.
        intake: the producer side (woken when the queue drains).
        stages: the output stages, in order.
        deferred: where events are scheduled.
        on_pause_timeout: called with ``"resume"`` or ``"interrupt"`` when a pause timed out.
    """

    def __init__(
        self,
        *,
        fmt: AudioFormat,
        engine: PlayoutEngine,
        book: TurnBook,
        intake: Intake,
        stages: Sequence[OutputStage],
        deferred: Deferred,
        on_pause_timeout: Callable[[Literal["resume", "interrupt"]], None],
    ) -> None:
        self.pacer = Pacer(fmt.frame_duration)
        self.recorder: Recorder | None = None
        self.encoder: FrameEncoder | None = None
        self.pts = 0
        self.frames_sent = 0
        self.last_voiced = False
        self.last_voiced_at: float | None = None
        self.ttfa: OrderedDict[int, float] = OrderedDict()
        self.pause_deadline: float | None = None
        self.pause_action: Literal["resume", "interrupt"] = "resume"
        self._fmt = fmt
        self._engine = engine
        self._book = book
        self._intake = intake
        self._stages = tuple(stages)
        self._deferred = deferred
        self._on_pause_timeout = on_pause_timeout
        self._av_format = av.AudioFormat("s16")
        self._av_layout = av.AudioLayout(fmt.layout)
        self._time_base = fmt.time_base
        self._faults_logged: set[str] = set()

    def next_frame(self, now: float, due: float) -> av.AudioFrame | av.Packet[Any]:
        """The frame due at ``due`` (seconds on the track clock), handed out at ``now``."""
        self.pacer.handed_out(now, due)
        if self.pause_deadline is not None and now >= self.pause_deadline:
            self.pause_deadline = None
            self._on_pause_timeout(self.pause_action)
        samples, voiced, peak, turn_id, events = self._engine.render(self._fmt.frame_samples)
        if events:
            self.dispatch(events, now)
        if self._book.worded:
            for caption in self._book.captions():
                self._deferred.emit_later("word_played", caption)
        self.last_voiced = voiced
        if voiced:
            self.last_voiced_at = now
        if self._intake.room is not None:
            self._intake.frame_played()
        if self._book.waiters:
            self._book.wake_played()
        if self._stages:
            frame = _new(OutputFrame, (samples, voiced, peak, turn_id, self.pts))
            for stage in self._stages:
                try:
                    frame = stage.process(frame)
                except BaseException:  # SystemExit included: recv() raises only MediaStreamError
                    self.fault(f"in output stage {stage!r}; the frame goes on without it")
            samples = frame.samples
        return self.build(samples)

    def silence(self) -> av.AudioFrame | av.Packet[Any]:
        """A silent frame, continuing the pts (what ``recv()`` sends after an internal fault).

        With an encoder, a packet even when encoding fails: the encoder's own
        never-failing silence packet, stamped with this frame's pts.
        """
        block = np.zeros((self._fmt.frame_samples, self._fmt.channels), dtype=np.int16)
        encoder = self.encoder
        if encoder is None:
            return self.build(block)
        try:
            return self.build(block)
        except Exception:
            self.fault("encoding silence; sending the encoder's fallback silence packet")
            pts = self.pts
            self.pts = pts + self._fmt.frame_samples
            self.frames_sent += 1
            return encoder.silence(pts)

    def build(self, block: Block) -> av.AudioFrame | av.Packet[Any]:
        """Wrap ``block`` (int16, ``(frame_samples, channels)``) as the next frame; record it.

        The frame counts (pts, ``frames_sent``, the recording) only once it was built:
        after a failure the fault path sends this pts again, as silence.
        """
        fmt = self._fmt
        pts = self.pts
        out: av.AudioFrame | av.Packet[Any]
        if self.encoder is not None:
            out = self.encoder.emit(block, pts)
        else:
            out = av.AudioFrame(format=self._av_format, layout=self._av_layout, samples=fmt.frame_samples)
            out.planes[0].update(block)  # type: ignore[arg-type]  # PyAV's stub says bytes; any buffer works
            out.pts = pts
            out.sample_rate = fmt.sample_rate
            out.time_base = self._time_base
        if self.recorder is not None:
            self.recorder.put(block)
        self.pts = pts + fmt.frame_samples
        self.frames_sent += 1
        return out

    def dispatch(self, events: Sequence[EngineEvent], now: float) -> None:
        """Turn the engine's events into scheduled pyee events."""
        for event in events:
            turn = self._book.get(event.turn_id)
            if turn is None:
                continue
            if event.kind is EventKind.STARTED:
                ttfa = self._book.started(turn, now)
                self.ttfa[turn.id] = ttfa
                if len(self.ttfa) > TTFA_KEPT:
                    self.ttfa.popitem(last=False)
                self._deferred.emit_later("playout_started", PlayoutStarted(turn.id, ttfa, self.pts + event.offset))
            elif event.kind is EventKind.UNDERRUN:
                self._deferred.emit_later("underrun", Underrun(turn.id, turn.stats.played_samples))
            else:
                stats = self._book.finished(turn)
                self._deferred.emit_later("turn_finished", TurnFinished(turn.id, stats))

    def fault(self, what: str) -> None:
        """Log an internal fault with its traceback, once per kind."""
        if what not in self._faults_logged:
            self._faults_logged.add(what)
            logger.exception("agent_audio: fault %s (logged once)", what)

    def close(self) -> None:
        """The track stopped: close the recording and every stage that has ``close()``."""
        self.pause_deadline = None
        if self.recorder is not None:
            self.recorder.close()  # the file is finished; recorder.stop() still waits for it
        for stage in self._stages:
            close = getattr(stage, "close", None)
            if callable(close):
                try:
                    close()
                except BaseException:  # SystemExit included: nothing a plugin does reaches the loop
                    logger.exception("agent_audio: output stage %r raised in close()", stage)
