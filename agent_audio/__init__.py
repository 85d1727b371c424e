"""agent_audio: the output half of a voice agent talking over WebRTC.

An aiortc audio track that paces 20 ms frames on a clock, counts per turn how much
of the agent's reply the listener heard, pauses and resumes for false
interruptions, and fades out on real ones.
"""

from ._background import SoundHandle
from ._bargein import BargeInPolicy
from ._bargein_types import BargeInAction, BargeInDecision, BargeInReason
from ._cliploader import ClipLoad
from ._clock import Clock, MonotonicClock
from ._encoded import EncodedStream
from ._encoded_view import EncodedView
from ._errors import (
    AgentAudioError,
    EncodedOutputError,
    InvalidAudioError,
    InvalidStateError,
    TrackClosedError,
    TurnClosedError,
)
from ._events import Interrupted, Paused, PlayoutStarted, Resumed, TurnFinished, Underrun, WordPlayed
from ._mixing import MixingAgentAudioTrack
from ._opus import OpusPacketizer, OpusStats
from ._opus_sender import enable_opus_output
from ._playout import FrameEncoder
from ._recorder import Recorder
from ._sinks import AudioSink, AvatarSink
from ._stages import OutputFrame, OutputStage, VoiceTap
from ._stats import TrackMetrics, TurnStats
from ._tee import TeeAgentAudioTrack, TeeMixingAgentAudioTrack, TeeTrackMetrics
from ._track import AgentAudioTrack
from ._turn import Turn
from ._version import __version__ as __version__
from ._words import HeardText, HeardWord, PartialWord

__all__ = [
    "AgentAudioError",
    "AgentAudioTrack",
    "AudioSink",
    "AvatarSink",
    "BargeInAction",
    "BargeInDecision",
    "BargeInPolicy",
    "BargeInReason",
    "ClipLoad",
    "Clock",
    "EncodedOutputError",
    "EncodedStream",
    "EncodedView",
    "FrameEncoder",
    "HeardText",
    "HeardWord",
    "Interrupted",
    "InvalidAudioError",
    "InvalidStateError",
    "MixingAgentAudioTrack",
    "MonotonicClock",
    "OpusPacketizer",
    "OpusStats",
    "OutputFrame",
    "OutputStage",
    "PartialWord",
    "Paused",
    "PlayoutStarted",
    "Recorder",
    "Resumed",
    "SoundHandle",
    "TeeAgentAudioTrack",
    "TeeMixingAgentAudioTrack",
    "TeeTrackMetrics",
    "TrackClosedError",
    "TrackMetrics",
    "Turn",
    "TurnClosedError",
    "TurnFinished",
    "TurnStats",
    "Underrun",
    "VoiceTap",
    "WordPlayed",
    "__version__",
    "enable_opus_output",
]
