"""``MixingAgentAudioTrack``: the agent's voice with a background layer mixed under it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from ._clip import ClipSource, load_clip
from ._errors import InvalidAudioError
from ._input import InputNormalizer, PushData
from ._mixer import BackgroundMixer, ClipLayer, Layer, StreamLayer
from ._queue import UNKNOWN_PEAK
from ._track import PUSH_SLICE, AgentAudioTrack

__all__ = ["BACKGROUND_FADE", "VOLUME_RAMP", "MixingAgentAudioTrack", "SoundHandle"]

#: Seconds over which a volume change ramps (no click).
VOLUME_RAMP = 0.020
#: Seconds of the fade when a background or sound starts, stops or is replaced.
BACKGROUND_FADE = 0.050

Block = npt.NDArray[np.int16]


def _check_volume(volume: object) -> float:
    if isinstance(volume, bool) or not isinstance(volume, (int, float)) or not math.isfinite(volume) or volume < 0:
        raise InvalidAudioError(f"expected volume as a linear gain >= 0 (1.0 = unchanged), got {volume!r}")
    return float(volume)


def _next_hook(cls: type[AgentAudioTrack]) -> Callable[[AgentAudioTrack, Block], Block] | None:
    """The ``_process_output`` that ``super()`` reaches from :class:`MixingAgentAudioTrack` in ``cls``.

    None when that is the base's, which returns the block unchanged: resolving it once per
    track instead of calling ``super()`` per frame takes about 1,000 instructions (a tenth of
    what mixing adds) off every frame. A class placed between the two in ``cls``'s MRO
    keeps its hook called.
    """
    mro = cls.__mro__
    for klass in mro[mro.index(MixingAgentAudioTrack) + 1 :]:
        hook = vars(klass).get("_process_output")
        if hook is not None:
            return None if klass is AgentAudioTrack else cast(Callable[[AgentAudioTrack, Block], Block], hook)
    return None


class SoundHandle:
    """A one-shot sound started by :meth:`MixingAgentAudioTrack.play_sound`.

    ``await handle`` (or :meth:`wait`) returns once it has played out or was stopped.
    """

    def __init__(self, track: MixingAgentAudioTrack, layer: ClipLayer) -> None:
        self._track = track
        self._layer = layer
        self._done = asyncio.Event()

    @property
    def done(self) -> bool:
        """Whether the sound has played out or was stopped."""
        return self._done.is_set()

    @property
    def duration(self) -> float:
        """Length of the sound in seconds."""
        return len(self._layer.samples) / self._track.sample_rate

    def set_volume(self, volume: float) -> None:
        """Change the linear gain, ramping over 20 ms.

        Raises:
            InvalidAudioError: ``volume`` is negative or not finite.
        """
        volume = _check_volume(volume)
        self._track._mixer.changed()
        self._layer.gain.set(volume, round(VOLUME_RAMP * self._track.sample_rate))

    def stop(self) -> None:
        """Fade the sound out over 50 ms; the handle resolves when the fade has played."""
        self._track._mixer.changed()
        self._layer.stop(round(BACKGROUND_FADE * self._track.sample_rate))

    async def wait(self) -> None:
        """Wait until the sound has played out or was stopped."""
        await self._done.wait()

    def __await__(self) -> Any:
        return self.wait().__await__()


class MixingAgentAudioTrack(AgentAudioTrack):
    """:class:`AgentAudioTrack` with a background layer mixed under the voice.

    Three kinds of background, each with its own linear volume (1.0 = as recorded):
    a looping bed (:meth:`set_background`), a streamed background
    (:meth:`push_background`), and one-shot sounds (:meth:`play_sound`). The mix sums in
    float32 and clips to s16, so a loud voice over a loud bed saturates instead of
    wrapping around. Every turn counter counts voice samples only.

    The background keeps playing through :meth:`pause`, :meth:`resume` and
    :meth:`interrupt`: an interrupt fades and drops the voice, never the background.

    Ducking: while the voice plays, the bed and the stream are attenuated by ``duck``
    dB (one-shots are not), reaching it over ``duck_attack`` seconds and coming back
    over ``duck_release`` seconds. No peer framework ducks; -10 dB is the usual depth of
    voice-over ducking in broadcast (10-15 dB), the shallow end so that ambience stays
    audible while the voice sits 10 dB above it. Attack and release are tens of ms:
    the voice queue supplies samples between words, so ducking holds for a whole turn
    and does not pump.

    Args:
        duck: attenuation of the background while the voice plays, in dB, <= 0 (0 turns
            ducking off).
        duck_attack: seconds to go from 0 dB to ``duck``.
        duck_release: seconds to come back from ``duck`` to 0 dB.
        **kwargs: the options of :class:`AgentAudioTrack`.

    Raises:
        InvalidAudioError: an option is out of range.
    """

    def __init__(
        self, *, duck: float = -10.0, duck_attack: float = 0.03, duck_release: float = 0.09, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._after_mix = _next_hook(type(self))
        if not isinstance(duck, (int, float)) or not math.isfinite(duck) or duck > 0:
            raise InvalidAudioError(f"expected duck <= 0 dB, got {duck!r}")
        for name, value in (("duck_attack", duck_attack), ("duck_release", duck_release)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidAudioError(f"expected {name} >= 0 seconds, got {value!r}")
        rate = self.sample_rate
        self._mixer = BackgroundMixer(
            duck_db=float(duck), attack_samples=round(duck_attack * rate), release_samples=round(duck_release * rate)
        )
        self._bed: ClipLayer | None = None
        self._stream: StreamLayer | None = None
        self._stream_volume = 1.0
        self._stream_normalizer = InputNormalizer(self._format)
        self._stream_lock = asyncio.Lock()
        self._sounds: dict[Layer, SoundHandle] = {}

    def set_background(
        self, source: ClipSource | None, *, sample_rate: int | None = None, volume: float = 1.0, loop: bool = True
    ) -> None:
        """Play a background bed under the voice, replacing the current one; None stops it.

        The clip is decoded and resampled to the track format once, here (synchronously:
        call it while setting up, not per frame). The old bed fades out and the new one
        fades in over 50 ms, so replacing or stopping never clicks. A looped clip should
        end where it starts (it is played back to back).

        Args:
            source: a file path (any format PyAV reads), s16 ``bytes`` or a numpy array
                (int16 or float in [-1, 1], shape ``(n,)`` or ``(n, channels)``) at
                ``sample_rate``, an ``av.AudioFrame`` or an iterable of them; or None.
            sample_rate: rate of bytes or array input in Hz; default the track's.
            volume: linear gain, >= 0.
            loop: play the clip again and again (else once).

        Raises:
            InvalidAudioError: malformed clip or volume; the current bed keeps playing.
            FileNotFoundError: ``source`` is a path that does not exist.
        """
        fade = round(BACKGROUND_FADE * self.sample_rate)
        layer = None
        if source is not None:
            volume = _check_volume(volume)
            layer = ClipLayer(
                load_clip(source, self._format, sample_rate=sample_rate), loop=loop, volume=0.0, ducked=True
            )
            layer.gain.set(volume, fade)
        self._mixer.changed()
        if self._bed is not None:
            self._bed.stop(fade)
        self._bed = layer
        if layer is not None:
            self._mixer.layers.append(layer)

    def set_background_volume(self, volume: float) -> None:
        """Change the bed's linear gain, ramping over 20 ms. No-op without a bed.

        Raises:
            InvalidAudioError: ``volume`` is negative or not finite.
        """
        volume = _check_volume(volume)
        if self._bed is not None:
            self._mixer.changed()
            self._bed.gain.set(volume, round(VOLUME_RAMP * self.sample_rate))

    async def push_background(
        self, data: PushData, *, sample_rate: int | None = None, channels: int | None = None
    ) -> None:
        """Queue streamed background audio (produced in real time) to mix under the voice.

        Same input types and conversion as :meth:`AgentAudioTrack.push`; the stream
        plays at 1.0x real time from the next frame, silence when it runs dry. It is
        ducked like the bed and unaffected by pause and interrupt.

        Raises:
            InvalidAudioError: malformed input; nothing queued changes.
            TrackClosedError: the track was stopped.
        """
        self._check_live()
        async with self._stream_lock:
            prepared = self._stream_normalizer.prepare(data, sample_rate=sample_rate, channels=channels)
            if self._stream is None:
                self._mixer.changed()
                self._stream = StreamLayer(volume=self._stream_volume, ducked=True)
                self._mixer.layers.append(self._stream)
            step = max(1, round(prepared.sample_rate * PUSH_SLICE))
            big = prepared.source_samples > step
            for block in self._stream_normalizer.convert(prepared, slice_samples=step):
                if not len(self._stream.queue):
                    self._mixer.refilling(self._stream)
                self._stream.append(block)
                if big:
                    await asyncio.sleep(0)

    def set_stream_volume(self, volume: float) -> None:
        """Change the streamed background's linear gain, ramping over 20 ms.

        Raises:
            InvalidAudioError: ``volume`` is negative or not finite.
        """
        self._stream_volume = _check_volume(volume)
        if self._stream is not None:
            self._mixer.changed()
            self._stream.gain.set(self._stream_volume, round(VOLUME_RAMP * self.sample_rate))

    def play_sound(self, source: ClipSource, *, sample_rate: int | None = None, volume: float = 1.0) -> SoundHandle:
        """Mix a one-shot sound (a "thinking" or typing sound) on top, once, from the next frame.

        Args:
            source: as for :meth:`set_background`.
            sample_rate: rate of bytes or array input in Hz; default the track's.
            volume: linear gain, >= 0. One-shots are not ducked.

        Returns:
            A handle to await, stop, or change the volume of.

        Raises:
            InvalidAudioError: malformed clip or volume.
            FileNotFoundError: ``source`` is a path that does not exist.
        """
        layer = ClipLayer(
            load_clip(source, self._format, sample_rate=sample_rate),
            loop=False,
            volume=_check_volume(volume),
            ducked=False,
        )
        handle = SoundHandle(self, layer)
        self._sounds[layer] = handle
        self._mixer.changed()
        self._mixer.layers.append(layer)
        return handle

    def stop(self) -> None:
        """Stop the track (see :meth:`AgentAudioTrack.stop`); pending sound handles resolve."""
        for handle in self._sounds.values():
            handle._done.set()
        self._sounds.clear()
        self._mixer.layers.clear()
        super().stop()

    def _process_output(self, voice: Block) -> Block:
        mixer = self._mixer
        if mixer.layers:
            engine = self._engine
            # The engine's peak bound holds for its own block only: a subclass may have handed
            # on another (louder, or the tee's silence), which then takes the float path.
            peak = engine.last_peak if voice is engine.last_block else UNKNOWN_PEAK
            voice = mixer.mix(voice, engine.last_voiced, peak)
            if mixer.finished:  # layers finish only while mixed
                for layer in mixer.finished:
                    handle = self._sounds.pop(layer, None)
                    if handle is not None:
                        handle._done.set()
                mixer.finished.clear()
        after = self._after_mix  # super()._process_output, resolved once (see _next_hook)
        return voice if after is None else after(self, voice)
