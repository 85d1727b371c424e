"""Cut an agent's history to what the listener heard: LLM truncation events and chat text.

After a barge-in the model's context still holds the whole reply, most of which the
user never heard. These helpers turn a turn's exact account (:class:`TurnStats`)
and its heard words (:class:`HeardText`) into what an LLM API accepts.

Where the rules come from:

* OpenAI Realtime's ``conversation.item.truncate`` client event: ``audio_end_ms`` is
  the "inclusive duration up to which audio is truncated, in milliseconds. If the
  audio_end_ms is greater than the actual audio duration, the server will respond
  with an error", and truncating "will delete the server-side text transcript to
  ensure there is not text in the context that hasn't been heard by the user"
  (OpenAI API reference). So the value is an integer, rounded *down*, and never
  above what was sent: pipecat issue 2106 shows a steady 85 ms overshoot (time
  counted on the wall clock instead of audio played) answered with
  ``invalid_request_error``; openai-agents-python issue 2370 shows truncation
  computed from arrival time instead of playback.
* Nothing heard: livekit/agents issue 6157 shows ``audio_end_ms=0`` rejected, and a
  reply the user heard nothing of should not stay in the context at all, so the
  helper returns a ``conversation.item.delete`` event instead (same ``item_id``).
"""

from __future__ import annotations

import re

from ._errors import InvalidAudioError
from ._stats import TurnStats
from ._words import HeardText

__all__ = ["realtime_truncate", "truncate_text"]

_TOKEN = re.compile(r"\S+")


def realtime_truncate(
    item_id: str, content_index: int, stats: TurnStats, *, audio_ms: int | None = None
) -> dict[str, str | int]:
    """Build the OpenAI Realtime event that cuts an assistant item to what played.

    Args:
        item_id: Id of the assistant message item (from ``response.output_item.added``).
        content_index: Index of its audio content part (OpenAI: "Set this to 0").
        stats: The turn's account, e.g. from the ``finished`` or ``interrupted`` event.
        audio_ms: The item's audio duration in ms as the server counts it, when known
            (sum of the ``response.output_audio.delta`` samples); caps ``audio_end_ms``
            in case resampling made ``stats.pushed_samples`` a little longer.

    Returns:
        ``{"type": "conversation.item.truncate", "item_id", "content_index",
        "audio_end_ms"}`` with ``audio_end_ms = floor(min(played, pushed) in ms)``
        (integer ms, at most ``audio_ms``); or, when that is 0 ms (nothing, or under
        1 ms, was heard), ``{"type": "conversation.item.delete", "item_id"}``: send
        whichever is returned. See the module docstring for where each rule comes from.

    Raises:
        InvalidAudioError: a negative ``content_index`` or ``audio_ms``.
    """
    if content_index < 0 or (audio_ms is not None and audio_ms < 0):
        raise InvalidAudioError(f"expected content_index and audio_ms >= 0, got {content_index}, {audio_ms}")
    samples = min(stats.played_samples, stats.pushed_samples)
    end_ms = samples * 1000 // stats.sample_rate  # integer floor: never past what played
    if audio_ms is not None:
        end_ms = min(end_ms, audio_ms)
    if end_ms <= 0:
        return {"type": "conversation.item.delete", "item_id": item_id}
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": end_ms,
    }


def truncate_text(text: str, heard: TurnStats | HeardText, *, marker: str = "") -> str:
    """Cut a reply's text (as kept in a chat history) to the words the listener heard.

    The heard words are matched in order against ``text``'s whitespace-separated
    words, ignoring case and punctuation, so the kept prefix has the reply's own
    spelling and punctuation. If a heard word cannot be matched (the TTS normalised
    "9" to "nine"), the rest of the match is abandoned and ``heard.text`` is returned.

    Args:
        text: The full reply text.
        heard: The turn's stats (their ``heard_text``), or a :class:`HeardText`; the
            heard text obeys the 20 % rule for the partial word (see ``agent_audio._words``).
        marker: Appended when the reply was cut, e.g. ``"..."`` or ``" [interrupted]"``.

    Returns:
        The heard prefix of ``text`` (``""`` when nothing was heard), plus ``marker``
        if anything was cut; ``text`` unchanged when every word was heard.
    """
    heard_text = heard.heard_text if isinstance(heard, TurnStats) else heard.text
    said = heard_text.split()
    tokens = list(_TOKEN.finditer(text))
    if not tokens:
        return text
    end = 0
    position = 0
    for word in said:
        key = _key(word)
        while position < len(tokens) and _key(tokens[position].group()) != key:
            position += 1
        if position == len(tokens):
            return heard_text + (marker if heard_text != text.strip() else "")
        end = tokens[position].end()
        position += 1
    if end == tokens[-1].end():
        return text
    return text[:end] + marker


def _key(word: str) -> str:
    return "".join(ch for ch in word.casefold() if ch.isalnum())
