"""The encoded view of a track: what an ``RTCRtpSender`` reads once the track encodes its own output.

aiortc's ``RTCRtpSender`` hands an :class:`av.Packet` returned by ``recv()`` straight to
the negotiated codec's ``pack()``, taking the RTP timestamp from the packet's pts. The
view is the :class:`~aiortc.mediastreams.MediaStreamTrack` the sender reads instead of
the track (``sender.replaceTrack(view)``): its ``recv()`` is the track's own pacing and
playout, ending in the track's encoder instead of an :class:`av.AudioFrame`. The track
stays the object the application controls; the view holds no state of its own but
whether it was stopped.

Kept apart from the track so that ``AgentAudioTrack.recv()`` stays typed
``-> av.AudioFrame`` for everyone who never enables encoded output: the view is built
by the track (:meth:`AgentAudioTrack.encoded_view`), which hands it callables bound
to itself, and never reads the track's attributes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ._playout import FrameEncoder

__all__ = ["EncodedView"]

E = TypeVar("E", bound=FrameEncoder)


class EncodedView(MediaStreamTrack, Generic[E]):
    """An audio ``MediaStreamTrack`` whose ``recv()`` returns the track's output as encoded packets.

    Made by :func:`agent_audio.enable_opus_output` (or :meth:`AgentAudioTrack.encoded_view`);
    not constructed directly. Its :attr:`id` is the track's, so the sender's stats and
    the SDP's ``msid`` still name the track.

    Stopping the view stops the track (``RTCRtpSender.stop()``, hence
    ``RTCPeerConnection.close()``, stops the view), and stopping the track stops the view.

    Args:
        track_id: the track's id.
        produce: the track's next output, paced (a coroutine function returning the
            packet of the next frame; raises ``MediaStreamError`` once the track stopped).
        stop_track: stops the track.
        encoder: the encoder the track's playout ends in, exposed as :attr:`encoder`.
    """

    kind = "audio"

    def __init__(
        self,
        *,
        track_id: str,
        produce: Callable[[], Awaitable[av.AudioFrame | av.Packet[Any]]],
        stop_track: Callable[[], None],
        encoder: E,
    ) -> None:
        super().__init__()
        self._track_id = track_id
        self._produce = produce
        self._stop_track = stop_track
        self._encoder = encoder

    @property
    def id(self) -> str:
        """The id of the track this is a view of."""
        return self._track_id

    @property
    def encoder(self) -> E:
        """The encoder the track's frames end in (an :class:`~agent_audio.OpusPacketizer` for Opus output)."""
        return self._encoder

    async def recv(self) -> av.Packet[Any]:
        """The next frame's packet, when it is due on the track's pacing grid.

        Returns:
            A new :class:`av.Packet` carrying one frame (``frame_samples`` of the track),
            ``pts`` in the codec's RTP clock (48 kHz for Opus), ``time_base`` its
            inverse; continuous through pause, interrupt, underrun and re-anchor. After
            an internal fault, a packet of silence, never a frame.

        Raises:
            MediaStreamError: the view or the track was stopped.
        """
        if self.readyState != "live":
            raise MediaStreamError
        return cast("av.Packet[Any]", await self._produce())  # the track's playout ends in the encoder

    def stop(self) -> None:
        """Stop the view and the track (idempotent)."""
        if self.readyState == "live":
            super().stop()
            self._stop_track()

    def __repr__(self) -> str:
        return f"EncodedView(track {self._track_id}, {self._encoder!r}, {self.readyState})"
