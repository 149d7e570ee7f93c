"""voiceflow: speak (or hand over recordings), and a graph of plugins acts on what was said."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voiceflow.errors import VoiceflowError
from voiceflow.node import Context, Node, NodeConfig
from voiceflow.plugins import hookimpl

if TYPE_CHECKING:
    from voiceflow.speech.transcriber import SpeechModel

__version__ = "0.1.0"
__all__ = ["Context", "Node", "NodeConfig", "VoiceflowError", "hookimpl", "load_model"]


def load_model(name: str = "base", **kwargs: Any) -> SpeechModel:
    """``voiceflow.load_model("base").transcribe("talk.mp3")`` -> ``Transcript``."""
    from voiceflow.speech.transcriber import load_model as _load

    return _load(name, **kwargs)
