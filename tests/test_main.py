"""The command line (agent_audio.demo.cli, run by ``python -m agent_audio``).

Guards: a usage or input error is one line on stderr and exit status 2, before any
network work, never a traceback; --version; --help documents the exit statuses.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

import agent_audio
from agent_audio.demo.cli import main
from agent_audio.demo.speech import tts_installed


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def write_tone(path: Path, seconds: float) -> Path:
    t = np.arange(round(seconds * 24000)) / 24000
    pcm = (np.sin(2 * np.pi * 220 * t) * 12000).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=24000, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 24000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_missing_input_file_exits_2_with_its_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--input", "/no/such/file.mp3", "--out", str(tmp_path)]) == 2
    assert "--input: expected an audio file, got no file at /no/such/file.mp3" in one_line_error(capsys)


def test_input_and_say_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--input", "a.wav", "--say", "hi"])
    assert info.value.code == 2
    assert "not allowed with argument" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            ["demo", "--input", "{tmp}"],
            "--input: expected an audio file FFmpeg decodes (WAV, MP3, Ogg, FLAC, AAC, ...), got a directory",
        ),
        (
            ["demo", "--input", "{tmp}/notes.txt"],
            "notes.txt: a text file of 12 bytes (text/plain by its name) that FFmpeg cannot read",
        ),
        (["demo", "--background", "{tmp}/notes.txt"], "--background: expected an audio file"),
        (["demo", "--out", "{tmp}/notes.txt"], "--out: expected a folder (created if missing), got an existing file"),
        (["demo", "--fade-out", "0"], "--fade-out: expected 0.1 to 1.0 s, got 0.0"),
        (["demo", "--fade-out", "2"], "--fade-out: expected 0.1 to 1.0 s, got 2.0"),
        (["demo", "--fade-out", "nan"], "expected a finite number of seconds"),
        (["serve", "--port", "99999"], "expected a port from 0 to 65535, got 99999"),
        (["serve", "--max-sessions", "0"], "expected a whole number >= 1, got 0"),
        (["serve", "--input", "{tmp}/notes.txt"], "--input: expected an audio file"),
    ],
)
def test_usage_and_input_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], reason: str
) -> None:
    (tmp_path / "notes.txt").write_text("hello there\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = int(exit_.code or 0)
    assert status == 2
    assert reason in one_line_error(capsys)


def test_a_short_input_is_refused_before_connecting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    short = write_tone(tmp_path / "short.wav", 0.5)
    assert main(["demo", "--input", str(short), "--out", str(tmp_path / "out")]) == 2
    err = one_line_error(capsys)
    assert "expected speech for three turns of at least 3 s each" in err and "got 0.5 s" in err
    assert "connecting" not in capsys.readouterr().out


@pytest.mark.skipif(tts_installed(), reason="the tts extra is installed here")
def test_say_without_the_tts_extra_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--say", "Hello.", "--out", str(tmp_path)]) == 2
    assert "--say: expected the tts extra" in one_line_error(capsys)


def test_serve_with_a_missing_input_exits_2_before_binding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--input", "/no/such/file.mp3"]) == 2
    assert "--input: expected an audio file, got no file at /no/such/file.mp3" in one_line_error(capsys)


def test_serve_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--no-background"]) == 2
    assert "serve failed:" in one_line_error(capsys)


def test_version_and_exit_statuses_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_audio.__version__
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"agent_audio {agent_audio.__version__}\n"
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = capsys.readouterr().out
    assert "exit status:" in help_text and "a check on the received audio failed" in help_text
    assert "from 0.1 to 1.0" in help_text


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent_audio", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("agent_audio "), done
