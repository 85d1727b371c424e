"""A real aiortc peer connection on this machine, and a listener that records what arrives.

Two :class:`aiortc.RTCPeerConnection` in one event loop: the agent side sends a track,
the listener side receives it. Real ICE (host candidates, no STUN server: nothing leaves
the machine), DTLS-SRTP and Opus. aioice never offers 127.0.0.1, so the candidates are
this machine's own interface addresses.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["Listener", "Loopback", "ReceivedAudio"]


@dataclass
class ReceivedAudio:
    """What the listener received, in arrival order.

    ``samples`` is float32 mono in [-1, 1] (channels averaged), shape ``(n,)``, at
    ``sample_rate`` Hz; ``arrivals[i]`` is the :func:`time.monotonic` second at which
    the frame starting at ``starts[i]`` (an index into ``samples``) was delivered.
    """

    sample_rate: int
    samples: npt.NDArray[np.float32]
    starts: npt.NDArray[np.int64]
    arrivals: npt.NDArray[np.float64]

    def times(self) -> npt.NDArray[np.float64]:
        """Monotonic arrival time of every sample: its frame's arrival plus its offset in the frame."""
        index = np.arange(len(self.samples))
        frame = np.searchsorted(self.starts, index, side="right") - 1
        return self.arrivals[frame] + (index - self.starts[frame]) / self.sample_rate


@dataclass
class Listener:
    """Records every frame a remote audio track delivers, with its arrival time."""

    frames: list[tuple[float, npt.NDArray[np.float32]]] = field(default_factory=list)
    sample_rate: int = 48000
    _task: asyncio.Task[None] | None = None

    def attach(self, track: MediaStreamTrack) -> None:
        """Start reading ``track`` in a task."""
        self._task = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.AudioFrame):
                self.record(frame)

    def record(self, frame: av.AudioFrame) -> None:
        """Keep one received s16 frame (any layout) as mono float, stamped with its arrival time now."""
        pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).astype(np.float32)
        self.sample_rate = frame.sample_rate
        self.frames.append((time.monotonic(), pcm.mean(axis=1) / 32768.0))

    async def close(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def received(self) -> ReceivedAudio:
        """Everything received so far, concatenated."""
        lengths = [len(pcm) for _, pcm in self.frames]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64)
        samples = np.concatenate([pcm for _, pcm in self.frames]) if self.frames else np.zeros(0, np.float32)
        arrivals = np.array([t for t, _ in self.frames], dtype=np.float64)
        return ReceivedAudio(self.sample_rate, samples.astype(np.float32), starts, arrivals)


class Loopback:
    """An agent peer connection sending ``track`` to a listener peer connection.

    Use as ``async with Loopback(track) as loop: ...``; the listener is ``loop.listener``.
    With ``reply``, the listener also sends that track back on the same audio
    transceiver (sendrecv): the agent side's received track is ``loop.reply_received``.

    Raises:
        RuntimeError: on entry, if the connection does not come up within ``timeout``
            seconds (for example a machine with no network interface but loopback,
            which aioice does not use).
    """

    def __init__(
        self, track: MediaStreamTrack, *, reply: MediaStreamTrack | None = None, timeout: float = 10.0
    ) -> None:
        config = RTCConfiguration(iceServers=[])  # host candidates only: stay on this machine
        self.agent = RTCPeerConnection(config)
        self.remote = RTCPeerConnection(config)
        self.listener = Listener()
        self._track = track
        self._reply = reply
        self._timeout = timeout
        self.reply_received: MediaStreamTrack | None = None
        """The agent side's remote track (what the listener sends back), once negotiated."""

    async def __aenter__(self) -> Loopback:
        connected = asyncio.Event()
        self.remote.on("track", self.listener.attach)

        @self.agent.on("track")
        def _reply(track: MediaStreamTrack) -> None:
            self.reply_received = track

        @self.agent.on("connectionstatechange")
        def _state() -> None:
            if self.agent.connectionState == "connected":
                connected.set()

        self.agent.addTrack(self._track)
        await self.agent.setLocalDescription(await self.agent.createOffer())
        if "typ host" not in self.agent.localDescription.sdp:
            await self.close()
            raise RuntimeError("no ICE host candidate: this machine has no network interface besides loopback")
        await self.remote.setRemoteDescription(self.agent.localDescription)
        if self._reply is not None:
            self.remote.addTrack(self._reply)  # takes the offered transceiver: sendrecv
        await self.remote.setLocalDescription(await self.remote.createAnswer())
        await self.agent.setRemoteDescription(self.remote.localDescription)
        try:
            await asyncio.wait_for(connected.wait(), self._timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise RuntimeError(f"peer connection not connected after {self._timeout} s") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close both peer connections and stop the listener."""
        await self.listener.close()
        await self.agent.close()
        await self.remote.close()
