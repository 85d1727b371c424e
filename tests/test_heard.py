"""Words through the track: heard text per turn, captions, truncation (issue 17).

Guards: words pushed with timings at 24 kHz land at exact 48 kHz offsets; after an
interrupt the heard words are exactly those that played entirely at full level, the
partial word and its fraction are right, and ``realtime_truncate`` gives
``floor(played_ms)``; pause/resume changes nothing; an interrupt before the first
frame hears nothing; words pushed after the interrupt are dropped; ``text=`` is
estimated and stays inside its push; ``word_played`` comes once per word, in order;
encoded streams place words from the first decoded sample; bad words change nothing.
"""

from __future__ import annotations

import asyncio

import pytest

from agent_audio import AgentAudioTrack, InvalidAudioError, WordPlayed
from agent_audio.testing import ManualClock
from agent_audio.truncation import realtime_truncate

from helpers import encoded_speech, receive, tone

N = 960  # 20 ms at 48 kHz
# Ten 100 ms words back to back in a 1 s push at 24 kHz.
WORDS = [(f"w{i}", i * 0.1, (i + 1) * 0.1) for i in range(10)]


def words_of(text: str) -> list[str]:
    return text.split()


async def test_interrupt_hears_exactly_the_words_played_at_full_level() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(tone(1.0, 24000), sample_rate=24000, words=WORDS)
    await receive(track, 13)  # 260 ms at full level: w0, w1 whole, 60 % of w2
    track.interrupt()
    turn.end()
    await receive(track, 12)  # the 200 ms fade
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert [w.text for w in stats.heard_words] == ["w0", "w1"]
    assert stats.heard_words[1].start_ms == pytest.approx(100.0) and stats.heard_words[1].end_ms == pytest.approx(200.0)
    assert stats.partial_word is not None and stats.partial_word.word.text == "w2"
    assert stats.partial_word.fraction == pytest.approx(0.6)  # 60 of 100 ms, to the sample
    assert stats.heard_text == "w0 w1 w2"  # >= 20 % of the cut word was heard
    assert stats.played_samples == 13 * N + round(0.2 * 48000)  # the fade tail counts as played, not as heard
    payload = realtime_truncate("item_1", 0, stats)
    assert payload["audio_end_ms"] == stats.played_samples * 1000 // 48000
    track.stop()


async def test_a_word_barely_started_at_the_cut_is_not_heard() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(tone(1.0, 24000), sample_rate=24000, words=WORDS)
    await receive(track, 16)  # 320 ms: 20 ms of w3 = 20 % ... one frame less is 0 %
    track.interrupt()
    stats = turn.stats
    assert stats.partial_word is not None and stats.partial_word.fraction == pytest.approx(0.2)
    assert stats.heard_text == "w0 w1 w2 w3"
    track.stop()
    other = AgentAudioTrack(clock=ManualClock())
    turn = other.start_turn()
    await turn.push(tone(1.0, 24000), sample_rate=24000, words=WORDS)
    await receive(other, 15)  # 300 ms: w3 not started
    other.interrupt()
    assert other.current_turn is not None and other.current_turn.stats.heard_text == "w0 w1 w2"
    assert other.current_turn.stats.partial_word is None
    other.stop()


async def test_pause_and_resume_do_not_change_the_heard_text() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(tone(1.0, 24000), sample_rate=24000, words=WORDS)
    turn.end()
    await receive(track, 10)
    track.pause()
    await receive(track, 20)
    track.resume()
    await receive(track, 45)
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert stats.heard_text == " ".join(w for w, _, _ in WORDS)
    assert stats.partial_word is None
    track.stop()


async def test_interrupt_before_the_first_frame_hears_nothing_and_later_words_are_dropped() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(tone(0.5, 24000), sample_rate=24000, words=WORDS[:5])
    track.interrupt()
    await turn.push(tone(0.5, 24000), sample_rate=24000, words=WORDS[:5])  # a stale TTS task
    turn.end()
    await receive(track, 3)
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert stats.played_samples == 0 and stats.heard_text == "" and stats.heard_words == ()
    assert realtime_truncate("item_1", 0, stats) == {"type": "conversation.item.delete", "item_id": "item_1"}
    track.stop()


async def test_text_without_timings_is_estimated_and_stays_inside_its_push() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(tone(0.4, 24000), sample_rate=24000, text="hello there")
    await turn.push(tone(0.6, 24000), sample_rate=24000, text="general kenobi")
    turn.end()
    await receive(track, 52)
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert words_of(stats.heard_text) == ["hello", "there", "general", "kenobi"]
    assert all(w.estimated for w in stats.heard_words)
    assert stats.heard_words[1].end_ms <= 400.0 + 1e-6  # the first push's words stay in its 400 ms
    assert stats.heard_words[2].start_ms >= 400.0 - 1e-6
    assert stats.heard_words[3].end_ms == pytest.approx(1000.0)
    track.stop()


async def test_word_played_events_come_once_per_word_in_order() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    seen: list[WordPlayed] = []
    track.on("word_played", seen.append)
    turn = track.start_turn()
    await turn.push(tone(1.0, 24000), sample_rate=24000, words=WORDS)
    turn.end()
    await receive(track, 25)  # 500 ms
    await asyncio.sleep(0)
    assert [e.text for e in seen] == ["w0", "w1", "w2", "w3", "w4"]
    assert all(e.turn_id == turn.id for e in seen) and seen[3].start_ms == pytest.approx(300.0)
    await receive(track, 30)
    await asyncio.sleep(0)
    assert [e.index for e in seen] == list(range(10))
    track.stop()


async def test_bad_words_are_refused_and_change_nothing() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    with pytest.raises(InvalidAudioError, match="expected exactly one of words= or text="):
        await turn.push(tone(0.1, 24000), sample_rate=24000, words=WORDS, text="both")
    with pytest.raises(InvalidAudioError):
        await turn.push(tone(0.1, 24000), sample_rate=24000, words=[("a", 0.2, 0.1)])  # ends before it starts
    with pytest.raises(InvalidAudioError):
        await track.push(tone(0.1, 24000), sample_rate=24000, words=[("a", -1.0, 0.1)])
    assert turn.stats.pushed_samples == 0
    await turn.push(tone(0.2, 24000), sample_rate=24000, words=WORDS[:2])
    turn.end()
    await receive(track, 11)
    assert (await asyncio.wait_for(turn.wait_for_playout(), 1)).heard_text == "w0 w1"
    track.stop()


async def test_words_follow_earlier_pushes_at_another_rate() -> None:
    """Offsets count what earlier pushes will amount to, the resampler's held-back tail included."""
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(tone(0.3, 16000), sample_rate=16000)
    await turn.push(tone(0.2, 24000), sample_rate=24000, words=[("late", 0.0, 0.2)])
    turn.end()
    await receive(track, 26)
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert stats.heard_words[0].start_ms == pytest.approx(300.0) and stats.heard_words[0].end_ms == pytest.approx(500.0)
    assert stats.pushed_samples == round(0.5 * 48000)
    track.stop()


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
async def test_encoded_stream_words_count_from_the_first_decoded_sample(fmt: str) -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    await turn.push(tone(0.5, 48000))  # 500 ms of PCM first: the stream's words start after it
    data = encoded_speech("mp3" if fmt == "mp3" else "opus")
    words = [("one", 0.0, 1.0), ("two", 1.0, 2.0), ("three", 2.0, 3.0)]
    await turn.push_encoded(data[:1000], format=fmt, words=words)
    for start in range(1000, len(data), 1000):
        await turn.push_encoded(data[start : start + 1000], format=fmt)
    turn.end()
    for _ in range(400):
        if not turn.decoding:
            break
        await asyncio.sleep(0.005)
    assert not turn.decoding
    await receive(track, 200)
    stats = await asyncio.wait_for(turn.wait_for_playout(), 1)
    assert [w.text for w in stats.heard_words] == ["one", "two", "three"]
    assert stats.heard_words[0].start_ms == pytest.approx(500.0)
    assert stats.heard_words[2].end_ms == pytest.approx(3500.0, abs=1.0)
    track.stop()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"words": [("a", "x", 1.0)]},
        {"words": 5},
        {"words": "a b"},
        {"words": [("a", 0.0)]},
        {"words": [(1, 0.0, 0.1)]},
        {"words": [("a", True, 0.1)]},
        {"text": 5},
    ],
)
async def test_malformed_words_are_invalid_audio_errors(kwargs: dict[str, object]) -> None:
    track = AgentAudioTrack(clock=ManualClock())
    turn = track.start_turn()
    with pytest.raises(InvalidAudioError, match="expected"):
        await turn.push(tone(0.1, 24000), sample_rate=24000, **kwargs)  # type: ignore[arg-type]
    assert turn.stats.pushed_samples == 0
    track.stop()
