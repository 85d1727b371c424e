"""The demo report (agent_audio._report), on synthetic received audio.

Guards: interrupt-to-silence and the pause gap are measured on the received audio's
arrival timeline; checks fail when they should; received.wav round-trips.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from agent_audio import TrackMetrics, TurnStats
from agent_audio._demo import DemoOptions, DemoRun
from agent_audio._loopback import ReceivedAudio
from agent_audio._report import build_report, format_report, write_outputs

RATE = 48000


def _run(silent_from: float, pause_gap: tuple[float, float]) -> DemoRun:
    """8 s of received 'speech' (noise at -20 dBFS) arriving from t=100 s, with silences placed as asked."""
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(8 * RATE) * 0.1).astype(np.float32)
    samples[round(pause_gap[0] * RATE) : round(pause_gap[1] * RATE)] = 0
    samples[round(silent_from * RATE) :] = 0
    starts = np.arange(0, len(samples), 960, dtype=np.int64)
    received = ReceivedAudio(RATE, samples, starts, 100.0 + starts / RATE)
    turns = [
        TurnStats(1, RATE, 96000, 96000, 0, 0, False, True, 0.02),
        TurnStats(2, RATE, 96000, 96000, 0, 0, False, True, 0.02),
        TurnStats(3, RATE, 96000, 48000, 48000, 0, True, True, 0.02),
    ]
    marks = {"pause": 100.0 + pause_gap[0] - 0.1, "resume": 100.0 + pause_gap[1] - 0.1, "interrupt": 106.0}
    spans = [(100.0, 102.0), (102.0, 105.0), (105.5, 106.3)]
    metrics = TrackMetrics(400, 0, 0, 0, 0.001, 0, RATE)
    return DemoRun(DemoOptions(), turns, marks, spans, metrics, received)


def test_measures_on_the_received_timeline() -> None:
    report = build_report(_run(silent_from=6.25, pause_gap=(3.0, 3.6)))
    assert report["received"]["interrupt_to_silence_ms"] == 250.0
    assert report["received"]["pause_gap_ms"] == 600.0
    assert report["received"]["pause_to_silence_ms"] == 100.0
    assert all(report["checks"].values()), report["checks"]
    assert "interrupt to silence   250 ms" in format_report(report)


def test_checks_fail_when_silence_comes_late() -> None:
    report = build_report(_run(silent_from=6.45, pause_gap=(3.0, 3.6)))
    assert not report["checks"]["interrupt to silence <= fade_out + 100 ms"]
    assert "[FAILED] interrupt to silence" in format_report(report)


def test_outputs_are_written_and_wav_round_trips(tmp_path: Path) -> None:
    run = _run(silent_from=6.25, pause_gap=(3.0, 3.6))
    written = write_outputs(run, build_report(run), tmp_path)
    assert {p.name for p in written} >= {"received.wav", "report.json"}
    with av.open(str(tmp_path / "received.wav")) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    pcm = np.concatenate(frames, axis=1).reshape(-1)
    assert len(pcm) == 8 * RATE
    assert np.abs(pcm / 32767 - run.received.samples).max() < 1e-4
