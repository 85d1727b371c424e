"""Encoded output only where it is safe: an ``RTCRtpSender`` that negotiated Opus.

aiortc's sender hands a packet returned by ``recv()`` to the negotiated codec's
``pack()`` unchecked: with PCMU, PCMA or G.722 negotiated, Opus bytes would go out as
that codec's payload and the listener would hear noise, with no error anywhere. A
track cannot see which sender reads it, so the check needs the peer connection: the
codec a sender uses is the first one of its m-section in the *answer* (aiortc and
browsers both send the first common codec of the answer), read here from the public
session descriptions.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.sdp import SessionDescription

from ._encoded_view import EncodedView
from ._errors import EncodedOutputError
from ._opus import OpusPacketizer
from ._track import AgentAudioTrack

__all__ = ["enable_opus_output", "negotiated_codec"]


def negotiated_codec(pc: RTCPeerConnection, sender: RTCRtpSender) -> str:
    """The MIME type ``sender`` sends with, from the answer of ``pc``'s negotiation.

    Args:
        pc: the peer connection that owns ``sender``, after ``setRemoteDescription``
            (offerer) or ``setLocalDescription`` of the answer (answerer).
        sender: one of ``pc.getSenders()``.

    Returns:
        The codec's MIME type as the SDP spells it, for example ``"audio/opus"``.

    Raises:
        EncodedOutputError: ``sender`` is not one of ``pc``'s, there is no answer yet,
            or the answer has no codec for the sender's m-section.
    """
    transceiver = next((t for t in pc.getTransceivers() if t.sender is sender), None)
    if transceiver is None:
        raise EncodedOutputError("expected a sender of this peer connection, got one it does not own")
    local, remote = pc.localDescription, pc.remoteDescription
    answer = local if local is not None and local.type == "answer" else remote
    if answer is None or answer.type != "answer" or transceiver.mid is None:
        raise EncodedOutputError("expected a finished negotiation (an answer applied), got none yet")
    for media in SessionDescription.parse(answer.sdp).media:
        if media.rtp.muxId == transceiver.mid:
            codecs = [c for c in media.rtp.codecs if c.name.lower() != "rtx"]
            if not codecs or media.port == 0:
                raise EncodedOutputError(f"expected a codec for mid {transceiver.mid}, got a rejected m-section")
            return codecs[0].mimeType
    raise EncodedOutputError(f"expected an m-section for mid {transceiver.mid} in the answer, got none")


def enable_opus_output(
    pc: RTCPeerConnection,
    sender: RTCRtpSender,
    *,
    bitrate: int = 96000,
    complexity: int = 10,
    fec: bool = False,
    packet_loss_percent: int = 0,
    silence_hangover_frames: int = 3,
) -> EncodedView[OpusPacketizer]:
    """Send the track of ``sender`` as Opus packets the track encodes itself, on the event loop.

    Call after negotiation (the answer applied) and before the track's first frame:
    aiortc starts reading once ICE and DTLS are up, well after ``setRemoteDescription``
    returns, so right after it is the place. Checks that ``sender`` negotiated Opus and
    that its track is an :class:`~agent_audio.AgentAudioTrack` (or a subclass) that
    has not sent a frame, then has the track end its playout in an
    :class:`~agent_audio.OpusPacketizer` and swaps what the sender reads
    (``sender.replaceTrack(view)``) to the track's :class:`~agent_audio.EncodedView`.
    The track stays the object you control: push, pause, interrupt, events, metrics,
    the recorder, stages and taps are unchanged; only ``track.recv()`` refuses from now
    on (the sender reads the view).

    What changes on the wire and in CPU: each packet is stamped from the track's pts,
    so RTP time stays continuous through pause, interrupt, underrun and re-anchor;
    digital silence, after ``silence_hangover_frames`` encoded frames, is one cached
    3-byte packet sent without encoding; aiortc's executor hand-off per frame and its
    pure-Python audio level go away. No ``ssrc-audio-level`` header extension (RFC 6464)
    is sent: aiortc computes it only for frames and has no way to attach it to a
    packet. SFUs that pick the active speaker from it (mediasoup's
    ``AudioLevelObserver``, LiveKit, Jitsi's dominant speaker) will not count this
    sender as speaking; a browser peer plays the audio the same without it. Keep
    frames (do not call this) when the agent's audio goes through such an SFU and
    speaker detection matters.

    Args:
        pc: the peer connection that owns ``sender``.
        sender: the sender whose track is an agent_audio track (``pc.addTrack(track)``).
        bitrate: bit/s, 6000 to 510000; 96000 is aiortc's own (CELT-only speech at
            least as clean as with frames; digital silence settles to a 3-byte packet).
        complexity: libopus complexity, 0 to 10 (10, FFmpeg's and aiortc's default).
        fec: in-band forward error correction (SILK and hybrid modes only; off).
        packet_loss_percent: expected loss, 0 to 100, for FEC (0).
        silence_hangover_frames: all-zero frames still encoded before the cached
            silence packet is sent (3: the end of speech is flushed, no click).

    Details of every option: :class:`~agent_audio.OpusPacketizer`.

    Returns:
        The view the sender now reads; ``view.encoder.stats()`` counts encoded and
        cached silence packets.

    Raises:
        EncodedOutputError: ``sender`` is not one of ``pc``'s, negotiation has not
            finished, the negotiated codec is not Opus, the sender's track is not an
            agent_audio track (or encoded output is already on), or the track already
            sent a frame. Nothing changed.
        InvalidAudioError: an option is out of range, or the track's frame duration is
            not one Opus codes (2.5 to 60 ms). Nothing changed.
        TrackClosedError: the track was stopped.
    """
    codec = negotiated_codec(pc, sender)
    if codec.lower() != "audio/opus":
        raise EncodedOutputError(f"expected audio/opus negotiated for this sender, got {codec}")
    track = sender.track
    if not isinstance(track, AgentAudioTrack):
        raise EncodedOutputError(f"expected a sender whose track is an agent_audio track, got {track!r}")
    frames_sent = track.metrics().frames_sent
    if frames_sent:
        raise EncodedOutputError(f"expected a track that has not sent a frame yet, got {frames_sent} frames sent")
    if track.channels > 2:
        raise EncodedOutputError(f"expected a mono or stereo track for Opus output, got {track.channels} channels")
    packetizer = OpusPacketizer(
        sample_rate=track.sample_rate,
        channels=track.channels,
        frame_samples=track.frame_samples,
        bitrate=bitrate,
        complexity=complexity,
        fec=fec,
        packet_loss_percent=packet_loss_percent,
        silence_hangover_frames=silence_hangover_frames,
    )
    view = track.encoded_view(packetizer)
    sender.replaceTrack(view)
    return view
