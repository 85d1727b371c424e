"""The main job end to end (agent_audio.demo.run, marked ``realclock``: about 25 s).

Guards what the README promises of ``python -m agent_audio demo``: exit status 0, the
three output files, and a report.json where turn 1 and 2 played all they pushed, the
pause gap is about the requested 0.6 s, turn 3 was interrupted with played + dropped ==
pushed, the received voice was silent within fade_out + 100 ms of the interrupt, and
the background bed went on through the interrupt and was ducked about 10 dB under speech.
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
    report = json.loads((tmp_path / "report.json").read_text())
    t1, t2, t3 = report["turns"]
    assert t1["played_ms"] == t1["pushed_ms"] and not t1["interrupted"]
    assert t2["played_ms"] == t2["pushed_ms"] and not t2["interrupted"]
    assert t3["interrupted"] and t3["played_ms"] + t3["dropped_ms"] == pytest.approx(t3["pushed_ms"], abs=0.2)
    assert report["received"]["pause_gap_ms"] == pytest.approx(600, abs=150)
    assert report["received"]["interrupt_to_silence_ms"] <= report["fade_out_ms"] + 100
    assert report["background"]["ducking_db"] == pytest.approx(10, abs=4)
    assert report["background"]["dip_at_interrupt_db"] <= 6
    assert len(report["checks"]) == 9 and all(report["checks"].values()), report["checks"]
    assert (tmp_path / "received.wav").stat().st_size > 48000 * 2 * 10
    assert (tmp_path / "waveform.png").exists()
