"""Threaded producers and bounded look-ahead (push_threadsafe, max_queued).

Guards: pushes from several threads arrive in per-producer order; push_threadsafe
needs a loop and reports push errors through its future; with max_queued, push waits
while the queue is full, resumes as frames are handed out, and returns at once on
interrupt with the rest dropped and counted.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from agent_audio import AgentAudioTrack, InvalidAudioError
from agent_audio.testing import ManualClock

from helpers import receive

RATE = 48000


async def test_pushes_from_several_threads_keep_per_producer_order() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    producers, chunks, size = 4, 60, 48

    def produce(producer: int) -> None:
        futures = [track.push_threadsafe(np.full(size, producer * 1000 + seq + 1, np.int16)) for seq in range(chunks)]
        for future in futures:
            future.result(timeout=20)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    total = producers * chunks * size
    assert track.metrics().queued_samples == total
    played = (await receive(track, total // track.frame_samples))[:, 0]
    values = played[::size]  # one value per chunk
    assert np.all(played.reshape(-1, size) == values[:, None])  # chunks were not split or mixed
    for producer in range(producers):
        seqs = [int(v) % 1000 for v in values if int(v) // 1000 == producer]
        assert seqs == list(range(1, chunks + 1)), producer
    track.stop()


async def test_push_threadsafe_reports_errors_and_encoded_pushes() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())
    future = await asyncio.to_thread(track.push_threadsafe, np.zeros(10, np.uint8))
    with pytest.raises(InvalidAudioError, match="expected"):
        await asyncio.wrap_future(future)
    pcm = np.full(960, 5, np.int16).tobytes()
    future = await asyncio.to_thread(track.push_threadsafe, pcm, format="pcm_s16le", sample_rate=RATE)
    await asyncio.wrap_future(future)
    track.end_turn()
    while track.metrics().queued_samples < 960:  # noqa: ASYNC110 - decoded on a worker thread
        await asyncio.sleep(0.002)
    with pytest.raises(InvalidAudioError, match="expected encoded bytes"):
        track.push_threadsafe(np.zeros(4, np.int16), format="mp3")
    track.stop()


def test_push_threadsafe_needs_a_loop() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock())  # created outside any loop
    with pytest.raises(RuntimeError, match="running event loop"):
        track.push_threadsafe(np.zeros(960, np.int16))


async def test_max_queued_blocks_push_and_releases_as_frames_go_out() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock(), max_queued=0.5)
    task = asyncio.ensure_future(track.push(np.ones(3 * RATE, np.int16)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    queued = track.metrics().queued_samples
    assert RATE // 2 <= queued <= RATE // 2 + RATE // 4  # the limit, plus at most one 0.25 s slice
    await receive(track, 25)  # 0.5 s out: room for the rest, slice by slice
    while not task.done():
        await receive(track, 5)
    await task
    turn = track.current_turn
    assert turn is not None and turn.stats.pushed_samples == 3 * RATE
    track.stop()


async def test_max_queued_push_returns_at_once_on_interrupt_and_counts_the_rest() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock(), max_queued=0.5, fade_out=0.0)
    task = asyncio.ensure_future(track.push(np.ones(5 * RATE, np.int16)))
    for _ in range(20):
        await asyncio.sleep(0)
    await receive(track, 3)
    track.interrupt()
    await asyncio.wait_for(task, 5)
    turn = track.current_turn
    assert turn is not None
    s = turn.stats
    assert s.interrupted
    assert s.pushed_samples == 5 * RATE  # everything the push held is accounted for
    assert s.pushed_samples == s.played_samples + s.dropped_samples + s.queued_samples
    assert s.played_samples == 3 * 960
    track.stop()


async def test_max_queued_applies_to_encoded_streams() -> None:
    track = AgentAudioTrack(sample_rate=RATE, clock=ManualClock(), max_queued=0.2)
    await track.push(np.ones(RATE // 4, np.int16))  # one 0.25 s slice: queued without waiting
    task = asyncio.ensure_future(track.push_encoded(b"\x01\x00" * 960, format="pcm_s16le", sample_rate=RATE))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    await receive(track, 16)
    await asyncio.wait_for(task, 5)
    track.stop()


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "1", True, float("inf")])
def test_max_queued_must_be_positive_seconds(value: object) -> None:
    with pytest.raises(InvalidAudioError, match=r"expected max_queued (as a number )?> 0 and <= 3600 seconds or None"):
        AgentAudioTrack(max_queued=value)  # type: ignore[arg-type]
