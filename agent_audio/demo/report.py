"""The demo's report: measurements on the received audio, report.json, received.wav, waveform.png."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import av
import numpy as np

from .analysis import (
    AIR_BAND,
    SILENCE_DBFS,
    VOICE_BAND,
    WINDOW,
    band_filter,
    levels_dbfs,
    silence_after,
    silent_run,
)
from .heard import format_heard, heard_checks, heard_report
from .run import DemoRun

__all__ = ["build_report", "format_report", "write_outputs", "write_wav"]

logger = logging.getLogger(__name__)


#: Frames aiortc's audio receiver holds back before it releases any
#: (``JitterBuffer(capacity=16, prefetch=4)`` in aiortc's rtcrtpreceiver.py): once the
#: sender stops, the last 4 frames sent never come out of the listener's track.
AIORTC_AUDIO_PREFETCH = 4


def build_report(run: DemoRun) -> dict[str, Any]:
    """Per-turn stats, measurements on the received audio, pacing, and pass/fail checks."""
    rx = run.received
    opts = run.options
    # The voice alone: the bundled ambience has nothing in the voice band.
    levels = levels_dbfs(band_filter(rx.samples, rx.sample_rate, VOICE_BAND), rx.sample_rate)
    size = round(WINDOW * rx.sample_rate)
    times = rx.times()[: len(levels) * size : size] if len(levels) else np.zeros(0)
    end = float(times[-1]) if len(times) else 0.0
    interrupt, pause, resume = run.marks["interrupt"], run.marks["pause"], run.marks["resume"]
    try:
        to_silence: float | None = silence_after(times, levels, interrupt, end)
    except ValueError:  # still loud at the end: never went quiet
        to_silence = None
    try:
        gap_begin, gap_end = silent_run(times, levels, (pause + resume) / 2)  # received audio is silent mid-pause
        gap: tuple[float, float] | None = (gap_begin, gap_end)
    except ValueError:  # loud in the middle of the pause
        gap = None
    turns: list[dict[str, Any]] = [
        {
            "turn_id": s.turn_id,
            "time_to_first_audio_ms": None if s.time_to_first_audio is None else round(s.time_to_first_audio * 1000, 1),
            "pushed_ms": round(s.pushed_ms, 1),
            "played_ms": round(s.played_ms, 1),
            "dropped_ms": round(s.dropped_ms, 1),
            "interrupted": s.interrupted,
            "heard_text": s.heard_text,
            "received_level_dbfs": _level_during(times, levels, *run.spans[i]) if i < len(run.spans) else None,
        }
        for i, s in enumerate(run.turns)
    ]
    m = run.metrics
    first, last = (float(rx.arrivals[0]), float(rx.arrivals[-1])) if len(rx.arrivals) else (0.0, 0.0)
    frame = 0.020
    report: dict[str, Any] = {
        "fade_out_ms": opts.fade_out * 1000,
        "turns": turns,
        "received": {
            "duration_s": round(len(rx.samples) / rx.sample_rate, 3),
            "sample_rate": rx.sample_rate,
            "silence_threshold_dbfs": SILENCE_DBFS,
            "voice_band_hz": list(VOICE_BAND),
            "interrupt_to_silence_ms": _ms(to_silence),
            "pause_requested_ms": opts.pause_for * 1000,
            "pause_gap_ms": None if gap is None else _ms(gap[1] - gap[0]),
            "pause_to_silence_ms": None if gap is None else _ms(gap[0] - pause),
            "resume_to_sound_ms": None if gap is None else _ms(gap[1] - resume),
        },
        "pacing": {
            "frames_sent": m.frames_sent,
            "frames_received": len(rx.arrivals),
            "frames_expected": round((last - first) / frame) + 1 if len(rx.arrivals) else 0,
            "late_frames": m.late_frames,
            "max_lateness_ms": round(m.max_lateness * 1000, 2),
            "reanchors": m.reanchors,
            "underruns": m.underruns,
        },
        "recording": {
            "path": None if run.recording is None else str(run.recording),
            "frames_recorded": run.recorded_frames,
            "frames_received": run.received_frames,
        },
    }
    background = _background(run) if opts.background is not None else None
    report["background"] = background
    # The band measurements need a voice with nothing in the air band: true of the bundled
    # sample and of piper (22.05 kHz); an --input file may be wideband.
    band_limited_voice = opts.input is None
    t1, t2, t3 = run.turns
    gap_ms = report["received"]["pause_gap_ms"]
    report["checks"] = {
        "turn 1 played == pushed": t1.played_samples == t1.pushed_samples and not t1.interrupted,
        "turn 2 played == pushed": t2.played_samples == t2.pushed_samples and not t2.interrupted,
        "turn 2 pause gap within 150 ms of requested": gap_ms is not None
        and abs(gap_ms - opts.pause_for * 1000) <= 150,
        "turn 3 interrupted, played + dropped == pushed": t3.interrupted
        and t3.played_samples + t3.dropped_samples == t3.pushed_samples,
        "interrupt to silence <= fade_out + 100 ms": to_silence is not None and to_silence <= opts.fade_out + 0.1,
        "recording matches the received audio within a frame": abs(
            run.recorded_frames - (run.received_frames + AIORTC_AUDIO_PREFETCH)
        )
        <= 1,
        "speech audible in every turn": all(
            t["received_level_dbfs"] is not None and t["received_level_dbfs"] > SILENCE_DBFS + 10 for t in turns
        ),
    }
    heard = heard_report(run.turns, run.words, run.interrupted_at, run.words_from)
    report["heard"] = heard
    if heard is not None:
        report["checks"].update(heard_checks(heard, run.words))
    if background is not None and band_limited_voice:
        dip, ducking = background["dip_at_interrupt_db"], background["ducking_db"]
        report["checks"]["background continued through the interrupt"] = dip is not None and dip <= 6.0
        report["checks"]["background ducked under speech (6-14 dB)"] = ducking is not None and 6.0 <= ducking <= 14.0
    return report


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _median(levels: np.ndarray) -> float | None:
    """Median of ``levels``, or None for an empty selection (a run too short to measure)."""
    return float(np.median(levels)) if len(levels) else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)


def _background(run: DemoRun) -> dict[str, Any]:
    """The background alone, measured in the ambience's air band (the voice has nothing there).

    ``ducking_db``: how much lower the band is under turn 1's speech than in the quiet
    tail after the interrupt's fade (no voice, no ducking). ``dip_at_interrupt_db``: how far the
    band falls below its level under speech anywhere from 0.3 s before the interrupt to
    0.8 s after (a background cleared by the interrupt would fall by 40 dB or more).
    A value is None where its span holds no audio (a run too short to measure).
    """
    rx = run.received
    window = 0.05
    levels = levels_dbfs(band_filter(rx.samples, rx.sample_rate, AIR_BAND), rx.sample_rate, window)
    size = round(window * rx.sample_rate)
    times = rx.times()[: len(levels) * size : size]
    start, end = run.spans[0] if run.spans else (0.0, 0.0)
    under_speech = _median(levels[(times > start + 1.0) & (times < end - 0.5)])
    # Without voice: after the fade has ended and the ducking released (90 ms).
    interrupt = run.marks["interrupt"]
    quiet = _median(levels[times > interrupt + run.options.fade_out + 0.3])
    around = levels[(times > interrupt - 0.3) & (times < interrupt + 0.8)]
    lowest = float(around.min()) if len(around) else None
    dip = _diff(under_speech, lowest)
    return {
        "air_band_hz": list(AIR_BAND),
        "level_under_speech_db": None if under_speech is None else round(under_speech, 1),
        "level_without_voice_db": None if quiet is None else round(quiet, 1),
        "ducking_db": _diff(quiet, under_speech),
        "dip_at_interrupt_db": None if dip is None else max(0.0, dip),
    }


def _level_during(times: np.ndarray, levels: np.ndarray, start: float, end: float) -> float | None:
    """RMS level (dBFS) of the received audio between two monotonic instants."""
    inside = levels[(times >= start) & (times <= end)]
    if not len(inside):
        return None
    power = np.mean(10 ** (inside / 10))
    return round(float(10 * np.log10(power)), 1)


def format_report(report: dict[str, Any]) -> str:
    """The printed report: one line per turn, then the received-audio and pacing measurements."""
    lines = ["", "turn  TTFA ms  pushed ms  played ms  dropped ms  interrupted  level dBFS"]
    for t in report["turns"]:
        ttfa = "-" if t["time_to_first_audio_ms"] is None else f"{t['time_to_first_audio_ms']:.1f}"
        lines.append(
            f"{t['turn_id']:>4}  {ttfa:>7}  {t['pushed_ms']:>9.0f}  {t['played_ms']:>9.0f}  {t['dropped_ms']:>10.0f}"
            f"  {t['interrupted']!s:>11}  {t['received_level_dbfs']!s:>10}"
        )
    r, p = report["received"], report["pacing"]
    lines += [
        "",
        f"measured on the received audio, voice band {r['voice_band_hz'][0]:.0f}-{r['voice_band_hz'][1]:.0f} Hz "
        f"(silence: below {r['silence_threshold_dbfs']:.0f} dBFS):",
        f"  interrupt to silence   {_num(r['interrupt_to_silence_ms'])} ms (fade_out {report['fade_out_ms']:.0f} ms)",
        f"  pause gap              {_num(r['pause_gap_ms'])} ms (paused for {r['pause_requested_ms']:.0f} ms)",
        *_background_lines(report.get("background")),
        f"pacing: {p['frames_sent']} frames sent, {p['frames_received']} received of {p['frames_expected']} expected, "
        f"{p['late_frames']} late, max lateness {p['max_lateness_ms']:.2f} ms, {p['reanchors']} re-anchors, "
        f"{p['underruns']} underruns",
        f"recording: {report['recording']['frames_recorded']} frames recorded, "
        f"{report['recording']['frames_received']} received + {AIORTC_AUDIO_PREFETCH} held by aiortc's jitter buffer",
        "",
        *format_heard(report.get("heard")),
        "",
    ]
    lines += [f"  [{'ok' if ok else 'FAILED'}] {name}" for name, ok in report["checks"].items()]
    return "\n".join(lines)


def _background_lines(background: dict[str, Any] | None) -> list[str]:
    if background is None:
        return []
    low, high = background["air_band_hz"]
    return [
        f"  background ({low / 1000:.0f}-{high / 1000:.0f} kHz band, where the voice has nothing): "
        f"ducked {_num(background['ducking_db'], '.1f')} dB under speech, "
        f"dip at the interrupt {_num(background['dip_at_interrupt_db'], '.1f')} dB",
    ]


def _num(value: float | None, spec: str = ".0f") -> str:
    """A measurement for the printed report; "-" where it could not be measured."""
    return "-" if value is None else format(value, spec)


def write_outputs(run: DemoRun, report: dict[str, Any], out: Path) -> list[Path]:
    """Write received.wav, report.json and (if matplotlib is installed) waveform.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    wav = out / "received.wav"
    write_wav(wav, run.received.samples, run.received.sample_rate)
    # Strict JSON: a value that could not be measured is null, never NaN.
    (out / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    written = [wav, out / "report.json"]
    if run.recording is not None:
        written.append(run.recording)
    picture = _plot(run, out / "waveform.png")
    if picture is not None:
        written.append(picture)
    return written


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write float mono ``samples`` in [-1, 1], shape ``(n,)``, at ``rate`` Hz as a 16-bit PCM WAV file."""
    pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _plot(run: DemoRun, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the demo extra is optional; the caller reports the skip
        return None
    rx = run.received
    if not len(rx.samples):
        return None
    origin = float(rx.arrivals[0]) if len(rx.arrivals) else 0.0
    t = rx.times() - origin
    fig, ax = plt.subplots(figsize=(12, 3.6), dpi=100)
    ax.plot(t, rx.samples, linewidth=0.4, color="#1f4e79")
    for i, (start, end) in enumerate(run.spans):
        ax.axvspan(start - origin, end - origin, color="#dde8f3", zorder=0)
        ax.text(start - origin + 0.1, 0.9, f"turn {i + 1}", fontsize=9)
    colors = {"pause": "#d98c00", "resume": "#2e7d32", "interrupt": "#c62828"}
    for name, when in run.marks.items():
        ax.axvline(when - origin, color=colors[name], linewidth=1.2, label=name)
    ax.set(xlabel="seconds (received)", ylabel="amplitude", ylim=(-1, 1), xlim=(0, max(float(t[-1]), 1.0)))
    ax.set_title("agent_audio demo: audio received over a real aiortc peer connection")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
