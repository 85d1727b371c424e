"""A track-owned Opus encoder: the output stage that hands aiortc packets instead of frames.

aiortc's ``RTCRtpSender`` sends an :class:`av.Packet` returned by ``recv()`` as it is
(``Encoder.pack()``: the payload is the packet's bytes, the RTP timestamp is its pts
converted to the 48 kHz clock), skipping its own encoder, its executor hand-off and
its pure-Python audio-level loop. :class:`OpusPacketizer` makes those packets from the
track's final int16 blocks, stamped from the track's pts, so RTP time follows the
track through pause, interrupt, underrun and re-anchor.

Digital silence costs nothing after a short hangover: once the encoder's own output
for all-zero input has settled (two identical packets in a row, at least
``silence_hangover_frames`` into the silence), that packet is repeated without
encoding. Skipping the encoder there leaves it exactly where it was: its input
history and the resampler's are already all zero.

Pure: no asyncio, no clock. The negotiation check lives in ``_opus_sender``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from ._errors import InvalidAudioError

__all__ = ["OPUS_RATE", "OpusPacketizer", "OpusStats", "silence_payload"]

logger = logging.getLogger(__name__)

#: Opus's RTP clock rate and the rate its encoder runs at here (RFC 7587 section 4.1).
OPUS_RATE = 48000
_TIME_BASE = Fraction(1, OPUS_RATE)
#: Frame durations Opus can code, in samples at 48 kHz (RFC 6716 section 2.1.4): 2.5 to 60 ms.
_OPUS_FRAMES = {120: "2.5", 240: "5", 480: "10", 960: "20", 1920: "40", 2880: "60"}
#: Zeros put ahead of the first resampled block, in 48 kHz samples: absorbs the
#: +-1 sample wobble of a non-integer rate ratio (0.17 ms of latency).
_CUSHION = 8


@dataclass(frozen=True)
class OpusStats:
    """What an :class:`OpusPacketizer` has emitted so far."""

    encoded: int
    """Packets that went through the Opus encoder."""
    silence: int
    """Cached digital-silence packets sent without encoding."""
    padded: int
    """Samples (48 kHz, per channel) of zeros added because the resampler fell short; 0 normally."""


class OpusPacketizer:
    """Encodes the track's outgoing blocks to Opus packets for aiortc's ``RTCRtpSender``.

    A :class:`~agent_audio.FrameEncoder`: ``emit(samples, pts) -> av.Packet`` once per
    frame, in order, with the block the listener should hear; ``silence(pts)`` when that
    failed. Made by :func:`agent_audio.enable_opus_output`, which also checks the
    sender. Defaults are aiortc's own encoder settings (``aiortc/codecs/opus.py``:
    libopus, ``application=voip``, 96 kbit/s, FFmpeg's default complexity 10), but in
    mono when the track is mono: aiortc codes every track as stereo (a mono track as two
    identical channels sharing the bitrate), so mono packets spend all of it on the one
    channel and the received speech is, if anything, closer to what was sent (see the
    sessions benchmark's SNR). Packets of either channel count are valid in the
    ``opus/48000/2`` stream every SDP declares (RFC 7587: the channel count may change
    at any packet).

    There is no DTX option: FFmpeg's libopus wrapper exposes none, and a track cannot
    skip a packet (aiortc would send an empty payload). The cached silence packet is
    this stage's DTX: full packet rate, no encoder cost.

    Args:
        sample_rate: the track's sample rate (Hz). Not 48000: resampled to 48 kHz with
            PyAV's ``AudioResampler``, its state kept across frames.
        channels: 1 (mono packets) or 2 (stereo).
        frame_samples: samples per channel in one track frame; its duration must be one
            Opus can code (2.5, 5, 10, 20, 40 or 60 ms).
        bitrate: target bitrate (bit/s), 6000 to 510000 (libopus ``OPUS_SET_BITRATE``).
            96000 is aiortc's; at it libopus codes speech CELT-only and digital silence
            as the 3-byte packet ``F8 FF FE`` (mono; ``FC FF FE`` stereo). Lower
            rates (32000 is libwebrtc's mono default) use SILK/hybrid: less bandwidth,
            about twice the encode CPU, and silence packets that may settle later or
            not at all (then every silent frame is encoded).
        complexity: 0 to 10 (libopus ``OPUS_SET_COMPLEXITY``; FFmpeg's
            ``compression_level``, default 10). Lower is cheaper and slightly worse.
        fec: in-band forward error correction (libopus ``OPUS_SET_INBAND_FEC``; SILK and
            hybrid modes only). Off, as in aiortc and libopus.
        packet_loss_percent: expected loss, 0 to 100 (libopus
            ``OPUS_SET_PACKET_LOSS_PERC``); FEC spends bits only when this is above 0.
        silence_hangover_frames: all-zero frames still encoded before the cached
            silence packet may be used, so the encoder's lookahead (6.5 ms) and
            CELT's overlap flush the end of speech. At least 1.

    Raises:
        InvalidAudioError: an option is out of range, or the frame duration is not one
            Opus codes; the message names expected against got.
    """

    def __init__(
        self,
        *,
        sample_rate: int = OPUS_RATE,
        channels: int = 1,
        frame_samples: int = 960,
        bitrate: int = 96000,
        complexity: int = 10,
        fec: bool = False,
        packet_loss_percent: int = 0,
        silence_hangover_frames: int = 3,
    ) -> None:
        _check_int("sample_rate", sample_rate, 1, 10**6)
        _check_int("channels", channels, 1, 2)
        _check_int("frame_samples", frame_samples, 1, 10**6)
        _check_int("bitrate", bitrate, 6000, 510000)
        _check_int("complexity", complexity, 0, 10)
        _check_int("packet_loss_percent", packet_loss_percent, 0, 100)
        _check_int("silence_hangover_frames", silence_hangover_frames, 1, 1000)
        if not isinstance(fec, bool):
            raise InvalidAudioError(f"expected fec as a bool, got {fec!r}")
        samples_48k = Fraction(frame_samples * OPUS_RATE, sample_rate)
        if samples_48k.denominator != 1 or int(samples_48k) not in _OPUS_FRAMES:
            raise InvalidAudioError(
                "expected a frame of 2.5, 5, 10, 20, 40 or 60 ms, "
                f"got {frame_samples} samples at {sample_rate} Hz ({1000 * frame_samples / sample_rate:g} ms)"
            )
        self._rate = sample_rate
        self._channels = channels
        self._frame_samples = frame_samples
        self._frame_48k = int(samples_48k)
        self._layout = "mono" if channels == 1 else "stereo"
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.bit_rate = bitrate
        self._codec.format = "s16"
        self._codec.layout = self._layout
        self._codec.sample_rate = OPUS_RATE
        self._codec.time_base = _TIME_BASE
        self._codec.options = {
            "application": "voip",
            "compression_level": str(complexity),
            "frame_duration": _OPUS_FRAMES[self._frame_48k],
            "fec": "1" if fec else "0",
            "packet_loss": str(packet_loss_percent),
        }
        self._resampler = (
            None if sample_rate == OPUS_RATE else av.AudioResampler(format="s16", layout=self._layout, rate=OPUS_RATE)
        )
        self._silence_payload = silence_payload(self._frame_48k, channels)
        self._pending = np.zeros((0, channels), dtype=np.int16)  # resampled, not yet encoded
        self._primed = False
        self._hangover = silence_hangover_frames
        self._silent_run = 0  # all-zero frames in a row, this one included
        self._last_silence: bytes | None = None  # the encoder's packet for the previous silent frame
        self._cached: bytes | None = None  # the settled silence packet of this silent stretch
        self._encoded = 0
        self._silence = 0
        self._padded = 0

    @property
    def frame_samples(self) -> int:
        """Samples per channel in one track frame (at the track's rate)."""
        return self._frame_samples

    def stats(self) -> OpusStats:
        """Counts so far, as a value."""
        return OpusStats(encoded=self._encoded, silence=self._silence, padded=self._padded)

    def emit(self, samples: npt.NDArray[np.int16], pts: int) -> av.Packet[Any]:
        """Encode one track frame to one Opus packet.

        Args:
            samples: int16, shape ``(frame_samples, channels)``, at the track's sample
                rate; read, never written or kept.
            pts: the frame's pts in samples at the track's rate (``time_base =
                1/sample_rate``).

        Returns:
            A new :class:`av.Packet` (never handed out twice) with ``pts`` in the 48 kHz
            RTP clock (``pts * 48000 / sample_rate``, rounded down) and ``time_base =
            1/48000``, the form aiortc's Opus ``pack()`` reads.

        Raises:
            InvalidAudioError: ``samples`` has the wrong dtype or shape.
        """
        if samples.dtype != np.int16 or samples.shape != (self._frame_samples, self._channels):
            raise InvalidAudioError(
                f"expected int16 samples of shape ({self._frame_samples}, {self._channels}), "
                f"got {samples.dtype} {samples.shape}"
            )
        if samples.any():
            self._silent_run = 0
            self._last_silence = self._cached = None
        else:
            self._silent_run += 1
            if self._cached is not None:
                self._silence += 1
                return self._stamp(av.Packet(self._cached), pts)
        payload = self._encode(samples, pts)
        if self._silent_run:
            if self._silent_run >= self._hangover and payload == self._last_silence:
                self._cached = payload  # the encoder has settled: repeating it is what it would send
            self._last_silence = payload
        self._encoded += 1
        return self._stamp(av.Packet(payload), pts)

    def silence(self, pts: int) -> av.Packet[Any]:
        """A packet of digital silence stamped at ``pts``, without the encoder: never raises.

        What ``recv()`` sends after an internal fault on the encoded path (even one in
        the encoder itself). The payload is the encoder's own settled packet for
        all-zero input (CELT-only, fullband, one ``FF FE`` frame per 20 ms or less),
        which any Opus decoder turns into exact zeros.

        Args:
            pts: the frame's pts in samples at the track's rate.
        """
        self._silence += 1
        return self._stamp(av.Packet(self._silence_payload), pts)

    def _encode(self, samples: npt.NDArray[np.int16], pts: int) -> bytes:
        block = samples if self._resampler is None else self._resample(samples, pts)
        frame = av.AudioFrame(format="s16", layout=self._layout, samples=self._frame_48k)
        frame.planes[0].update(np.ascontiguousarray(block))  # type: ignore[arg-type]  # any buffer works
        frame.sample_rate = OPUS_RATE
        frame.pts = pts * OPUS_RATE // self._rate
        frame.time_base = _TIME_BASE
        packets = self._codec.encode(frame)
        # FFmpeg's libopus wrapper returns one packet per full frame, at once.
        return b"".join(bytes(packet) for packet in packets)

    def _resample(self, samples: npt.NDArray[np.int16], pts: int) -> npt.NDArray[np.int16]:
        assert self._resampler is not None
        frame = av.AudioFrame(format="s16", layout=self._layout, samples=self._frame_samples)
        frame.planes[0].update(np.ascontiguousarray(samples))  # type: ignore[arg-type]
        frame.sample_rate = self._rate
        frame.pts = pts
        frame.time_base = Fraction(1, self._rate)
        parts: list[npt.NDArray[np.int16]] = [self._pending]
        parts += [
            out.to_ndarray().reshape(-1, self._channels).astype(np.int16, copy=False)
            for out in self._resampler.resample(frame)
        ]
        pending = np.concatenate(parts)
        need = self._frame_48k
        if not self._primed:  # the resampler's delay: zeros ahead, once, so every frame is whole
            self._primed = True
            lead = max(0, need - len(pending)) + _CUSHION
            pending = np.concatenate([np.zeros((lead, self._channels), np.int16), pending])
        if len(pending) < need:
            short = need - len(pending)
            if not self._padded:
                logger.warning("agent_audio: resampler fell %d samples short; padding with zeros", short)
            self._padded += short
            pending = np.concatenate([pending, np.zeros((short, self._channels), np.int16)])
        self._pending = pending[need:]
        return pending[:need]

    def _stamp(self, packet: av.Packet[Any], pts: int) -> av.Packet[Any]:
        packet.pts = pts * OPUS_RATE // self._rate
        packet.time_base = _TIME_BASE
        return packet

    def __repr__(self) -> str:
        return f"OpusPacketizer({self._rate} Hz, {self._layout}, {self._frame_samples} samples/frame)"


def silence_payload(frame_48k: int, channels: int) -> bytes:
    """The Opus packet libopus settles on for digital silence (RFC 6716 section 3.1).

    Args:
        frame_48k: the frame's duration in 48 kHz samples, one of 120, 240, 480, 960
            (one CELT frame), 1920 or 2880 (two or three 20 ms CELT frames).
        channels: 1 or 2.

    Returns:
        The TOC byte (CELT-only fullband: configurations 28 to 31), the frame count
        byte for three frames, and ``FF FE`` per frame: 3 bytes for 20 ms mono
        (``F8 FF FE``), 5 for 40 ms, 8 for 60 ms.
    """
    stereo = 0x04 if channels == 2 else 0x00
    if frame_48k <= 960:
        config = {120: 28, 240: 29, 480: 30, 960: 31}[frame_48k]
        return bytes([config << 3 | stereo]) + b"\xff\xfe"
    if frame_48k == 1920:  # code 1: two frames of equal size
        return bytes([31 << 3 | stereo | 1]) + b"\xff\xfe" * 2
    return bytes([31 << 3 | stereo | 3, 3]) + b"\xff\xfe" * 3  # code 3, CBR, three frames


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidAudioError(f"expected {name} as an int from {low} to {high}, got {value!r}")
