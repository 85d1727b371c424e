"""The background output stage: a looping bed, a streamed background and one-shot sounds under the voice.

:class:`Background` is an :class:`~agent_audio.OutputStage` around the clock-free
:class:`~agent_audio._mixer.BackgroundMixer`. Clips given as a file path are decoded
and resampled on a worker thread, so setting a background or playing a sound mid-call
never blocks the event loop; the layer joins the mix on the frame after it is ready.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._clip import ClipSource, check_clip_path, load_clip
from ._cliploader import ClipLoad, ClipLoader, yield_gil
from ._format import AudioFormat
from ._mixer import BackgroundMixer, ClipLayer, Layer, StreamLayer
from ._options import check_number
from ._queue import UNKNOWN_PEAK
from ._stages import OutputFrame

__all__ = ["BACKGROUND_FADE", "VOLUME_RAMP", "Background", "SoundHandle"]

logger = logging.getLogger(__name__)

#: Seconds over which a volume change ramps (no click).
VOLUME_RAMP = 0.020
#: Seconds of the fade when a background or sound starts, stops or is replaced.
BACKGROUND_FADE = 0.050

Block = npt.NDArray[np.int16]
_new = tuple.__new__  # builds an OutputFrame without its Python-level __new__ (once per frame)


def check_volume(volume: object) -> float:
    """A linear gain >= 0 (1.0 = unchanged), as a float.

    Raises:
        InvalidAudioError: not a finite number >= 0.
    """
    return check_number("volume", volume, unit="(linear gain, 1.0 = unchanged)", high=100.0)


class SoundHandle:
    """A one-shot sound started by :meth:`MixingAgentAudioTrack.play_sound`.

    ``await handle`` (or :meth:`wait`) returns once it has played out, was stopped, or
    failed to load (:attr:`loading` tells which).
    """

    def __init__(self, stage: Background, loading: ClipLoad) -> None:
        self._stage = stage
        self._layer: ClipLayer | None = None
        self._stopped = False
        self._done = asyncio.Event()
        self.loading = loading
        """Awaitable: the sound was decoded and joined the mix (raises if it could not be)."""

    @property
    def done(self) -> bool:
        """Whether the sound has played out, was stopped, or failed to load."""
        return self._done.is_set()

    @property
    def duration(self) -> float | None:
        """Length of the sound in seconds, or None while it is still loading."""
        return None if self._layer is None else len(self._layer.samples) / self._stage.fmt.sample_rate

    def set_volume(self, volume: float) -> None:
        """Change the linear gain, ramping over 20 ms.

        Raises:
            InvalidAudioError: ``volume`` is negative or not finite.
        """
        volume = check_volume(volume)
        if self._layer is not None:
            self._stage.set_gain(self._layer, volume, VOLUME_RAMP)

    def stop(self) -> None:
        """Fade the sound out over 50 ms (or drop it before it starts); the handle resolves after."""
        self._stopped = True
        if self._layer is not None:
            self._stage.stop_layer(self._layer)
        else:
            self._done.set()

    async def wait(self) -> None:
        """Wait until the sound has played out, was stopped, or failed to load."""
        await self._done.wait()

    def __await__(self) -> Generator[Any, None, None]:
        return self.wait().__await__()


class Background:
    """The background mix stage: layers under the voice, ducked while it plays, summed without wrapping.

    Args:
        duck: attenuation of the bed and stream while the voice plays, in dB, <= 0.
        duck_attack: seconds to go from 0 dB to ``duck``.
        duck_release: seconds to come back from ``duck`` to 0 dB.
        fmt: the track format.
    """

    def __init__(self, fmt: AudioFormat, *, duck: float, duck_attack: float, duck_release: float) -> None:
        rate = fmt.sample_rate
        self.fmt = fmt
        self.mixer = BackgroundMixer(
            duck_db=duck, attack_samples=round(duck_attack * rate), release_samples=round(duck_release * rate)
        )
        self.bed: ClipLayer | None = None
        self.stream: StreamLayer | None = None
        self.stream_volume = 1.0
        self._bed_generation = 0  # the newest set_background call; older loads are discarded
        self._sounds: dict[Layer, SoundHandle] = {}
        self._closed = False
        self._loader = ClipLoader.shared()  # started here, at set-up, not in the middle of a call

    # -- the stage -------------------------------------------------------------

    def process(self, frame: OutputFrame) -> OutputFrame:
        """Mix the layers under ``frame``'s samples (ducked while ``frame.voiced``)."""
        mixer = self.mixer
        if not mixer.layers:
            return frame
        samples = mixer.mix(frame[0], frame[1], frame[2])  # samples, voiced, peak
        if mixer.finished:  # layers finish only while mixed
            for layer in mixer.finished:
                handle = self._sounds.pop(layer, None)
                if handle is not None:
                    handle._done.set()
            mixer.finished.clear()
        return _new(OutputFrame, (samples, frame[1], UNKNOWN_PEAK, frame[3], frame[4]))

    def close(self) -> None:
        """The track stopped: every sound handle resolves, every layer goes."""
        self._closed = True
        for handle in self._sounds.values():
            handle._done.set()
        self._sounds.clear()
        self.mixer.layers.clear()

    # -- layers ----------------------------------------------------------------

    def set_bed(self, source: ClipSource | None, *, sample_rate: int | None, volume: float, loop: bool) -> ClipLoad:
        """Replace the bed (None stops it); see :meth:`MixingAgentAudioTrack.set_background`."""
        self._bed_generation += 1
        generation = self._bed_generation
        if source is None:
            self._install_bed(None)
            done = ClipLoad()
            done._settle(None)
            return done
        volume = check_volume(volume)

        def install(layer: ClipLayer) -> None:
            if generation == self._bed_generation:  # else a newer set_background won
                layer.gain.set(volume, round(BACKGROUND_FADE * self.fmt.sample_rate))
                self._install_bed(layer)

        def wanted() -> bool:  # read on the loader thread: a newer call or stop() makes decoding moot
            return generation == self._bed_generation and not self._closed

        return self._load(source, sample_rate, loop=loop, volume=0.0, ducked=True, install=install, wanted=wanted)

    def set_bed_volume(self, volume: float) -> None:
        """Ramp the bed to ``volume`` over 20 ms; no-op without a bed."""
        volume = check_volume(volume)
        if self.bed is not None:
            self.set_gain(self.bed, volume, VOLUME_RAMP)

    def play(self, source: ClipSource, *, sample_rate: int | None, volume: float) -> SoundHandle:
        """Start a one-shot sound; see :meth:`MixingAgentAudioTrack.play_sound`."""
        volume = check_volume(volume)
        loading = ClipLoad()
        handle = SoundHandle(self, loading)

        def install(layer: ClipLayer) -> None:
            handle._layer = layer
            if handle._stopped or self._closed:
                handle._done.set()
                return
            self._sounds[layer] = handle
            self.mixer.changed()
            self.mixer.layers.append(layer)

        def wanted() -> bool:  # read on the loader thread
            return not (handle._stopped or self._closed)

        self._load(
            source, sample_rate, loop=False, volume=volume, ducked=False, install=install, into=loading, wanted=wanted
        )

        def settled(future: concurrent.futures.Future[None]) -> None:
            if handle._layer is None:  # failed, or skipped (stopped, track closed): nothing will play
                handle._done.set()

        loading._future.add_done_callback(settled)
        return handle

    def stream_layer(self) -> StreamLayer:
        """The streamed background's layer, made and mixed on first use."""
        if self.stream is None:
            self.mixer.changed()
            self.stream = StreamLayer(volume=self.stream_volume, ducked=True)
            self.mixer.layers.append(self.stream)
        return self.stream

    def append_stream(self, block: Block) -> None:
        """Queue converted streamed background (int16, ``(n, channels)``, track format)."""
        layer = self.stream_layer()
        if not len(layer.queue):
            self.mixer.refilling(layer)
        layer.append(block)

    def set_stream_volume(self, volume: float) -> None:
        """Ramp the streamed background to ``volume`` over 20 ms (kept for a stream not started yet)."""
        self.stream_volume = check_volume(volume)
        if self.stream is not None:
            self.set_gain(self.stream, self.stream_volume, VOLUME_RAMP)

    def set_gain(self, layer: Layer, volume: float, seconds: float) -> None:
        """Ramp ``layer`` to ``volume`` over ``seconds``."""
        self.mixer.changed()
        layer.gain.set(volume, round(seconds * self.fmt.sample_rate))

    def stop_layer(self, layer: Layer) -> None:
        """Fade ``layer`` out over 50 ms, then drop it."""
        self.mixer.changed()
        layer.stop(round(BACKGROUND_FADE * self.fmt.sample_rate))

    # -- internals -------------------------------------------------------------

    def _install_bed(self, layer: ClipLayer | None) -> None:
        if self._closed:
            return
        self.mixer.changed()
        if self.bed is not None:
            self.bed.stop(round(BACKGROUND_FADE * self.fmt.sample_rate))
        self.bed = layer
        if layer is not None:
            self.mixer.layers.append(layer)

    def _load(
        self,
        source: ClipSource,
        sample_rate: int | None,
        *,
        loop: bool,
        volume: float,
        ducked: bool,
        install: Callable[[ClipLayer], None],
        into: ClipLoad | None = None,
        wanted: Callable[[], bool] = lambda: True,
    ) -> ClipLoad:
        """Decode ``source`` (a path: on a worker thread when a loop runs) and ``install`` its layer.

        A path whose clip is no longer ``wanted()`` when the loader thread reaches it is not
        decoded at all; its :class:`ClipLoad` resolves at once.
        """
        loading = into if into is not None else ClipLoad()
        fmt = self.fmt

        def make(between: Callable[[], object] | None = None) -> ClipLayer:
            samples = load_clip(source, fmt, sample_rate=sample_rate, between=between)
            return ClipLayer(samples, loop=loop, volume=volume, ducked=ducked)

        if isinstance(source, (str, Path)):
            path = Path(source)
            check_clip_path(path)  # what is plainly not audio is refused here, not in the log
            try:
                loop_ = asyncio.get_running_loop()
            except RuntimeError:
                loop_ = None
            if loop_ is not None:
                running = loop_

                def landed(layer: ClipLayer | None, error: BaseException | None) -> None:  # on the loop
                    if layer is not None:
                        install(layer)
                    elif error is not None:
                        logger.error("agent_audio: could not load clip %s: %s", path, error)
                    loading._settle(error)

                def job() -> None:  # on the loader thread
                    if not wanted():
                        outcome: tuple[ClipLayer | None, BaseException | None] = (None, None)
                        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                            running.call_soon_threadsafe(landed, *outcome)
                        return
                    try:
                        # time.sleep(0) after each frame hands the GIL back: without it the
                        # loop's thread waits up to the 5 ms switch interval, again and again.
                        outcome = (make(yield_gil), None)
                    except Exception as exc:
                        outcome = (None, exc)
                    try:
                        running.call_soon_threadsafe(landed, *outcome)
                    except RuntimeError:  # the loop closed meanwhile: nobody is waiting
                        return

                self._loader.put(job)
                return loading
        install(make())  # in-memory (or no loop running): converted here; errors raise to the caller
        loading._settle(None)
        return loading
