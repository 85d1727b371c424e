"""Encoded output: the track-owned Opus encoder, the encoded view, and enable_opus_output. Manual clock.

Guards: packets carry the frame's pts in the 48 kHz RTP clock with time_base 1/48000
(aiortc's ``pack()`` reads those), also for a 16 kHz track; digital silence becomes the
encoder's own settled 3-byte packet (``F8 FF FE`` mono, ``FC FF FE`` stereo) only after
the hangover, and is decoded to exact zeros; the never-failing fallback silence packet is
that same packet for every frame duration; speech after a cached silence decodes as
well as if every frame had been encoded (no click at the onset); bad options raise
InvalidAudioError naming expected against got. The encoded view returns packets paced
by the track, pts continuous through pause, resume and interrupt, stages still seeing
every frame, ``track.recv()`` refused; stopping either stops both; a fault (even in the
encoder) still sends a silence packet at the right pts. ``enable_opus_output`` swaps the
sender to the view, and refuses, changing nothing, a sender that negotiated PCMU, a
track that already sent a frame, a track that is not agent_audio's, or an unfinished
negotiation.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender

from agent_audio import (
    AgentAudioTrack,
    EncodedOutputError,
    EncodedView,
    InvalidAudioError,
    OpusPacketizer,
    OutputFrame,
    TrackClosedError,
    enable_opus_output,
)
from agent_audio.demo.speech import load_speech
from agent_audio.testing import ManualClock

Pcm = npt.NDArray[np.int16]


def speech_blocks(count: int, *, speech: int = 25, silence: int = 25) -> list[Pcm]:
    """``count`` 20 ms mono blocks at 48 kHz: ``speech`` frames of speech, ``silence`` of zeros, repeated."""
    pcm = (np.clip(load_speech(None, rate=48000), -1, 1) * 32767).astype(np.int16)
    period = speech + silence
    return [
        pcm[(k + 100) * 960 : (k + 101) * 960, None].copy() if k % period < speech else np.zeros((960, 1), np.int16)
        for k in range(count)
    ]


def decode(packets: list[av.Packet[Any]], layout: str = "mono") -> npt.NDArray[np.float64]:
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate, decoder.layout, decoder.format = 48000, layout, "s16"
    out = [f.to_ndarray().reshape(-1) for p in packets for f in decoder.decode(av.Packet(bytes(p)))]
    return np.concatenate(out).astype(np.float64)


def snr_db(decoded: npt.NDArray[np.float64], original: npt.NDArray[np.float64], delay: int) -> float:
    n = len(original) - delay
    error = decoded[delay : delay + n] - original[:n]
    return float(10 * np.log10(np.dot(original[:n], original[:n]) / np.dot(error, error)))


def test_packets_carry_the_frame_pts_in_the_48k_rtp_clock() -> None:
    packetizer = OpusPacketizer()
    blocks = speech_blocks(5)
    packets = [packetizer.emit(b, 960 * (k + 7)) for k, b in enumerate(blocks)]
    assert [p.pts for p in packets] == [960 * (k + 7) for k in range(5)]
    assert all(p.time_base == Fraction(1, 48000) for p in packets)
    assert len({id(p) for p in packets}) == 5


def test_silence_becomes_the_settled_three_byte_packet_after_the_hangover() -> None:
    packetizer = OpusPacketizer(silence_hangover_frames=3)
    blocks = speech_blocks(40, speech=20, silence=20)
    packets = [bytes(packetizer.emit(b, 960 * k)) for k, b in enumerate(blocks)]
    silent = packets[20:]
    assert len(silent[0]) > 3  # the first silent frame's packet carries the lookahead's speech
    assert silent[3:] == [b"\xf8\xff\xfe"] * 17
    stats = packetizer.stats()
    # encoded: the speech, the 3 hangover frames, and until two silence packets in a row agree
    assert 23 <= stats.encoded <= 25
    assert stats.encoded + stats.silence == 40
    assert not decode([av.Packet(p) for p in packets])[960 * 24 :].any()  # decoded silence is exact zeros


def test_stereo_silence_packet_is_fc_ff_fe() -> None:
    packetizer = OpusPacketizer(channels=2)
    zeros = np.zeros((960, 2), np.int16)
    packets = [bytes(packetizer.emit(zeros, 960 * k)) for k in range(6)]
    assert packets[-1] == b"\xfc\xff\xfe"
    assert packetizer.stats().silence >= 2


def test_speech_after_cached_silence_decodes_like_every_frame_encoded() -> None:
    blocks = speech_blocks(300)
    original = np.concatenate(blocks).reshape(-1).astype(np.float64)
    reference_encoder = OpusPacketizer(silence_hangover_frames=1000)  # never caches
    reference = decode([reference_encoder.emit(b, 960 * k) for k, b in enumerate(blocks)])
    packetizer = OpusPacketizer()
    decoded = decode([packetizer.emit(b, 960 * k) for k, b in enumerate(blocks)])
    assert packetizer.stats().silence > 100
    delay = 312  # libopus's lookahead at 48 kHz, the decoded signal's delay
    assert snr_db(decoded, original, delay) > snr_db(reference, original, delay) - 0.2
    for onset in range(50, 300, 50):  # the first frames of each reply after cached silence
        window = slice(960 * onset, 960 * (onset + 3))
        error = np.abs(decoded[window] - reference[window]).max()
        assert error < 0.25 * np.abs(reference[window]).max()
        assert not decoded[960 * onset - 960 : 960 * onset].any()  # nothing before speech: no click


def test_a_16k_track_is_resampled_and_stamped_in_48k() -> None:
    packetizer = OpusPacketizer(sample_rate=16000, frame_samples=320)
    t = np.arange(320 * 50) / 16000
    tone = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)[:, None]
    packets = [packetizer.emit(tone[320 * k : 320 * (k + 1)], 320 * k) for k in range(50)]
    assert [p.pts for p in packets] == [960 * k for k in range(50)]
    decoded = decode(packets)
    assert len(decoded) == 960 * 50
    spectrum = np.abs(np.fft.rfft(decoded[48000 // 5 :]))
    peak_hz = np.argmax(spectrum) * 48000 / len(decoded[48000 // 5 :])
    assert abs(peak_hz - 1000) < 10
    assert packetizer.stats().padded == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"frame_samples": 1200}, "expected a frame of 2.5, 5, 10, 20, 40 or 60 ms, got 1200 samples"),
        ({"channels": 3}, "expected channels as an int from 1 to 2, got 3"),
        ({"bitrate": 1000}, "expected bitrate as an int from 6000 to 510000, got 1000"),
        ({"silence_hangover_frames": 0}, "expected silence_hangover_frames as an int from 1 to 1000, got 0"),
    ],
)
def test_bad_options_name_expected_and_got(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidAudioError, match=message):
        OpusPacketizer(**options)


def test_wrong_block_shape_is_refused() -> None:
    with pytest.raises(InvalidAudioError, match=r"expected int16 samples of shape \(960, 1\), got int16 \(480, 1\)"):
        OpusPacketizer().emit(np.zeros((480, 1), np.int16), 0)


def test_fallback_silence_packet_is_what_the_encoder_settles_on() -> None:
    for channels in (1, 2):
        for frame in (120, 240, 480, 960, 1920, 2880):
            packetizer = OpusPacketizer(channels=channels, frame_samples=frame)
            zeros = np.zeros((frame, channels), np.int16)
            settled = [bytes(packetizer.emit(zeros, frame * k)) for k in range(6)][-1]
            assert len(settled) == {1920: 5, 2880: 8}.get(frame, 3)  # a TOC byte and FF FE per CELT frame
            fallback = packetizer.silence(frame * 6)
            assert bytes(fallback) == settled and fallback.pts == frame * 6


class Seen:
    """An output stage that keeps the pts of every frame it sees."""

    def __init__(self) -> None:
        self.pts: list[int] = []

    def process(self, frame: OutputFrame) -> OutputFrame:
        self.pts.append(frame.pts)
        return frame


async def test_encoded_view_paces_the_track_and_stamps_packets_from_its_pts() -> None:
    seen = Seen()
    track = AgentAudioTrack(clock=ManualClock(), stages=[seen])
    view = track.encoded_view(OpusPacketizer())
    assert isinstance(view, EncodedView) and view.kind == "audio" and view.id == track.id
    turn = track.start_turn()
    await turn.push(np.concatenate(speech_blocks(50, speech=50, silence=0)))
    turn.end()
    packets = [await view.recv() for _ in range(10)]
    track.pause()
    packets += [await view.recv() for _ in range(10)]
    track.resume()
    packets += [await view.recv() for _ in range(10)]
    track.interrupt()
    packets += [await view.recv() for _ in range(30)]
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [p.pts for p in packets] == [960 * k for k in range(60)]
    assert seen.pts == [960 * k for k in range(60)]  # the stages still see every frame
    assert track.metrics().frames_sent == 60
    assert turn.stats.interrupted
    assert view.encoder.stats().silence > 0  # the pause and the tail after the fade
    with pytest.raises(EncodedOutputError, match="expected recv\\(\\) on the track's encoded view"):
        await track.recv()
    track.stop()


async def test_stopping_the_view_stops_the_track_and_back() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    view = track.encoded_view(OpusPacketizer())
    view.stop()
    assert track.readyState == "ended" and view.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await view.recv()
    track = AgentAudioTrack(clock=ManualClock())
    view = track.encoded_view(OpusPacketizer())
    await view.recv()
    track.stop()
    assert view.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await view.recv()
    with pytest.raises(TrackClosedError):
        track.encoded_view(OpusPacketizer())


class Broken(OpusPacketizer):
    """Fails to encode from call ``after`` on."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.calls = 0

    def emit(self, samples: npt.NDArray[np.int16], pts: int) -> av.Packet[Any]:
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("encoder broke")
        return super().emit(samples, pts)


async def test_a_fault_on_the_encoded_path_still_sends_a_silence_packet(caplog: pytest.LogCaptureFixture) -> None:
    track = AgentAudioTrack(clock=ManualClock())
    view = track.encoded_view(Broken(after=3))
    turn = track.start_turn()
    await turn.push(np.concatenate(speech_blocks(20, speech=20, silence=0)))
    packets = [await view.recv() for _ in range(8)]
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [p.pts for p in packets] == [960 * k for k in range(8)]
    assert [bytes(p) for p in packets[3:]] == [b"\xf8\xff\xfe"] * 5
    assert track.metrics().frames_sent == 8
    assert "fault" in caplog.text
    track.stop()


async def test_encoded_view_refuses_a_track_that_sent_frames_or_is_encoded() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    await track.recv()
    with pytest.raises(EncodedOutputError, match="expected a track that has not sent a frame yet, got 1 frames sent"):
        track.encoded_view(OpusPacketizer())
    track.stop()
    track = AgentAudioTrack(clock=ManualClock())
    track.encoded_view(OpusPacketizer())
    with pytest.raises(EncodedOutputError, match="expected a track whose output is not encoded yet"):
        track.encoded_view(OpusPacketizer())
    track.stop()


async def negotiate(
    track: MediaStreamTrack, *, pcmu_only: bool = False
) -> tuple[RTCPeerConnection, RTCPeerConnection, RTCRtpSender]:
    offerer, answerer = (RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2))
    sender = offerer.addTrack(track)
    if pcmu_only:
        transceiver = offerer.getTransceivers()[0]
        caps = RTCRtpSender.getCapabilities("audio")
        transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "audio/PCMU"])
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    return offerer, answerer, sender


async def test_enable_opus_output_swaps_the_sender_to_the_tracks_view() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    offerer, answerer, sender = await negotiate(track)
    try:
        with pytest.raises(EncodedOutputError, match="expected a sender of this peer connection"):
            enable_opus_output(answerer, sender)
        view = enable_opus_output(offerer, sender, bitrate=64000, complexity=5)
        assert sender.track is view and view.id == track.id
        assert isinstance(view.encoder, OpusPacketizer)
        with pytest.raises(EncodedOutputError, match="expected a sender whose track is an agent_audio track"):
            enable_opus_output(offerer, sender)  # twice: the sender now reads the view
        assert isinstance(await view.recv(), av.Packet)
    finally:
        await offerer.close()
        await answerer.close()
        track.stop()


async def test_enable_opus_output_refuses_a_pcmu_sender() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    offerer, answerer, sender = await negotiate(track, pcmu_only=True)
    try:
        with pytest.raises(EncodedOutputError, match="expected audio/opus negotiated for this sender, got audio/PCMU"):
            enable_opus_output(offerer, sender)
        assert sender.track is track
        assert isinstance(await track.recv(), av.AudioFrame)  # nothing changed
    finally:
        await offerer.close()
        await answerer.close()


async def test_enable_opus_output_refuses_a_track_that_already_sent_frames() -> None:
    track = AgentAudioTrack(clock=ManualClock())
    offerer, answerer, sender = await negotiate(track)
    try:
        await track.recv()  # aiortc's encoder would have stamped this frame from its own count
        with pytest.raises(EncodedOutputError, match="expected a track that has not sent a frame yet, got 1 frames"):
            enable_opus_output(offerer, sender)
        assert sender.track is track
    finally:
        await offerer.close()
        await answerer.close()


async def test_enable_opus_output_refuses_other_tracks_and_unfinished_negotiation() -> None:
    offerer, answerer, sender = await negotiate(AudioStreamTrack())
    try:
        with pytest.raises(EncodedOutputError, match="expected a sender whose track is an agent_audio track, got"):
            enable_opus_output(offerer, sender)
    finally:
        await offerer.close()
        await answerer.close()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTrack(AgentAudioTrack(clock=ManualClock()))
    try:
        with pytest.raises(EncodedOutputError, match="expected a finished negotiation"):
            enable_opus_output(pc, sender)
    finally:
        await pc.close()


async def test_enable_opus_output_for_an_agent_that_answers() -> None:
    caller, agent = (RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2))
    caller.addTransceiver("audio", direction="recvonly")
    track = AgentAudioTrack(clock=ManualClock())
    try:
        await caller.setLocalDescription(await caller.createOffer())
        await agent.setRemoteDescription(caller.localDescription)
        sender = agent.addTrack(track)
        await agent.setLocalDescription(await agent.createAnswer())
        view = enable_opus_output(agent, sender)
        assert sender.track is view
    finally:
        await caller.close()
        await agent.close()
        track.stop()
