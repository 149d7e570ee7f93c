"""Live voice: microphone capture, utterance segmentation, the listener, dictation files."""

from voiceflow.live.capture import Capture, MicrophoneError, import_sounddevice, list_devices
from voiceflow.live.dictation import DictationWriter
from voiceflow.live.listener import (
    PARTIAL_EVERY_S,
    Acted,
    Behind,
    Heard,
    Listener,
    ListenEvent,
    ListenStats,
    Overflowed,
    PartialText,
    Problem,
    StateChanged,
    check_accepts_text,
    session_transcript,
    strip_wake_phrase,
)
from voiceflow.live.segmenter import Segmenter, SegmenterOptions, Utterance

__all__ = [
    "PARTIAL_EVERY_S",
    "Acted",
    "Behind",
    "Capture",
    "DictationWriter",
    "Heard",
    "ListenEvent",
    "ListenStats",
    "Listener",
    "MicrophoneError",
    "Overflowed",
    "PartialText",
    "Problem",
    "Segmenter",
    "SegmenterOptions",
    "StateChanged",
    "Utterance",
    "check_accepts_text",
    "import_sounddevice",
    "list_devices",
    "session_transcript",
    "strip_wake_phrase",
]
