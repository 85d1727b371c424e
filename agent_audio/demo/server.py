"""``python -m agent_audio serve``: a demo page that plays the agent's track in a browser.

An aiohttp server (aiortc on the server side, as in aiortc's ``examples/server``):

* ``GET /`` and ``GET /client.js``: the page, plain HTML and JavaScript.
* ``GET /user-clip.ogg``: the bundled user barge-in sentence the page can send back.
* ``POST /offer``: ``{"sdp": ..., "type": "offer"}`` in, ``{"session", "sdp", "type",
  "fade_out_ms", "tts", "background", "vad"}`` out. One SDP exchange, non-trickle ICE.
  The page's audio section is sendrecv: what it sends drives the barge-in policy when
  the ``vad`` extra is installed (``"vad": true``).
* ``POST /session/{id}/control``: ``{"action": "speak" | "pause" | "resume" |
  "interrupt" | "background", "text"?: str, "on"?: bool}``; answers with the state.
* ``GET /session/{id}/state?after=N``: connection, speaking, paused, the current
  turn's stats (with its heard text) and the events with a sequence number above N:
  ``word_played`` per word for live captions (``detail`` is the word), and
  ``turn_finished`` with the turn's final ``stats``.
* ``POST /session/{id}/close``: the page went away (``navigator.sendBeacon``).

Safe to leave running on a laptop: it binds 127.0.0.1 by default; request bodies are
capped at :data:`MAX_BODY` bytes (413 above it); malformed input (invalid or too deeply
nested JSON, an offer without a DTLS fingerprint or with impossible ports) gets 400
with a one-line reason, never a traceback, and takes no session; every error reply is
JSON ``{"error": reason}``; a client that hangs up mid-body is one log line; at most
``max_sessions`` peer
connections at once (503 above it); a session closes when its peer connection fails
or closes, when the page says it left, or when it has not connected within
:data:`~agent_audio.demo.session.CONNECT_TIMEOUT` seconds; SIGINT/SIGTERM close every
session and stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from agent_audio import AgentAudioError, AgentAudioTrack

from .run import AMBIENCE
from .session import Session, SessionOptions
from .speech import (
    Floats,
    bundled,
    check_audio_file,
    load_speech,
    loud_bounds,
    tts_installed,
    turn_bounds,
    vad_installed,
)
from .words import Word, bundled_words, words_in

__all__ = ["MAX_BODY", "MAX_TEXT", "ServeOptions", "load_turns", "make_app", "serve"]

logger = logging.getLogger(__name__)

#: Bytes of a request body: an SDP offer from Chromium or Firefox is 3-8 KB.
MAX_BODY = 64 * 1024
#: Characters of typed text for one spoken turn.
MAX_TEXT = 500
#: Sample rate of the speech the sessions push (the track resamples to 48 kHz itself).
SPEECH_RATE = 24000

#: The user's voice the page can send back (bundled in ``agent_audio/data``).
USER_CLIP = "user_barge_in.ogg"

_ACTIONS = ("speak", "pause", "resume", "interrupt", "background")


def _default_background() -> Path:
    return bundled(AMBIENCE)


@dataclass(frozen=True)
class ServeOptions:
    """Options of ``python -m agent_audio serve``.

    ``port`` 0 picks a free port. ``fade_out`` is the interrupt fade in seconds.
    ``input`` is the speech file (any format PyAV reads; None: the bundled sample),
    cut into three turns at its longest pauses. ``background`` is the bed mixed under
    the voice (None: none).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    max_sessions: int = 4
    fade_out: float = 0.2
    input: Path | None = None
    background: Path | None = field(default_factory=_default_background)


_SESSIONS = web.AppKey("sessions", dict[str, Session])
_OPTIONS = web.AppKey("options", ServeOptions)
_SHARED = web.AppKey("shared", SessionOptions)


def load_turns(path: Path | None) -> tuple[tuple[Floats, ...], tuple[tuple[Word, ...], ...]]:
    """The speech cut into turns with their quiet edges trimmed, and (bundled sample only) each turn's words."""
    speech = load_speech(path, rate=SPEECH_RATE)
    words = bundled_words() if path is None else None
    turns: list[Floats] = []
    turn_words: list[tuple[Word, ...]] = []
    for start, end in turn_bounds(speech, SPEECH_RATE):
        low, high = loud_bounds(speech[start:end], SPEECH_RATE)
        if high > low:
            turns.append(speech[start + low : start + high])
            if words is not None:  # seconds from the trimmed turn's first sample (a last word may end past it)
                shift = low / SPEECH_RATE
                within = words_in(words, start / SPEECH_RATE, end / SPEECH_RATE)
                turn_words.append(tuple((w, round(max(0.0, s - shift), 6), round(e - shift, 6)) for w, s, e in within))
    return tuple(turns), tuple(turn_words)


def _shared(options: ServeOptions) -> SessionOptions:
    """Decode the speech once for every session; check the background decodes."""
    turns, words = load_turns(options.input)
    if not turns:
        raise ValueError(f"expected speech louder than -40 dBFS in {options.input or 'the bundled sample'}, got none")
    if options.background is not None:  # fail at start, not in the first session
        check_audio_file(options.background)
    try:  # the library's own check of fade_out, at start rather than in every offer
        AgentAudioTrack(fade_out=options.fade_out).stop()
    except AgentAudioError as exc:
        raise ValueError(f"--fade-out: {exc}") from None
    return SessionOptions(
        turns=turns,
        rate=SPEECH_RATE,
        fade_out=options.fade_out,
        background=options.background,
        background_volume=1.0,
        tts=tts_installed(),
        vad=vad_installed(),
        words=words,
    )


def make_app(options: ServeOptions) -> web.Application:
    """The aiohttp application: routes, limits, and closing every session on shutdown.

    Raises:
        FileNotFoundError: ``options.input`` or ``options.background`` does not exist.
        ValueError: the speech or background is not audio (``AudioFileError``), the
            speech has nothing above -40 dBFS, or an option is out of range.
    """
    if options.max_sessions < 1:
        raise ValueError(f"expected max_sessions >= 1, got {options.max_sessions}")
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_json_errors])
    app[_OPTIONS] = options
    app[_SHARED] = _shared(options)
    app[_SESSIONS] = {}
    app.router.add_get("/", _page("index.html", "text/html"))
    app.router.add_get("/client.js", _page("client.js", "text/javascript"))
    app.router.add_get("/user-clip.ogg", _user_clip)
    app.router.add_post("/offer", _offer)
    app.router.add_post("/session/{id}/control", _control)
    app.router.add_get("/session/{id}/state", _state)
    app.router.add_post("/session/{id}/close", _close)
    app.on_shutdown.append(_close_all)
    return app


def _page(name: str, content_type: str) -> Callable[[web.Request], Any]:
    body = (resources.files("agent_audio.demo") / "web" / name).read_text(encoding="utf-8")

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type=content_type, headers={"Cache-Control": "no-store"})

    return handler


async def _user_clip(request: web.Request) -> web.FileResponse:
    return web.FileResponse(bundled(USER_CLIP), headers={"Content-Type": "audio/ogg"})


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """Every error reply is JSON ``{"error": reason}``, aiohttp's own too (413, 404 route, 405)."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            reason = f"expected a body of at most {MAX_BODY} bytes, got more"
        return web.json_response({"error": reason}, status=exc.status, headers=_allow(exc))
    return response


def _allow(exc: web.HTTPException) -> dict[str, str]:
    """The ``Allow`` header a 405 must keep."""
    return {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body. Raises 400 for anything else, 413 above MAX_BODY."""
    try:
        raw = await request.read()  # aiohttp raises HTTPRequestEntityTooLarge (413) above client_max_size
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError too: nobody is left to answer
        logger.warning("%s hung up before sending its whole %s body", request.remote, request.path)
        raise web.HTTPBadRequest() from None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"expected a JSON body, got invalid JSON ({exc})") from None
    except RecursionError:
        raise _bad("expected a JSON body, got one nested too deeply to parse") from None
    if not isinstance(body, dict):
        raise _bad(f"expected a JSON object, got {type(body).__name__}")
    return body


def _check_offer(sdp: str) -> None:
    """Refuse an offer aiortc would answer but never connect, before it takes a session.

    aiortc answers an offer without a DTLS fingerprint, or with a candidate port above
    65535, and only fails later, in a background task nobody awaits.

    Raises:
        web.HTTPBadRequest: the SDP does not parse, or an audio section has no
            ``a=fingerprint``, no ICE credentials, or a port outside 0-65535.
    """
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's SDP parser raises assorted types for untrusted input
        raise _bad(f"expected an SDP offer aiortc can parse, got one it rejected: {exc!r}"[:300]) from None
    audio = [m for m in parsed.media if m.kind == "audio"]
    if not audio:
        raise _bad('expected "sdp": an SDP offer with an audio section (m=audio)')
    for media in audio:
        if media.dtls is None or not media.dtls.fingerprints:
            raise _bad("expected an a=fingerprint line (DTLS) in the offer's audio section, got none")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise _bad("expected a=ice-ufrag and a=ice-pwd in the offer's audio section, got none")
        ports = [media.port, *(c.port for c in media.ice_candidates)]
        if any(not 0 <= port <= 65535 for port in ports):
            raise _bad(f"expected ports from 0 to 65535 in the offer's audio section, got {max(ports)}")


async def _offer(request: web.Request) -> web.Response:
    body = await _json_object(request)
    sdp, kind = body.get("sdp"), body.get("type")
    if kind != "offer":
        raise _bad(f'expected "type": "offer", got {kind!r}')
    if not isinstance(sdp, str) or "m=audio" not in sdp:
        raise _bad('expected "sdp": an SDP offer with an audio section (m=audio)')
    _check_offer(sdp)
    sessions = request.app[_SESSIONS]
    limit = request.app[_OPTIONS].max_sessions
    if len(sessions) >= limit:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": f"expected at most {limit} sessions at once, got one more; close a page"}),
            content_type="application/json",
        )
    session_id = secrets.token_urlsafe(9)
    session = Session(session_id, request.app[_SHARED], lambda s: sessions.pop(s.id, None))
    sessions[session_id] = session
    try:
        answer = await session.answer(RTCSessionDescription(sdp=sdp, type="offer"))
    except Exception as exc:  # aiortc's SDP parser raises assorted types for untrusted input
        await session.close()
        logger.info("rejected an offer: %r", exc)
        raise _bad(f"expected an SDP offer aiortc can answer, got one it rejected: {exc!r}"[:300]) from None
    shared = request.app[_SHARED]
    return web.json_response(
        {
            "session": session_id,
            "sdp": answer.sdp,
            "type": answer.type,
            "fade_out_ms": round(shared.fade_out * 1000),
            "tts": shared.tts,
            "background": shared.background is not None,
            "vad": shared.vad,
        }
    )


def _session(request: web.Request) -> Session:
    session = request.app[_SESSIONS].get(request.match_info["id"])
    if session is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such session (closed?)"}), content_type="application/json")
    return session


async def _control(request: web.Request) -> web.Response:
    session = _session(request)
    body = await _json_object(request)
    action = body.get("action")
    if action not in _ACTIONS:
        raise _bad(f"expected action in {list(_ACTIONS)}, got {action!r}")
    if action == "speak":
        text = body.get("text")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            raise _bad(f"expected text as a string of at most {MAX_TEXT} characters, got {type(text).__name__}")
        if text and not request.app[_SHARED].tts:
            raise _bad("expected no text: typed text needs the tts extra (pip install 'agent_audio[tts]')")
        session.speak(text.strip() if text else None)
    elif action == "background":
        on = body.get("on")
        if not isinstance(on, bool):
            raise _bad(f'expected "on": true or false, got {on!r}')
        session.set_background(on)
    else:
        getattr(session, action)()
    return web.json_response(session.state(_after(request)))


def _after(request: web.Request) -> int:
    raw = request.query.get("after", "0")
    if not raw.isdigit() or len(raw) > 12:
        raise _bad(f"expected after as a non-negative integer, got {raw[:20]!r}")
    return int(raw)


async def _state(request: web.Request) -> web.Response:
    return web.json_response(_session(request).state(_after(request)))


async def _close(request: web.Request) -> web.Response:
    session = request.app[_SESSIONS].get(request.match_info["id"])
    if session is not None:
        await session.close()
    return web.Response(status=204)


async def _close_all(app: web.Application) -> None:
    await asyncio.gather(*(s.close() for s in list(app[_SESSIONS].values())))


async def serve(options: ServeOptions, announce: Callable[[str], None]) -> None:
    """Run the server until SIGINT or SIGTERM, then close every session and return.

    ``announce`` receives one line with the page's URL once it is listening.

    Raises:
        OSError: the address is in use or cannot be bound.
        FileNotFoundError, ValueError: see :func:`make_app`.
    """
    runner = web.AppRunner(make_app(options), handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises KeyboardInterrupt instead
            loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, options.host, options.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        announce(f"agent_audio demo page: http://{shown}:{port}/  (Ctrl-C to stop)")
        await stop.wait()
        announce("stopping: closing sessions")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
        await runner.cleanup()
