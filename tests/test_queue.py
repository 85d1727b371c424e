"""The turn-tagged sample queue (agent_audio._queue).

Guards: FIFO order across chunk boundaries; per-turn counts always equal what the
chunks hold; reads return views (no copy of queued audio); truncate keeps exactly the
head and reports exactly what it dropped, per turn; queued chunks are not left for the
garbage collector to walk.
"""

from __future__ import annotations

import gc

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agent_audio._queue import COALESCE_BELOW, UNKNOWN_PEAK, SampleQueue, block_peaks

from helpers import ramp_signal


def _held(q: SampleQueue) -> dict[int, int]:
    """Per-turn counts recomputed from the chunks themselves."""
    counts: dict[int, int] = {}
    head = q._head
    for turn_id, chunk, _ in q._chunks:
        counts[turn_id] = counts.get(turn_id, 0) + len(chunk) - head
        head = 0
    return counts


@given(
    chunks=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 700)), max_size=12),
    reads=st.lists(st.integers(0, 900), max_size=12),
)
def test_reads_return_everything_in_order_with_turn_tags(chunks: list[tuple[int, int]], reads: list[int]) -> None:
    q = SampleQueue()
    signal = ramp_signal(sum(n for _, n in chunks))
    tags = np.concatenate([np.full(n, t) for t, n in chunks]) if chunks else np.zeros(0, int)
    pos = 0
    for turn_id, n in chunks:
        q.append(turn_id, signal[pos : pos + n])
        pos += n
    got, got_tags = [], []
    for n in [*reads, len(q)]:
        before = len(q)
        pieces = q.read(n)
        assert sum(len(b) for _, b in pieces) == min(n, before)
        for turn_id, block in pieces:
            got.append(block)
            got_tags.append(np.full(len(block), turn_id))
        assert {t: c for t, c in _held(q).items() if c} == q._per_turn
    assert len(q) == 0
    if chunks:
        assert np.array_equal(np.concatenate(got), signal)
        assert np.array_equal(np.concatenate(got_tags), tags)


def test_read_returns_views_not_copies() -> None:
    q = SampleQueue()
    chunk = ramp_signal(COALESCE_BELOW)
    q.append(1, chunk)
    ((turn_id, block),) = q.read(960)
    assert turn_id == 1
    assert np.shares_memory(block, chunk)


def test_small_appends_of_one_turn_share_a_chunk_and_never_change_what_was_read() -> None:
    q = SampleQueue()
    pieces = [ramp_signal(480, start=i * 480) for i in range(30)]  # 20 ms pieces at 24 kHz
    for piece in pieces[:10]:
        q.append(1, piece, measure=True)
    first = q.take(960)
    assert first is not None
    held = first[1].copy()
    for piece in pieces[10:20]:
        q.append(1, piece, measure=True)
    q.append(2, pieces[20], measure=True)  # another turn: a chunk of its own
    assert len(q._chunks) == 2 and q.queued_for(1) == 19 * 480 - 960 + 480
    assert np.array_equal(first[1], held)  # the view handed out is never written to
    for piece in pieces[21:]:
        q.append(2, piece, measure=True)
    got = np.concatenate([block for _, block in q.read(len(q))])
    assert np.array_equal(got, np.concatenate(pieces)[960:])
    assert int(np.abs(got.astype(np.int32)).max()) <= q.read_peak < UNKNOWN_PEAK


@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12), frame=st.sampled_from([160, 480, 960]))
def test_measured_peaks_bound_every_frame_of_coalesced_chunks(sizes: list[int], frame: int) -> None:
    rng = np.random.default_rng(len(sizes) * frame)
    q = SampleQueue()
    for size in sizes:
        amplitude = int(rng.integers(1, 32768))
        q.append(1, rng.integers(-amplitude, amplitude, size=(size, 1)).astype(np.int16), measure=True)
    while len(q):
        taken = q.take(frame)
        if taken is not None:
            view, peak = taken[1], taken[2]
        else:
            view, peak = np.concatenate([block for _, block in q.read(frame)]), q.read_peak
        assert int(np.abs(view.astype(np.int32)).max()) <= peak < UNKNOWN_PEAK


@given(
    chunks=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 700)), min_size=1, max_size=10),
    first_read=st.integers(0, 500),
    keep=st.integers(0, 3000),
)
def test_truncate_keeps_head_and_counts_drops(chunks: list[tuple[int, int]], first_read: int, keep: int) -> None:
    q = SampleQueue()
    signal = ramp_signal(sum(n for _, n in chunks))
    pos = 0
    for turn_id, n in chunks:
        q.append(turn_id, signal[pos : pos + n])
        pos += n
    q.read(first_read)
    before = dict(q._per_turn)
    total = len(q)
    head = q._head
    dropped, garbage = q.truncate(keep)
    assert len(q) == min(keep, total)
    # The garbage holds whole dropped chunks: the first may include samples already read
    # (head), and a partly kept chunk's dropped tail stays with the kept view instead.
    assert sum(len(chunk) for _, chunk, _ in garbage) <= sum(dropped.values()) + head
    assert sum(dropped.values()) == total - len(q)
    for turn_id, count in before.items():
        assert q.queued_for(turn_id) + dropped.get(turn_id, 0) == count
    assert {t: c for t, c in _held(q).items() if c} == q._per_turn
    rest = q.read(len(q))
    start = min(first_read, len(signal))
    if rest:
        assert np.array_equal(
            np.concatenate([b for _, b in rest]), signal[start : start + len(q) + sum(len(b) for _, b in rest)]
        )


def test_take_removes_a_whole_frame_from_the_head_chunk_only() -> None:
    q = SampleQueue()
    q.append(1, ramp_signal(1500))
    q.append(2, ramp_signal(500))
    taken = q.take(960)
    assert taken is not None and taken[0] == 1 and np.array_equal(taken[1], ramp_signal(960))
    assert q.take(960) is None  # only 540 left in the head chunk: nothing removed
    assert len(q) == 1040 and q.queued_for(1) == 540
    assert q.take(540) is not None and q.queued_for(1) == 0 and q.take(500) is not None and len(q) == 0
    assert q.take(1) is None


@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=6),
    frame=st.sampled_from([160, 480, 960, 1920]),
    seed=st.integers(0, 100),
)
def test_take_bounds_the_peak_of_every_frame_it_returns(sizes: list[int], frame: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = SampleQueue()
    for size in sizes:
        chunk = rng.integers(-32768, 32768, size=(size, 2)).astype(np.int16)
        chunk[rng.integers(0, size)] = 0  # vary the peaks
        q.append(1, chunk, block_peaks(chunk))
    while (taken := q.take(frame)) is not None:
        _, view, peak = taken
        true_peak = int(np.abs(view.astype(np.int32)).max())
        assert true_peak <= peak <= 32768
    q.read(len(q))


@given(
    sizes=st.lists(st.integers(COALESCE_BELOW, 5000), min_size=1, max_size=6),  # chunks of their own
    reads=st.lists(st.integers(1, 4000), min_size=1, max_size=8),
    seed=st.integers(0, 100),
)
def test_read_bounds_the_peak_of_what_it_returns(sizes: list[int], reads: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = SampleQueue()
    for size in sizes:
        # Every sample of a chunk has the same magnitude, different per chunk: the bound
        # must be exactly the loudest chunk a read touched, neither below nor above.
        amplitude = int(rng.integers(1, 32768))
        chunk = (amplitude * rng.choice([-1, 1], size=(size, 1))).astype(np.int16)
        q.append(1, chunk, block_peaks(chunk))
    for n in reads:
        pieces = q.read(n)
        if not pieces:
            assert q.read_peak == 0
            continue
        got = np.concatenate([block for _, block in pieces]).astype(np.int32)
        assert q.read_peak == int(np.abs(got).max())


def test_read_peak_is_unknown_for_chunks_without_block_peaks() -> None:
    q = SampleQueue()
    n = COALESCE_BELOW
    q.append(1, np.full((n, 1), 5, np.int16), block_peaks(np.full((n, 1), 5, np.int16)))
    q.append(1, np.full((n, 1), 7, np.int16))
    q.read(n)
    assert q.read_peak == 5
    q.read(50)
    assert q.read_peak == UNKNOWN_PEAK


def test_block_peaks() -> None:
    x = np.zeros((1000, 1), np.int16)
    x[10] = -32768
    x[600] = 7
    x[999] = -3
    assert block_peaks(x) == (32768, 7, 3)


def test_queued_chunks_leave_the_garbage_collectors_work() -> None:
    # A track holding a minute of audio must not add hundreds of objects to every full
    # collection: once seen, a chunk's (turn_id, samples, peaks) entry is untracked.
    q = SampleQueue()
    for _ in range(4):
        q.append(1, np.ones((4800, 1), np.int16), measure=True)
    for _ in range(30):
        q.append(1, np.ones((480, 1), np.int16), measure=True)  # coalesced
    gc.collect()  # untracks the peak tuples; the entries holding them go at the next pass
    gc.collect()
    assert not any(gc.is_tracked(entry) or gc.is_tracked(entry[2]) for entry in q._chunks)
