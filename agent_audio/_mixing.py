"""``MixingAgentAudioTrack``: the agent's voice with a background layer mixed under it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ._background import Background, SoundHandle
from ._clip import ClipSource
from ._cliploader import ClipLoad
from ._clock import Clock
from ._format import AudioFormat
from ._input import InputNormalizer, PushData
from ._intake import push_slices
from ._options import check_number
from ._stages import OutputStage, VoiceTap
from ._track import MAX_FADE, AgentAudioTrack

__all__ = ["MixingAgentAudioTrack", "make_background"]


class MixingAgentAudioTrack(AgentAudioTrack):
    """:class:`AgentAudioTrack` with a background layer mixed under the voice.

    Three kinds of background, each with its own linear volume (1.0 = as recorded):
    a looping bed (:meth:`set_background`), a streamed background
    (:meth:`push_background`), and one-shot sounds (:meth:`play_sound`). The mix sums
    wide and clips to s16, so a loud voice over a loud bed saturates instead of
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

    It is the base track composed with a :class:`Background` output stage, placed after
    ``stages`` (the background goes under whatever the stages made of the voice).

    Args:
        duck: attenuation of the background while the voice plays, in dB, -60 to 0 (0
            turns ducking off).
        duck_attack: seconds (0 to 5) to go from 0 dB to ``duck``.
        duck_release: seconds (0 to 5) to come back from ``duck`` to 0 dB.
        sample_rate, channels, frame_duration, fade_out, speaking_grace, clock,
            max_queued, stages, taps: as for :class:`AgentAudioTrack`.

    Raises:
        InvalidAudioError: an option is out of range.
    """

    def __init__(
        self,
        *,
        duck: float = -10.0,
        duck_attack: float = 0.03,
        duck_release: float = 0.09,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_duration: float = 0.020,
        fade_out: float = 0.2,
        speaking_grace: float = 0.2,
        clock: Clock | None = None,
        max_queued: float | None = None,
        stages: Sequence[OutputStage] = (),
        taps: Sequence[VoiceTap] = (),
    ) -> None:
        self._background = make_background(
            sample_rate, channels, frame_duration, duck=duck, duck_attack=duck_attack, duck_release=duck_release
        )
        super().__init__(
            sample_rate=sample_rate,
            channels=channels,
            frame_duration=frame_duration,
            fade_out=fade_out,
            speaking_grace=speaking_grace,
            clock=clock,
            max_queued=max_queued,
            stages=(*stages, self._background),
            taps=taps,
        )
        self._init_stream()

    def _init_stream(self) -> None:
        """State of :meth:`push_background` (also called by ``TeeMixingAgentAudioTrack``)."""
        self._stream_normalizer = InputNormalizer(self._format)
        self._stream_lock = asyncio.Lock()

    def set_background(
        self, source: ClipSource | None, *, sample_rate: int | None = None, volume: float = 1.0, loop: bool = True
    ) -> ClipLoad:
        """Play a background bed under the voice, replacing the current one; None stops it.

        A file path is decoded and resampled on a worker thread (when an event loop
        runs), so this never blocks the loop; the new bed joins the mix once decoded.
        In-memory clips are converted here. The old bed fades out and the new one fades
        in over 50 ms, so replacing or stopping never clicks; of several calls in a row,
        the last one wins. A looped clip should end where it starts (it is played back
        to back).

        Args:
            source: a file path (any format PyAV reads), s16 ``bytes`` or a numpy array
                (int16 or float in [-1, 1], shape ``(n,)`` or ``(n, channels)``) at
                ``sample_rate``, an ``av.AudioFrame`` or an iterable of them; or None.
            sample_rate: rate of bytes or array input in Hz; default the track's.
            volume: linear gain, 0 to 100.
            loop: play the clip again and again (else once).

        Returns:
            A :class:`ClipLoad`: ``await`` it to know the bed is mixing; it raises what
            decoding a file raised (the error is also logged, and the current bed keeps
            playing).

        Raises:
            InvalidAudioError: malformed in-memory clip or volume, or a path to a
                directory or an empty file; the current bed keeps playing.
            FileNotFoundError: ``source`` is a path that does not exist.
            TrackClosedError: the track was stopped.
        """
        self._intake.check_live()
        return self._background.set_bed(source, sample_rate=sample_rate, volume=volume, loop=loop)

    def set_background_volume(self, volume: float) -> None:
        """Change the bed's linear gain (0 to 100), ramping over 20 ms. No-op without a bed.

        Raises:
            InvalidAudioError: ``volume`` is out of range or not a number.
        """
        self._background.set_bed_volume(volume)

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
        self._intake.check_live()
        async with self._stream_lock:
            prepared = self._stream_normalizer.prepare(data, sample_rate=sample_rate, channels=channels)
            self._background.stream_layer()
            await push_slices(self._stream_normalizer, prepared, put=self._background.append_stream, live=self._is_live)

    def set_stream_volume(self, volume: float) -> None:
        """Change the streamed background's linear gain (0 to 100), ramping over 20 ms.

        Raises:
            InvalidAudioError: ``volume`` is out of range or not a number.
        """
        self._background.set_stream_volume(volume)

    def play_sound(self, source: ClipSource, *, sample_rate: int | None = None, volume: float = 1.0) -> SoundHandle:
        """Mix a one-shot sound (a "thinking" or typing sound) on top, once, from the next frame.

        A file path is decoded on a worker thread (when an event loop runs): the sound
        starts on the frame after it is ready, and the loop is never blocked.

        Args:
            source: as for :meth:`set_background`.
            sample_rate: rate of bytes or array input in Hz; default the track's.
            volume: linear gain, 0 to 100. One-shots are not ducked.

        Returns:
            A handle to await (played out, stopped, or failed to load), stop, or change
            the volume of; ``handle.loading`` tells whether it loaded.

        Raises:
            InvalidAudioError: malformed in-memory clip or volume, or a path to a
                directory or an empty file.
            FileNotFoundError: ``source`` is a path that does not exist.
            TrackClosedError: the track was stopped.
        """
        self._intake.check_live()
        return self._background.play(source, sample_rate=sample_rate, volume=volume)


def make_background(
    sample_rate: int, channels: int, frame_duration: float, *, duck: float, duck_attack: float, duck_release: float
) -> Background:
    """Validate the mixing options and build the background stage for that track format.

    Raises:
        InvalidAudioError: an option is out of range.
    """
    fmt = AudioFormat.for_track(sample_rate=sample_rate, channels=channels, frame_duration=frame_duration)
    return Background(
        fmt,
        duck=check_number("duck", duck, unit="dB", low=-60.0, high=0.0),
        duck_attack=check_number("duck_attack", duck_attack, unit="seconds", high=MAX_FADE),
        duck_release=check_number("duck_release", duck_release, unit="seconds", high=MAX_FADE),
    )
