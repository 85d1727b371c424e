"""The duplex demo's report: the policy's reactions, measured on the audio each side received.

* Barge-in: from the user's speech onset (when the listener sent the clip, plus the
  clip's own lead-in) to the agent's voice going quiet in the listener's received audio.
* Backchannel: the silent gap in the listener's received audio between the policy's
  pause and resume, and the turn's played == pushed (it went on from where it paused).
* Cough: the policy decided nothing but ``ignored``, and the track was never paused.
* The CPU the VAD added: its own CPU time per window and as a share of one core.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agent_audio import BargeInAction, BargeInDecision, BargeInReason

from .analysis import SILENCE_DBFS, VOICE_BAND, WINDOW, band_filter, levels_dbfs, silence_after, silent_run
from .duplex import DuplexRun
from .report import write_wav

__all__ = ["ONSET_TO_QUIET_TARGET", "build_duplex_report", "format_duplex_report", "write_duplex_outputs"]

#: Seconds from the user's speech onset to the agent's quiet, on the received audio (issue 18's bar).
ONSET_TO_QUIET_TARGET = 0.400
#: Seconds after a clip's last frame during which the policy's decisions are attributed to it.
_AFTERMATH = 1.0

Decision = tuple[float, BargeInDecision]


def _during(run: DuplexRun, key: str) -> list[Decision]:
    sent = run.sent[key]
    return [(t, d) for t, d in run.decisions if sent.started <= t <= sent.ended + _AFTERMATH]


def _pairs(decisions: list[Decision]) -> list[tuple[BargeInAction, BargeInReason]]:
    return [(d.action, d.reason) for _, d in decisions]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def build_duplex_report(run: DuplexRun) -> dict[str, Any]:
    """Measurements, the policy's decisions with reasons and times, and pass/fail checks."""
    rx = run.received
    levels = levels_dbfs(band_filter(rx.samples, rx.sample_rate, VOICE_BAND), rx.sample_rate)
    size = round(WINDOW * rx.sample_rate)
    times = rx.times()[: len(levels) * size : size] if len(levels) else np.zeros(0)
    end = float(times[-1]) if len(times) else 0.0
    t1, t2 = run.turns

    barge = run.sent["barge_in"]
    barge_decisions = _during(run, "barge_in")
    try:
        to_quiet: float | None = silence_after(times, levels, barge.onset, end)
    except ValueError:  # still loud at the end: the agent never went quiet
        to_quiet = None
    first_barge = barge_decisions[0][0] if barge_decisions else None

    back = run.sent["backchannel"]
    back_decisions = _during(run, "backchannel")
    gap: tuple[float, float] | None = None
    if _pairs(back_decisions) == [
        (BargeInAction.PAUSE, BargeInReason.SPEECH_ONSET),
        (BargeInAction.RESUME, BargeInReason.SILENCE),
    ]:
        try:
            gap = silent_run(times, levels, (back_decisions[0][0] + back_decisions[1][0]) / 2)
        except ValueError:  # loud in the middle of the pause
            gap = None

    cough = run.sent["cough"]
    cough_decisions = _during(run, "cough")
    cough_paused = any(cough.started <= t <= cough.ended + _AFTERMATH and n == "paused" for t, n in run.track_events)
    windows = [(s.started, s.ended + _AFTERMATH) for s in run.sent.values()]
    stray = [d for t, d in run.decisions if not any(a <= t <= b for a, b in windows)]

    report: dict[str, Any] = {
        "mode": "barge-in",
        "turns": [
            {
                "turn_id": s.turn_id,
                "pushed_ms": round(s.pushed_ms, 1),
                "played_ms": round(s.played_ms, 1),
                "dropped_ms": round(s.dropped_ms, 1),
                "interrupted": s.interrupted,
            }
            for s in run.turns
        ],
        "user_clips": {
            key: {
                "clip": s.clip.name,
                "duration_ms": _ms(s.clip.duration),
                "speech_onset_in_clip_ms": _ms(s.clip.onset),
                "sent_at_s": round(s.started - run.started, 3),
            }
            for key, s in run.sent.items()
        },
        "barge_in": {
            "onset_to_quiet_ms": _ms(to_quiet),
            "onset_to_quiet_target_ms": _ms(ONSET_TO_QUIET_TARGET),
            "onset_to_first_decision_ms": None if first_barge is None else _ms(first_barge - barge.onset),
            "decisions": [f"{a.value} ({r.value})" for a, r in _pairs(barge_decisions)],
        },
        "backchannel": {
            "gap_ms": None if gap is None else _ms(gap[1] - gap[0]),
            "onset_to_pause_decision_ms": _ms(back_decisions[0][0] - back.onset) if back_decisions else None,
            "turn_played_ms": round(t1.played_ms, 1),
            "turn_pushed_ms": round(t1.pushed_ms, 1),
            "decisions": [f"{a.value} ({r.value})" for a, r in _pairs(back_decisions)],
        },
        "cough": {"paused": cough_paused, "decisions": [f"{a.value} ({r.value})" for a, r in _pairs(cough_decisions)]},
        "decisions": [
            {
                "t_s": round(t - run.started, 3),
                "vad_at_s": round(d.at, 3),
                "action": d.action.value,
                "reason": d.reason.value,
                "turn_id": d.turn_id,
                "speech_ms": _ms(d.speech_duration),
            }
            for t, d in run.decisions
        ],
        "vad": {
            "windows": run.vad_windows,
            "cpu_ms": _ms(run.vad_cpu),
            "cpu_us_per_window": round(run.vad_cpu / run.vad_windows * 1e6, 1) if run.vad_windows else None,
            "cpu_percent_of_a_core": round(run.vad_cpu / run.vad_wall * 100, 2) if run.vad_wall else None,
            "process_cpu_percent_of_a_core": round(run.process_cpu / run.vad_wall * 100, 1) if run.vad_wall else None,
        },
        "received": {
            "agent_audio_s": round(len(rx.samples) / rx.sample_rate, 3),
            "user_audio_at_agent_s": round(len(run.heard.samples) / run.heard.sample_rate, 3),
            "silence_threshold_dbfs": SILENCE_DBFS,
            "voice_band_hz": list(VOICE_BAND),
        },
    }
    report["checks"] = {
        "barge-in: paused at onset, interrupted as the speech lasted": _pairs(barge_decisions)
        == [(BargeInAction.PAUSE, BargeInReason.SPEECH_ONSET), (BargeInAction.INTERRUPT, BargeInReason.SPEECH_LASTED)],
        "barge-in: turn 2 interrupted, played + dropped == pushed": t2.interrupted
        and t2.played_samples + t2.dropped_samples == t2.pushed_samples,
        f"barge-in: onset to agent quiet < {ONSET_TO_QUIET_TARGET * 1000:.0f} ms on the received audio": to_quiet
        is not None
        and to_quiet < ONSET_TO_QUIET_TARGET,
        "backchannel: paused at onset, resumed on silence, gap measured": gap is not None,
        "backchannel: turn 1 went on from where it paused (played == pushed)": not t1.interrupted
        and t1.played_samples == t1.pushed_samples,
        "cough: nothing but ignored decisions, never paused": not cough_paused
        and all(d.action is BargeInAction.IGNORED for _, d in cough_decisions),
        "no decision outside the user's clips": not stray,
    }
    return report


def format_duplex_report(report: dict[str, Any]) -> str:
    """The printed report: turns, the three reactions, the decisions, the VAD's CPU, the checks."""
    lines = ["", "turn  pushed ms  played ms  dropped ms  interrupted"]
    for t in report["turns"]:
        lines.append(
            f"{t['turn_id']:>4}  {t['pushed_ms']:>9.0f}  {t['played_ms']:>9.0f}  {t['dropped_ms']:>10.0f}"
            f"  {t['interrupted']!s:>11}"
        )
    b, c, k, v = report["barge_in"], report["backchannel"], report["cough"], report["vad"]
    lines += [
        "",
        "measured on the audio each side received:",
        f"  barge-in: user speech onset to agent quiet {_num(b['onset_to_quiet_ms'])} ms "
        f"(target < {b['onset_to_quiet_target_ms']:.0f} ms; the agent decided "
        f"{_num(b['onset_to_first_decision_ms'])} ms after the onset)",
        f"  backchannel: false-interruption gap {_num(c['gap_ms'])} ms, then the reply went on: "
        f"played {c['turn_played_ms']:.0f} of {c['turn_pushed_ms']:.0f} ms pushed",
        f"  cough: {'paused' if k['paused'] else 'no pause'}, decisions: {', '.join(k['decisions']) or 'none'}",
        f"  VAD: {v['windows']} windows of 32 ms, {_num(v['cpu_us_per_window'])} us CPU each, "
        f"{_num(v['cpu_percent_of_a_core'], '.2f')} % of a core (the whole process: "
        f"{_num(v['process_cpu_percent_of_a_core'], '.1f')} %)",
        "",
        "policy decisions (t: seconds since start; at: on the VAD's timeline):",
    ]
    for d in report["decisions"]:
        lines.append(
            f"  t {d['t_s']:6.2f} s  at {d['vad_at_s']:6.2f} s  {d['action']:<9} {d['reason']:<14} "
            f"turn {d['turn_id']}  speech {d['speech_ms']:.0f} ms"
        )
    lines.append("")
    lines += [f"  [{'ok' if ok else 'FAILED'}] {name}" for name, ok in report["checks"].items()]
    return "\n".join(lines)


def _num(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def write_duplex_outputs(run: DuplexRun, report: dict[str, Any], out: Path) -> list[Path]:
    """Write received.wav (the agent, as the listener heard it), user_at_agent.wav and report.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "received.wav", out / "user_at_agent.wav", out / "report.json"]
    write_wav(written[0], run.received.samples, run.received.sample_rate)
    write_wav(written[1], run.heard.samples, run.heard.sample_rate)
    written[2].write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")  # strict JSON: null, never NaN
    return written
