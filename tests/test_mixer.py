"""The background mixer core (agent_audio._mixer).

Guards: gain ramps are linear, exactly as long as asked and end exactly on the target;
a looped clip plays back to back with no gap or repeat (also clips shorter than a
frame); a one-shot plays once and finishes; ducking reaches its depth in exactly the
attack time and comes back in the release time; a loud voice over a loud background
clips instead of wrapping; the stream layer plays what was queued, then silence; and
rendering the background ahead gives sample-identical output to mixing frame by frame,
under any sequence of voice activity, volume changes, one-shots, stops and stream pushes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_audio._mixer import BackgroundMixer, ClipLayer, SmoothGain, StreamLayer

from helpers import ramp_signal

N = 960


def test_smooth_gain_ramps_exactly() -> None:
    g = SmoothGain(1.0)
    assert g.next(4) == 1.0 and g.steady
    g.set(0.0, 10)
    first = g.next(4)
    assert isinstance(first, np.ndarray) and first.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6])
    second = g.next(8)
    assert isinstance(second, np.ndarray)
    assert second.tolist() == pytest.approx([0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0], abs=1e-6)
    assert second[5] == 0.0 and g.steady and g.next(3) == 0.0


@pytest.mark.parametrize("size", [300, 960, 2500])
def test_looped_clip_plays_back_to_back(size: int) -> None:
    clip = ramp_signal(size)
    layer = ClipLayer(clip, loop=True, volume=1.0, ducked=False)
    out = np.concatenate([layer.read(N) for _ in range(7)])
    assert np.array_equal(out, np.resize(clip, (7 * N, 1)))
    assert not layer.finished


def test_one_shot_plays_once_then_finishes() -> None:
    layer = ClipLayer(ramp_signal(1500), loop=False, volume=1.0, ducked=False)
    a, b = layer.read(N), layer.read(N)
    assert a is not None and b is not None and len(a) + len(b) == 1500 and layer.finished
    assert layer.read(N) is None


def _mix_frames(mixer: BackgroundMixer, frames: int, *, active: bool) -> np.ndarray:
    silence = np.zeros((N, 1), np.int16)
    return np.concatenate([mixer.mix(silence, voice_active=active) for _ in range(frames)])


def test_ducking_follows_attack_and_release_times() -> None:
    mixer = BackgroundMixer(duck_db=-10.0, attack_samples=1440, release_samples=4320)
    mixer.layers.append(ClipLayer(np.full((N, 1), 10000, np.int16), loop=True, volume=1.0, ducked=True))
    ducked = 10000 * 10 ** (-10 / 20)
    attack = _mix_frames(mixer, 3, active=True)[:, 0]
    assert attack[1439] == round(ducked) and attack[1438] > round(ducked)  # reached exactly at 30 ms
    assert np.all(np.diff(attack[:1440]) <= 0) and np.all(attack[1440:] == round(ducked))
    release = _mix_frames(mixer, 6, active=False)[:, 0]
    assert release[4319] == 10000 and release[4318] < 10000  # back exactly at 90 ms
    assert np.all(np.diff(release[:4320]) >= 0)


def test_one_shots_are_not_ducked() -> None:
    mixer = BackgroundMixer(duck_db=-10.0, attack_samples=0, release_samples=0)
    mixer.layers.append(ClipLayer(np.full((N, 1), 1000, np.int16), loop=False, volume=1.0, ducked=False))
    assert np.all(_mix_frames(mixer, 1, active=True) == 1000)


def test_loud_voice_over_loud_background_clips_instead_of_wrapping() -> None:
    mixer = BackgroundMixer(duck_db=0.0, attack_samples=0, release_samples=0)
    mixer.layers.append(ClipLayer(np.full((N, 1), 30000, np.int16), loop=True, volume=1.0, ducked=True))
    loud = np.full((N, 1), 30000, np.int16)
    out = mixer.mix(loud, voice_active=True)
    assert np.all(out == 32767)
    assert np.all(mixer.mix(-loud, voice_active=True) == 0)
    mixer.changed()  # the contract for changing the layers behind the mixer's back
    mixer.layers[0] = ClipLayer(np.full((N, 1), -30000, np.int16), loop=True, volume=1.0, ducked=True)
    assert np.all(mixer.mix(-loud, voice_active=True) == -32768)
    quiet = np.full((N, 1), 2000, np.int16)
    assert np.all(mixer.mix(quiet, voice_active=True, voice_peak=2000) == -28000)  # no clipping when none is due
    assert np.array_equal(loud, np.full((N, 1), 30000, np.int16))  # the voice block is not modified


@pytest.mark.parametrize("ahead", [0, 50])
def test_a_background_louder_than_s16_alone_is_summed_before_clipping(ahead: int) -> None:
    mixer = BackgroundMixer(duck_db=0.0, attack_samples=0, release_samples=0, ahead_frames=ahead)
    mixer.layers.append(ClipLayer(np.full((N, 1), 30000, np.int16), loop=True, volume=2.0, ducked=True))
    quiet = np.full((N, 1), -30000, np.int16)  # 60000 - 30000: in range only if summed before clipping
    outs = [mixer.mix(quiet if i % 2 else -quiet, voice_active=True, voice_peak=30000) for i in range(60)]
    assert all(np.all(out == (30000 if i % 2 else 32767)) for i, out in enumerate(outs))


def test_layers_loud_at_different_times_still_take_the_int16_add() -> None:
    half = np.zeros((25 * N, 1), np.int16)
    first, second = half.copy(), half.copy()
    first[: 12 * N], second[12 * N :] = 20000, 20000  # the peaks' bound (40000) exceeds s16, their sum never does
    mixer = BackgroundMixer(duck_db=0.0, attack_samples=0, release_samples=0, ahead_frames=50)
    for clip in (first, second):
        mixer.layers.append(ClipLayer(clip, loop=True, volume=1.0, ducked=True))
    voice = np.full((N, 1), 10000, np.int16)
    outs = [mixer.mix(voice, voice_active=True, voice_peak=10000) for _ in range(60)]
    assert all(np.all(out == 30000) for out in outs)


def test_stream_layer_plays_queued_audio_then_silence() -> None:
    mixer = BackgroundMixer(duck_db=0.0, attack_samples=0, release_samples=0)
    stream = StreamLayer(volume=0.5, ducked=True)
    mixer.layers.append(stream)
    stream.queue.append(0, ramp_signal(1500, start=2))
    out = _mix_frames(mixer, 3, active=False)[:, 0]
    assert np.array_equal(out[:1500], np.rint(ramp_signal(1500, start=2)[:, 0] * 0.5).astype(np.int16))
    assert not out[1500:].any()


def test_stop_fades_out_then_reports_finished() -> None:
    mixer = BackgroundMixer(duck_db=0.0, attack_samples=0, release_samples=0)
    layer = ClipLayer(np.full((N, 1), 1000, np.int16), loop=True, volume=1.0, ducked=True)
    mixer.layers.append(layer)
    layer.stop(1200)
    out = _mix_frames(mixer, 3, active=False)[:, 0]
    assert out[0] == 999 and out[1199] == 0 and not out[1200:].any()
    assert mixer.finished == [layer] and mixer.layers == []


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("frames"), st.integers(1, 60), st.booleans()),
        st.tuples(st.just("volume"), st.sampled_from([0.0, 0.3, 1.0, 1.5, 5.0])),  # 5.0: beyond s16 alone
        st.tuples(st.just("sound"), st.integers(10, 3000)),
        st.tuples(st.just("stop"), st.integers(0, 3)),
        st.tuples(st.just("stream"), st.integers(100, 40000)),
        st.tuples(st.just("stream"), st.integers(100, 3000)),  # a producer a few frames ahead
    ),
    max_size=25,
)


def _apply(mixer: BackgroundMixer, op: tuple[object, ...], rng: np.random.Generator, out: list[np.ndarray]) -> None:
    kind = op[0]
    if kind == "frames":
        frames, active = op[1], op[2]
        assert isinstance(frames, int) and isinstance(active, bool)
        for _ in range(frames):
            loud = rng.random() < 0.3  # sometimes loud enough that the sum must clip
            voice = rng.integers(-32768 if loud else -20000, 32767 if loud else 20000, size=(N, 1)).astype(np.int16)
            peak = max(int(voice.max()), -int(voice.min()))
            out.append(mixer.mix(voice, voice_active=active, voice_peak=peak + int(rng.integers(0, 3))))
        return
    if kind == "stream":  # as push_background does: no rewind unless the stream ran dry
        stream = mixer.layers[1]
        assert isinstance(stream, StreamLayer)
        if not len(stream.queue):
            mixer.refilling(stream)
        stream.append(ramp_signal(int(op[1]), start=9))  # type: ignore[call-overload]
        return
    mixer.changed()
    if kind == "volume":
        mixer.layers[0].gain.set(float(op[1]), 480)  # type: ignore[arg-type]
    elif kind == "sound":
        mixer.layers.append(ClipLayer(ramp_signal(int(op[1])), loop=False, volume=0.7, ducked=False))  # type: ignore[call-overload]
    elif kind == "stop" and len(mixer.layers) > int(op[1]) + 2:  # type: ignore[call-overload]
        mixer.layers[int(op[1]) + 2].stop(960)  # type: ignore[call-overload]


@settings(max_examples=60, deadline=None)
@given(ops=OPS, seed=st.integers(0, 1000))
def test_rendering_ahead_is_sample_identical_to_mixing_frame_by_frame(ops: list[tuple[object, ...]], seed: int) -> None:
    outputs = []
    for ahead in (0, 7, 50):  # frame by frame, a short block, the default block
        mixer = BackgroundMixer(duck_db=-10.0, attack_samples=1440, release_samples=4320, ahead_frames=ahead)
        mixer.layers.append(ClipLayer(ramp_signal(7000, start=3), loop=True, volume=0.8, ducked=True))
        stream = StreamLayer(volume=0.5, ducked=True)
        stream.append(ramp_signal(20000, start=5))
        mixer.layers.append(stream)
        rng = np.random.default_rng(seed)
        out: list[np.ndarray] = []
        for op in ops:
            _apply(mixer, op, rng, out)
        for _ in range(40):
            out.append(mixer.mix(np.zeros((N, 1), np.int16), voice_active=False))
        outputs.append(np.concatenate(out))
    assert np.array_equal(outputs[0], outputs[1])
    assert np.array_equal(outputs[0], outputs[2])
