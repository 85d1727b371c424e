"""The background mixer: layers under the voice, ducking, and a sum that clips instead of wrapping.

Synchronous and clock-free, like the playout engine. Each frame, :meth:`BackgroundMixer.mix`
adds every layer (a looping bed, a streamed background, one-shot sounds) to the voice
block, each under its own gain, and the bed and stream also under the ducking gain
while the voice plays. Gains move by linear ramps over a number of samples, so volume
changes, ducking and stops never click. The sum is done in float32 (wider than s16),
the background rounded, then added to the voice and clipped to the s16 range when it
exceeds it. Layers hold their samples as int16 (a streamed background can be minutes
queued) and numpy converts them while multiplying by the gain (in float32, as before):
in interleaved runs of ``benchmarks/compare.py``'s recv workload, reading half the
bytes outweighed float32's cheaper multiply by a few percent of a mixing frame.

While nothing changes (every gain steady, beds looping, no one-shot playing), the
background is rendered ahead in blocks of ``ahead_frames`` frames (a streamed
background: as many whole frames as are queued, if at least two), so a frame costs one
add instead of a few numpy calls per layer. Any change (ducking, a volume, a layer added
or stopped) rewinds the layers to the playout position and drops the rendered block: the
output is identical sample for sample either way. The cost per frame does not depend on
how long a clip or how much streamed background is queued. When the layers' peaks (known
from their samples) under their gains and the voice's peak bound cannot overflow s16
together, the frame is one int16 add; otherwise the sum is clipped in int32.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ._queue import UNKNOWN_PEAK, SampleQueue

__all__ = ["BackgroundMixer", "ClipLayer", "Layer", "SmoothGain", "StreamLayer"]

Block = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float32]
Gains = npt.NDArray[np.float32]
Wide = npt.NDArray[np.int32]


class SmoothGain:
    """A linear gain that moves to a new target by a linear ramp over a number of samples.

    Args:
        value: the starting gain (linear, 1.0 = unchanged).
    """

    def __init__(self, value: float) -> None:
        self.value = float(value)
        self.target = float(value)
        self._step = 0.0
        self._left = 0

    @property
    def steady(self) -> bool:
        """Whether no ramp is running."""
        return self._left == 0

    def set(self, target: float, samples: int) -> None:
        """Ramp from the current value to ``target`` over ``samples`` samples per channel (0: at once)."""
        self.target = float(target)
        if samples <= 0 or self.value == self.target:
            self.value, self._left = self.target, 0
            return
        self._left = samples
        self._step = (self.target - self.value) / samples

    def next(self, n: int) -> float | Gains:
        """Gains for the next ``n`` samples: a float while steady, else float32 of shape ``(n,)``.

        The ramp's last sample is exactly the target.
        """
        if not self._left:
            return self.value
        k = min(n, self._left)
        gains = np.full(n, self.target, dtype=np.float32)
        gains[:k] = self.value + self._step * np.arange(1, k + 1)
        self._left -= k
        if self._left:
            self.value = float(gains[k - 1])
        else:
            gains[k - 1] = self.value = self.target
        return gains


class Layer:
    """One source of background samples (in s16 units, shape ``(m, channels)``, track format).

    Args:
        volume: linear gain (1.0 = as recorded).
        ducked: whether the ducking gain applies to this layer.
    """

    def __init__(self, *, volume: float, ducked: bool) -> None:
        self.gain = SmoothGain(volume)
        self.ducked = ducked
        self.finished = False
        """Played out or stopped: the mixer drops it after this frame."""
        self.read_peak: float = UNKNOWN_PEAK
        """An upper bound of ``abs()`` of what the last :meth:`read` returned, before gain."""
        self._stopping = False

    def pieces(self, n: int) -> list[Block]:
        """The next up to ``n`` samples, as consecutive int16 views; empty when there is nothing."""
        raise NotImplementedError

    def read(self, n: int) -> Block | None:
        """Up to ``n`` samples (int16), or None when there is nothing to add this frame."""
        pieces = self.pieces(n)
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def stop(self, fade_samples: int) -> None:
        """Fade out over ``fade_samples`` samples, then finish (at once if 0)."""
        self._stopping = True
        self.gain.set(0.0, fade_samples)
        if fade_samples <= 0:
            self.finished = True

    def _after_frame(self) -> None:
        if self._stopping and self.gain.steady:
            self.finished = True


class ClipLayer(Layer):
    """A clip held in memory, looped (a background bed) or played once (a one-shot sound).

    Args:
        samples: int16, shape ``(m, channels)``, at the track format; copied.
        loop: start again at the end (seamless: the clip's end joins its start).
    """

    def __init__(self, samples: Block, *, loop: bool, volume: float, ducked: bool) -> None:
        super().__init__(volume=volume, ducked=ducked)
        self.samples: Block = samples.astype(np.int16)
        self.read_peak = max(int(samples.max()), -int(samples.min())) if len(samples) else 0
        self.loop = loop
        self.position = 0
        """Index of the next sample to play."""

    def pieces(self, n: int) -> list[Block]:
        """Up to ``n`` samples from the current position, wrapping when looping."""
        samples = self.samples
        size = len(samples)
        if self.finished or size == 0:
            self.finished = True
            return []
        pos = self.position
        if pos + n < size:
            self.position = pos + n
            return [samples[pos : pos + n]]
        pieces = []
        while n > 0:
            take = min(n, size - pos)
            pieces.append(samples[pos : pos + take])
            n -= take
            pos += take
            if pos == size:
                if not self.loop:
                    self.finished = True
                    break
                pos = 0
        self.position = pos  # a one-shot that finished stops at its end (pos == size)
        return pieces


class StreamLayer(Layer):
    """Background audio pushed in real time (``push_background``): a FIFO, silence when dry.

    Call the mixer's ``refilling()`` before appending to an empty stream: background
    rendered ahead may have counted it as silence.
    """

    def __init__(self, *, volume: float, ducked: bool) -> None:
        super().__init__(volume=volume, ducked=ducked)
        self.queue = SampleQueue()

    def append(self, samples: Block) -> None:
        """Queue int16 samples of shape ``(n, channels)`` (copied), with their block peaks."""
        self.queue.append(0, samples.astype(np.int16), measure=True)

    def pieces(self, n: int) -> list[Block]:
        """Up to ``n`` queued samples (fewer when the stream runs dry)."""
        taken = self.queue.take(n)
        if taken is not None:
            self.read_peak = taken[2]
            return [taken[1]]
        pieces = self.queue.read(n)
        self.read_peak = self.queue.read_peak
        return [block for _, block in pieces]


class BackgroundMixer:
    """Mixes layers under the voice, ducking the ducked ones while the voice plays.

    Args:
        duck_db: attenuation of ducked layers while the voice plays, in dB (<= 0).
        attack_samples: samples per channel to go from 0 dB to ``duck_db``.
        release_samples: samples per channel to come back from ``duck_db`` to 0 dB.
        ahead_frames: frames of background rendered at once while nothing changes (0:
            never). The default, 50 (1 s of 20 ms frames), brought mixing ``recv()``
            0.05-0.15 closer to the base track's (as a ratio) than 25, in interleaved
            runs of ``benchmarks/compare.py``'s recv workload; 100 gained nothing more.
            Its buffers hold 6 bytes per sample (the float32 sum and its int16 copy).

    Call :meth:`changed` after changing a layer's gain, stopping it, or adding a layer.
    """

    def __init__(self, *, duck_db: float, attack_samples: int, release_samples: int, ahead_frames: int = 50) -> None:
        self.layers: list[Layer] = []
        self.ahead_frames = ahead_frames
        self.duck = SmoothGain(1.0)
        self.duck_gain = 10.0 ** (duck_db / 20.0)
        self.attack_samples = attack_samples
        self.release_samples = release_samples
        self.finished: list[Layer] = []
        """Layers that finished during the last :meth:`mix` (for the shell to resolve handles)."""
        self._voice_active = False
        self._acc: Floats = np.zeros((0, 0), np.float32)
        self._tmp: Floats = np.zeros((0, 0), np.float32)
        self._wide: Wide = np.zeros((0, 0), np.int32)
        # Background rendered ahead, frames not yet played with the bound of each one's abs
        # (the next frame last): int16 views of _bg16, or int32 when the layers together
        # exceed s16 (then every frame is clipped in int32, as the float path would).
        self._ready: list[tuple[Block | Wide, int]] = []
        self._ready_stream: tuple[StreamLayer, list[Block]] | None = None  # stream samples it consumed
        self._frame_n = 0  # samples per channel of each rendered frame
        self._bg: Floats = np.zeros((0, 0), np.float32)  # render buffers, reused
        self._bg_tmp: Floats = np.zeros((0, 0), np.float32)
        self._bg16: Block = np.zeros((0, 0), np.int16)
        self._bg16_frames: list[Block] = []  # views of _bg16, one per frame

    def changed(self) -> None:
        """Drop the background rendered ahead and rewind the layers to the playout position."""
        ready = self._ready
        if not ready:
            return
        unused = len(ready) * self._frame_n
        for layer in self.layers:
            if isinstance(layer, ClipLayer) and len(layer.samples):
                layer.position = (layer.position - unused) % len(layer.samples)
        if self._ready_stream is not None:
            stream, consumed = self._ready_stream
            for block in reversed(consumed):  # the last ``unused`` samples go back, in order
                if unused <= 0:
                    break
                k = min(unused, len(block))
                stream.queue.push_back(0, block[len(block) - k :])
                unused -= k
        ready.clear()
        self._ready_stream = None

    def refilling(self, stream: StreamLayer) -> None:
        """Call before appending to ``stream`` while it is empty.

        Background rendered while the stream was empty counted it as silence, and is
        dropped (:meth:`changed`). Background rendered from the stream's own samples
        ends where they did, so what is appended plays right after it: kept.
        """
        if self._ready and (self._ready_stream is None or self._ready_stream[0] is not stream):
            self.changed()

    def mix(self, voice: Block, voice_active: bool, voice_peak: int = UNKNOWN_PEAK) -> Block:
        """The voice block with every layer added: int16, same shape ``(n, channels)``.

        Args:
            voice: int16, shape ``(n, channels)``; not modified.
            voice_active: whether the voice is playing in this frame (drives ducking).
            voice_peak: an upper bound of ``abs(voice)``; when it and the background's
                peak cannot overflow s16 together, the frame is one int16 add.

        ``n`` must be the same on every call (the track's frame).
        """
        if voice_active is not self._voice_active:
            self.changed()
            self._voice_active = voice_active
            target = self.duck_gain if voice_active else 1.0
            full = self.attack_samples if voice_active else self.release_samples
            distance = abs(target - self.duck.value) / (1.0 - self.duck_gain) if self.duck_gain < 1.0 else 0.0
            self.duck.set(target, math.ceil(distance * full))
        ready = self._ready
        if not ready and self.ahead_frames > 1:
            self._render_ahead(len(voice), voice.shape[1])
        if ready:  # the steady state: the background is already rendered
            frame, peak = ready.pop()
            if voice_peak + peak <= 32767:
                return voice + frame  # cannot overflow: bit-identical to the float path
            return self._saturating_add(voice, frame)
        n = len(voice)
        duck = self.duck.next(n)
        acc, tmp = self._buffers(voice)
        acc.fill(0.0)
        added = False
        for layer in self.layers:
            block = layer.read(n)
            gain = layer.gain.value if layer.gain.steady else layer.gain.next(n)
            if layer._stopping or layer.finished:
                layer._after_frame()
                if layer.finished:
                    self.finished.append(layer)
            if block is None:
                continue
            if layer.ducked:
                gain = gain * duck
            if isinstance(gain, float) and len(block) == n:  # the common case: no allocation
                np.multiply(block, np.float32(gain), out=tmp)  # float32 math, as rendered ahead
                np.add(acc, tmp, out=acc)
            elif isinstance(gain, float):
                acc[: len(block)] += block * np.float32(gain)
            else:
                acc[: len(block)] += block * gain[: len(block), None]
            added = True
        if self.finished:
            self.layers = [layer for layer in self.layers if not layer.finished]
        if not added:
            return voice
        np.rint(acc, out=acc)
        np.add(acc, voice, out=acc)
        return self._to_s16(acc)

    def _render_ahead(self, n: int, channels: int) -> None:
        """Render up to ``ahead_frames`` frames of background at once, if nothing can change meanwhile.

        A streamed background is rendered as far as it is queued (whole frames, at least
        two): a producer that keeps only a few frames ahead still gets blocks, not the
        per-frame path.
        """
        if not self.layers or not self.duck.steady:
            return
        count = self.ahead_frames
        stream: StreamLayer | None = None
        for layer in self.layers:
            if not layer.gain.steady or layer._stopping or layer.finished:
                return
            if isinstance(layer, ClipLayer) and not layer.loop:
                return  # a one-shot: its handle must resolve when it is heard, not rendered
            if isinstance(layer, StreamLayer) and len(layer.queue):  # an empty stream adds silence
                if stream is not None:
                    return
                stream = layer
                count = min(count, len(layer.queue) // n)
        if count < 2:
            return
        total = n * count
        if self._bg.shape != (n * self.ahead_frames, channels):
            self._bg = np.empty((n * self.ahead_frames, channels), np.float32)
            self._bg_tmp = np.zeros((0, 0), np.float32)  # made when a second layer needs it
            self._bg16 = np.empty((n * self.ahead_frames, channels), np.int16)
            self._bg16_frames = list(self._bg16.reshape(self.ahead_frames, n, channels))
        bg = self._bg[:total]
        first = True  # the first layer writes bg, the others add onto it
        consumed: list[Block] = []
        bound = 0.0  # of abs(bg) before rounding: the layers' peaks under their gains
        for layer in self.layers:
            pieces = layer.pieces(total)  # all ``total`` samples: loops wrap, the stream holds enough
            if not pieces:
                continue
            if layer is stream:
                consumed = pieces
            # One multiply per layer: numpy's per-call cost (its casting iterator) outweighs
            # the copy once a layer comes in more than one piece (a looped short clip, or a
            # stream pushed in 100 ms chunks, ten per render).
            block = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
            gain = np.float32(layer.gain.value * (self.duck.value if layer.ducked else 1.0))
            bound += layer.read_peak * float(gain)
            end = len(block)
            if first:
                np.multiply(block, gain, out=bg[:end])
                if end < total:
                    bg[end:] = 0.0
                first = False
            else:
                tmp = self._sum_buffer()[:end]
                np.multiply(block, gain, out=tmp)
                np.add(bg[:end], tmp, out=bg[:end])
        if first:
            bg.fill(0.0)
        # Rounding the sum moves it by at most 0.5, float32 products by far less than 1.
        peak = math.floor(bound) + 2
        frames: list[Block] | list[Wide] = self._bg16_frames[:count]
        if peak <= 32767:  # the common case: rounded straight to s16, one pass
            np.rint(bg, out=self._bg16[:total], casting="unsafe")
            peaks = [peak] * count
        else:  # the bound is loose (or unknown): take the exact peaks of each frame
            np.rint(bg, out=bg)
            per_frame = bg.reshape(count, -1)
            tops = np.maximum.reduce(per_frame, axis=1)
            bottoms = np.minimum.reduce(per_frame, axis=1)
            peaks = np.maximum(tops, -bottoms).astype(np.int64).tolist()
            if max(peaks) <= 32767:
                np.copyto(self._bg16[:total], bg, casting="unsafe")
            else:  # the background alone exceeds s16: kept in int32, every frame clipped
                frames = list(bg.astype(np.int32).reshape(count, n, channels))
        self._ready.extend(zip(reversed(frames), reversed(peaks), strict=True))
        self._frame_n = n
        self._ready_stream = (stream, consumed) if stream is not None and consumed else None

    def _sum_buffer(self) -> Floats:
        """The scratch buffer of :meth:`_render_ahead` for a layer added onto another (``_bg``'s shape)."""
        if self._bg_tmp.shape != self._bg.shape:
            self._bg_tmp = np.empty(self._bg.shape, np.float32)
        return self._bg_tmp

    def _buffers(self, voice: Block) -> tuple[Floats, Floats]:
        if self._acc.shape != voice.shape:
            self._acc = np.empty(voice.shape, np.float32)
            self._tmp = np.empty(voice.shape, np.float32)
        return self._acc, self._tmp

    def _saturating_add(self, voice: Block, background: Block | Wide) -> Block:
        """``voice + background`` clipped to s16, summed in int32: the float path's result, at half its cost."""
        wide = self._wide
        if wide.shape != voice.shape:
            wide = self._wide = np.empty(voice.shape, np.int32)
        np.add(voice, background, out=wide, dtype=np.int32)
        np.minimum(wide, 32767, out=wide)
        np.maximum(wide, -32768, out=wide)
        return wide.astype(np.int16)

    @staticmethod
    def _to_s16(acc: Floats) -> Block:
        flat = acc.reshape(-1)
        if np.maximum.reduce(flat) > 32767.0 or np.minimum.reduce(flat) < -32768.0:  # saturate, never wrap
            np.clip(acc, -32768.0, 32767.0, out=acc)
        return acc.astype(np.int16)
