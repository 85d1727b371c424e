"""Speak the bundled sample to a listener over a real aiortc peer connection, then print what was heard.

Run: ``python examples/speak_over_webrtc.py``. Shows the everyday agent loop: start a
turn, stream decoded audio into it (here ``av.AudioFrame``s straight from PyAV's decoder,
48 kHz Opus; any format, rate and layout works), mark synthesis complete, await
playout, read the stats (``played_ms`` is what you would pass as ``audio_end_ms`` to
OpenAI Realtime's ``conversation.item.truncate`` after an interruption).
"""

from __future__ import annotations

import asyncio
from importlib import resources

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from agent_audio import AgentAudioTrack, PlayoutStarted, TurnFinished


def on_started(event: PlayoutStarted) -> None:
    print(f"turn {event.turn_id}: first audio after {event.time_to_first_audio * 1000:.0f} ms")


def on_finished(event: TurnFinished) -> None:
    print(f"turn {event.turn_id}: heard {event.stats.played_ms:.0f} ms of {event.stats.pushed_ms:.0f} ms pushed")


async def drain(remote: MediaStreamTrack) -> None:
    """Read the received frames, as the listener's playout would."""
    try:
        while True:
            await remote.recv()
    except MediaStreamError:
        return


async def main() -> None:
    track = AgentAudioTrack()  # 48 kHz mono s16, 20 ms frames
    track.on("playout_started", on_started)
    track.on("turn_finished", on_finished)

    agent, listener = (RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2))
    agent.addTrack(track)
    listener.on("track", lambda remote: asyncio.ensure_future(drain(remote)))
    await agent.setLocalDescription(await agent.createOffer())
    await listener.setRemoteDescription(agent.localDescription)
    await listener.setLocalDescription(await listener.createAnswer())
    await agent.setRemoteDescription(listener.localDescription)

    turn = track.start_turn()
    sample = resources.files("agent_audio") / "data" / "speech.ogg"
    with resources.as_file(sample) as path, av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            await turn.push(frame)
            if frame.time is not None and frame.time >= 5.0:  # the first 5 s are enough here
                break
    turn.end()
    stats = await turn.wait_for_playout()
    print(f"played {stats.played_samples} of {stats.pushed_samples} samples at {stats.sample_rate} Hz")
    await agent.close()
    await listener.close()


if __name__ == "__main__":
    asyncio.run(main())
