"""The end-to-end sessions benchmark (benchmarks/sessions.py) runs and reports every kind.

Guards (marked ``realclock``): ``--quick`` (2 sessions, 5 s) over real peer
connections in two processes prints one table row per kind (track, mixing, aiortc, opus,
mixing-opus) and the Opus/aiortc CPU ratio. It checks nothing about the numbers: they are measured,
not asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.realclock
def test_quick_run_reports_every_kind() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sessions.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert {"track", "mixing", "aiortc", "opus", "mixing-opus"} <= rows
    assert "session CPU opus / aiortc" in done.stdout
