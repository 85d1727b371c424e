"""The demo report (agent_audio.demo.report), on synthetic received audio.

Guards: interrupt-to-silence and the pause gap are measured on the received audio's
arrival timeline, on the voice band; the background's ducking and its continuity through
the interrupt are measured in the air band, even under speech; checks fail when they
should (late silence, a background cleared by the interrupt); received.wav round-trips.
Heard text: turn 3's must be exactly the words that had played 20 % or more when the
fade began (a word more or less fails); turns 1 and 2 must have heard every word; the
report says where the cut fell and carries the truncate payload; without word timings
(``--input``) there is no heard section and no heard check.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from agent_audio import HeardWord, TrackMetrics, TurnStats
from agent_audio.demo.analysis import AIR_BAND, band_filter
from agent_audio.demo.heard import expected_heard, format_heard, heard_checks, heard_report
from agent_audio.demo.loopback import ReceivedAudio
from agent_audio.demo.report import build_report, format_report, write_outputs
from agent_audio.demo.run import DemoOptions, DemoRun

RATE = 48000


def _run(silent_from: float, pause_gap: tuple[float, float], *, bed: np.ndarray | None = None) -> DemoRun:
    """8 s of received 'speech' (noise at -20 dBFS, below 11 kHz) arriving from t=100 s, silences as asked."""
    rng = np.random.default_rng(0)
    samples = band_filter(rng.standard_normal(8 * RATE) * 0.1, RATE, (100.0, 10000.0)).astype(np.float32)
    samples[round(pause_gap[0] * RATE) : round(pause_gap[1] * RATE)] = 0
    samples[round(silent_from * RATE) :] = 0
    if bed is not None:
        samples += bed
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
    options = DemoOptions(background=None if bed is None else Path("bed.ogg"))
    frames = len(starts)
    return DemoRun(options, turns, marks, spans, metrics, received, [], None, frames + 4, frames)


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


def _air_bed(*, ducked_between: tuple[float, float], cleared_from: float | None = None) -> np.ndarray:
    """Air-band noise at -36 dBFS, 10 dB lower while 'speech' plays, optionally cut off."""
    rng = np.random.default_rng(1)
    bed = band_filter(rng.standard_normal(8 * RATE), RATE, AIR_BAND)
    bed *= 10 ** (-36 / 20) / np.sqrt(np.mean(bed**2))
    gain = np.ones(8 * RATE)
    gain[round(ducked_between[0] * RATE) : round(ducked_between[1] * RATE)] = 10 ** (-10 / 20)
    if cleared_from is not None:
        gain[round(cleared_from * RATE) :] = 0.0
    return (bed * gain).astype(np.float32)


def test_background_ducking_and_continuity_are_measured_under_speech() -> None:
    run = _run(6.25, (3.0, 3.6), bed=_air_bed(ducked_between=(0.0, 6.1)))
    report = build_report(run)
    assert report["background"]["ducking_db"] == pytest.approx(10.0, abs=0.5)
    assert report["background"]["dip_at_interrupt_db"] <= 1.0
    assert report["received"]["interrupt_to_silence_ms"] == 250.0  # the bed does not hide the voice's end
    assert all(report["checks"].values()), report["checks"]


def test_a_background_cleared_by_the_interrupt_fails_the_check() -> None:
    report = build_report(_run(6.25, (3.0, 3.6), bed=_air_bed(ducked_between=(0.0, 6.1), cleared_from=6.05)))
    assert report["background"]["dip_at_interrupt_db"] > 30
    assert not report["checks"]["background continued through the interrupt"]


@pytest.mark.parametrize(("recorded_extra", "ok"), [(4, True), (5, True), (3, True), (6, False), (0, False)])
def test_recording_is_checked_against_what_arrived(recorded_extra: int, ok: bool) -> None:
    run = _run(silent_from=6.25, pause_gap=(3.0, 3.6))
    run.recorded_frames = run.received_frames + recorded_extra  # aiortc holds 4 back
    report = build_report(run)
    assert report["checks"]["recording matches the received audio within a frame"] is ok


def test_a_run_too_short_to_measure_gives_null_not_nan(tmp_path: Path) -> None:
    """Received audio that ends before the pause and the interrupt (a 2 s input): no warning, no NaN."""
    run = _run(6.25, (3.0, 3.6), bed=_air_bed(ducked_between=(0.0, 6.1)))
    keep = 2 * RATE
    rx = run.received
    run.received = ReceivedAudio(RATE, rx.samples[:keep], rx.starts[rx.starts < keep], rx.arrivals[rx.starts < keep])
    run.spans = [(100.0, 100.5)]
    report = build_report(run)  # pytest turns any numpy RuntimeWarning into an error
    assert report["received"]["interrupt_to_silence_ms"] is None
    assert report["received"]["pause_gap_ms"] is None
    assert report["background"]["ducking_db"] is None
    checks = report["checks"]
    assert (
        not checks["interrupt to silence <= fade_out + 100 ms"]
        and not checks["background ducked under speech (6-14 dB)"]
    )
    assert "interrupt to silence   - ms" in format_report(report)
    write_outputs(run, report, tmp_path)
    json.loads((tmp_path / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in report.json"))


WORDS = (("one", 0.0, 0.2), ("two", 0.25, 0.45), ("three", 0.5, 0.9))


def _heard_turn(turn_id: int, played: int, said: list[str], *, interrupted: bool) -> TurnStats:
    heard = tuple(HeardWord(w, s * 1000, e * 1000, False) for w, s, e in WORDS if w in said)
    pushed = RATE
    return TurnStats(
        turn_id,
        RATE,
        pushed,
        played,
        pushed - played,
        0,
        interrupted,
        True,
        0.02,
        heard_words=heard,
        heard_text=" ".join(said),
    )


@pytest.mark.parametrize(("cut_ms", "expected"), [(300, (2, 2)), (280, (1, 1)), (470, (2, 2)), (290, (1, 2))])
def test_the_heard_words_are_those_20_percent_played_at_the_cut(cut_ms: float, expected: tuple[int, int]) -> None:
    words_ms = [(w, s * 1000, e * 1000) for w, s, e in WORDS]
    assert expected_heard(words_ms, cut_ms) == expected  # 290 ms: "two" at exactly 20 %, within rounding


@pytest.mark.parametrize(
    ("said", "ok"), [(["one", "two"], True), (["one"], False), (["one", "two", "three"], False), ([], False)]
)
def test_turn_3_heard_text_must_end_at_the_word_spoken_at_the_cut(said: list[str], ok: bool) -> None:
    full = [_heard_turn(i, RATE, ["one", "two", "three"], interrupted=False) for i in (1, 2)]
    turns = [*full, _heard_turn(3, RATE // 2, said, interrupted=True)]
    cut = round(0.3 * RATE)  # 50 of "two"'s 200 ms played: 25 %, heard
    heard = heard_report(turns, [WORDS] * 3, cut, "test timings")
    assert heard is not None
    checks = heard_checks(heard, [WORDS] * 3)
    assert checks["turns 1 and 2 heard all their words"]
    assert checks["turn 3 heard text ends at the word spoken when the fade began"] is ok
    assert heard["word_at_interrupt"] == {"inside": {"text": "two", "start_ms": 250.0, "end_ms": 450.0}}
    assert heard["truncate"] == {
        "type": "conversation.item.truncate",
        "item_id": "item_turn_3",
        "content_index": 0,
        "audio_end_ms": 500,
    }
    text = "\n".join(format_heard(heard))
    assert f'turn 3: {len(said):>2} of  3 words  "{" ".join(said)}"' in text
    assert 'fade began 300 ms in, inside "two" (250-450 ms)' in text
    assert '"audio_end_ms": 500' in text


def test_a_turn_that_missed_a_word_fails_the_full_turns_check() -> None:
    turns = [
        _heard_turn(1, RATE, ["one", "two"], interrupted=False),  # "three" never reported heard
        _heard_turn(2, RATE, ["one", "two", "three"], interrupted=False),
        _heard_turn(3, RATE // 2, ["one", "two"], interrupted=True),
    ]
    heard = heard_report(turns, [WORDS] * 3, round(0.3 * RATE), "test timings")
    assert heard is not None
    assert not heard_checks(heard, [WORDS] * 3)["turns 1 and 2 heard all their words"]


def test_without_word_timings_there_is_no_heard_section_or_check(tmp_path: Path) -> None:
    run = _run(silent_from=6.25, pause_gap=(3.0, 3.6))  # no words, as with --input
    report = build_report(run)
    assert report["heard"] is None and not any("heard" in name for name in report["checks"])
    assert "heard text: no word timings for this speech" in format_report(report)
    assert [t["heard_text"] for t in report["turns"]] == ["", "", ""]
