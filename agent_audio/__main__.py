"""Command line: ``python -m agent_audio demo [--input FILE | --say TEXT] [--out DIR]`` and ``serve [--port N]``."""

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
    page = commands.add_parser("serve", help="a demo page that plays the agent in your browser (needs the serve extra)")
    page.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    page.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    page.add_argument("--max-sessions", type=int, default=4, help="peer connections at once (default 4)")
    page.add_argument("--input", type=Path, help="speech file for Speak (any format PyAV reads); default: bundled")
    page_bed = page.add_mutually_exclusive_group()
    page_bed.add_argument("--background", type=Path, help="background bed; default: bundled ambience")
    page_bed.add_argument("--no-background", action="store_true", help="no background")
    page.add_argument("--fade-out", type=float, default=0.2, help="interrupt fade in seconds (default 0.2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return _serve(args)

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


def _serve(args: argparse.Namespace) -> int:
    try:
        from ._server import ServeOptions, serve
    except ImportError as exc:
        print(f"serve needs aiohttp: pip install 'agent_audio[serve]' ({exc})", file=sys.stderr)
        return 2
    options = ServeOptions(
        host=args.host, port=args.port, max_sessions=args.max_sessions, fade_out=args.fade_out, input=args.input
    )
    if args.no_background or args.background is not None:
        options = replace(options, background=None if args.no_background else args.background)
    try:
        asyncio.run(serve(options, lambda line: print(line, flush=True)))
    except (OSError, ValueError) as exc:  # FileNotFoundError is an OSError
        print(f"serve failed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
