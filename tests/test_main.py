"""The command line (agent_audio.__main__).

Guards: bad arguments exit with a message and no traceback, before any network work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_audio.__main__ import main


def test_missing_input_file_exits_2_with_its_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--input", "/no/such/file.mp3", "--out", str(tmp_path)]) == 2
    assert "demo failed: expected an audio file, got no file at /no/such/file.mp3" in capsys.readouterr().err


def test_input_and_say_are_exclusive() -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--input", "a.wav", "--say", "hi"])
    assert info.value.code == 2


def test_serve_with_a_missing_input_exits_2_before_binding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--input", "/no/such/file.mp3"]) == 2
    assert "serve failed: expected an audio file, got no file at /no/such/file.mp3" in capsys.readouterr().err


def test_serve_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--no-background"]) == 2
    assert "serve failed:" in capsys.readouterr().err
