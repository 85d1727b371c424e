"""Truncation payloads and chat-text truncation (agent_audio.truncation).

Guards: ``audio_end_ms`` is the played duration rounded down, never more than was
pushed nor than the server's own audio length (pipecat 2106's overshoot); nothing
(or under 1 ms) played gives a delete event, never ``audio_end_ms=0`` (livekit/agents
6157); chat text keeps the reply's own spelling up to the last heard word.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_audio import InvalidAudioError, TurnStats
from agent_audio._words import WordTimeline
from agent_audio.truncation import realtime_truncate, truncate_text


def stats(played: int, pushed: int, rate: int = 48000) -> TurnStats:
    return TurnStats(1, rate, pushed, played, pushed - played, 0, True, True, 0.1)


def test_truncate_payload_is_played_ms_rounded_down() -> None:
    s = stats(played=64321, pushed=96000)  # 1340.0208 ms
    event = realtime_truncate("item_1", 0, s)
    assert event == {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 1340,
    }
    assert event["audio_end_ms"] == math.floor(s.played_ms)


@given(played=st.integers(0, 10**7), pushed=st.integers(0, 10**7), rate=st.sampled_from([8000, 24000, 44100, 48000]))
def test_audio_end_ms_never_exceeds_what_played_or_was_pushed(played: int, pushed: int, rate: int) -> None:
    event = realtime_truncate("i", 0, stats(played, pushed, rate))
    if event["type"] == "conversation.item.truncate":
        end = int(event["audio_end_ms"])
        assert 1 <= end <= min(played, pushed) * 1000 / rate
        assert end == math.floor(min(played, pushed) * 1000 / rate)
    else:
        assert min(played, pushed) * 1000 < rate  # under 1 ms


def test_the_server_audio_length_caps_the_payload() -> None:
    event = realtime_truncate("i", 0, stats(48000, 48000), audio_ms=999)
    assert event["audio_end_ms"] == 999


def test_nothing_played_means_delete_the_item() -> None:
    assert realtime_truncate("item_1", 0, stats(0, 48000)) == {"type": "conversation.item.delete", "item_id": "item_1"}
    assert realtime_truncate("item_1", 0, stats(47, 48000))["type"] == "conversation.item.delete"  # under 1 ms
    with pytest.raises(InvalidAudioError, match="expected content_index"):
        realtime_truncate("item_1", -1, stats(0, 48000))


def test_chat_text_keeps_the_reply_spelling_up_to_the_last_heard_word() -> None:
    t = WordTimeline(48000)
    t.add(0, 48000, words=[("Hello", 0.0, 0.2), ("there", 0.2, 0.5), ("how", 0.5, 0.7), ("are", 0.7, 1.0)])
    reply = "Hello there, how are you?"
    assert truncate_text(reply, t.heard(25000, full_level_end=25000), marker="...") == "Hello there,..."
    assert truncate_text(reply, t.heard(0)) == ""
    assert truncate_text("Hello there, how are", t.heard(48000)) == "Hello there, how are"
    t.add(48000, 9600, words=[("you", 0.0, 0.2)])
    assert truncate_text(reply, t.heard(57600), marker="...") == reply
    # A heard word that the text does not contain (TTS normalisation): the heard text itself.
    assert truncate_text("Hi there", t.heard(9600)) == "Hello"
