"""The examples run and do what their docstrings say.

Guards: background_ambience renders 6 s with the thinking sound resolved and the turn
interrupted; avatar_plugin (real clock, 4 s) talks, holds its pose on pause and goes
idle on interrupt; streaming_tts plays a whole stream, takes the library's format
names, and ends (raising the producer's error) when its producer thread fails.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import av
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def test_background_ambience_renders_the_mix(tmp_path: Path) -> None:
    out = tmp_path / "mix.wav"
    await _load("background_ambience").main(out)
    with av.open(str(out)) as container:
        seconds = sum(frame.samples for frame in container.decode(audio=0)) / 48000
    assert seconds == pytest.approx(6.0)


@pytest.mark.realclock
async def test_avatar_plugin_talks_holds_and_stops() -> None:
    poses = await _load("avatar_plugin").main()
    states = [state for _, _, state in poses]
    first_pause = states.index("paused")
    assert "talking" in states[:first_pause]
    assert "talking" in states[first_pause:]  # resumed
    assert states[-10:] == ["idle"] * 10  # interrupted: the mouth closed
    assert max(openness for _, openness, state in poses if state == "talking") > 0.5


@pytest.mark.realclock
@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
async def test_streaming_tts_plays_the_whole_stream_and_records_it(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "heard.wav"
    stats = await _load("streaming_tts").main(fmt, None, out)
    assert not stats.interrupted
    assert stats.played_ms == stats.pushed_ms
    assert abs(stats.pushed_ms - 8000) < 100  # 8 s of speech, within a few codec frames
    with av.open(str(out)) as container:
        recorded = sum(frame.samples for frame in container.decode(audio=0)) / 48000
    assert recorded >= stats.played_ms / 1000  # the recording holds every frame sent, speech included


@pytest.mark.realclock
async def test_streaming_tts_ends_when_its_producer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """--say without the tts extra: piper_voice() raises in the producer thread; main must not hang."""
    module = _load("streaming_tts")
    assert set(module.FORMATS) == {"mp3", "ogg", "flac", "aac", "wav"}  # push_encoded's names

    def no_piper() -> None:
        raise RuntimeError("--say needs the tts extra: pip install 'agent_audio[tts]'")

    monkeypatch.setattr(module, "piper_voice", no_piper)
    with pytest.raises(RuntimeError, match="needs the tts extra"):
        await asyncio.wait_for(module.main("mp3", "Hello.", None), 10)


async def test_own_stage_and_tap_see_frames_and_events_in_order() -> None:
    meter, timeline = await _load("own_stage").main()
    assert max(level for _, level in meter.levels) == pytest.approx(-13.5, abs=0.2)
    assert timeline.events[0] == "turn 1 ended after 1.00 s of voice"  # ended before it played
    assert timeline.events[1:] == ["paused", "resumed", "interrupted [2]"]  # turn 2 was interrupted: no end
