"""Command line: ``python -m agent_audio demo [--input FILE | --say TEXT] [--out DIR]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path

from ._demo import DemoOptions, run_demo
from ._report import build_report, format_report, write_outputs


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status (1 when a demo check failed)."""
    parser = argparse.ArgumentParser(prog="python -m agent_audio", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="a scripted conversation over a real aiortc peer connection on this machine"
    )
    source = demo.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, help="speech file to use (any format PyAV reads); default: bundled")
    source.add_argument("--say", metavar="TEXT", help="synthesize TEXT with piper and stream it (needs the tts extra)")
    demo.add_argument("--out", type=Path, default=Path("agent_audio_demo"), help="output folder")
    bed = demo.add_mutually_exclusive_group()
    bed.add_argument("--background", type=Path, help="background bed to mix under the voice; default: bundled")
    bed.add_argument("--no-background", action="store_true", help="no background")
    demo.add_argument("--fade-out", type=float, default=0.2, help="interrupt fade in seconds (default 0.2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    options = DemoOptions(out=args.out, input=args.input, say=args.say, fade_out=args.fade_out)
    if args.no_background or args.background is not None:
        options = replace(options, background=None if args.no_background else args.background)
    try:
        run = asyncio.run(run_demo(options, lambda line: print(line, flush=True)))
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 2
    report = build_report(run)
    print(format_report(report))
    written = write_outputs(run, report, options.out)
    for path in written:
        print(f"wrote {path}")
    if not any(path.suffix == ".png" for path in written):
        print("waveform.png skipped: matplotlib is not installed (pip install 'agent_audio[demo]')")
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
