"""voiceflow: speak (or hand over recordings), and a graph of plugins acts on what was said.

The public API is what ``__all__`` lists, plus the modules ``voiceflow.messages``,
``voiceflow.testing`` and ``voiceflow.cli`` (helpers for plugin commands). Heavy parts load
on first use, so ``import voiceflow`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# onnxruntime (Chroma's default embedder) reports usage to Microsoft from Linux and
# macOS since 1.29 unless this is set before it loads; it reads it once per process.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from voiceflow.errors import ConfigError, VoiceflowError

if TYPE_CHECKING:
    from voiceflow.batch import RayOptions, transcribe_many
    from voiceflow.embeddings import SHIPPED_EMBEDDER, TextEmbedder
    from voiceflow.files import atomic_path, atomic_write
    from voiceflow.graph import load_graph
    from voiceflow.hooks import hookimpl
    from voiceflow.node import Context, Node, NodeConfig
    from voiceflow.runtime import GraphRunner
    from voiceflow.speech.audio import (
        SAMPLE_RATE,
        expand_inputs,
        load_audio,
        pcm_to_float,
        resample,
    )
    from voiceflow.speech.languages import LANGUAGES
    from voiceflow.speech.models import network_allowed
    from voiceflow.speech.subtitles import format_timestamp
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow.speech.writers import render_transcript
    from voiceflow.text import normalize

__version__ = "0.1.0"
__all__ = [
    "LANGUAGES",
    "SAMPLE_RATE",
    "SHIPPED_EMBEDDER",
    "ConfigError",
    "Context",
    "GraphRunner",
    "Node",
    "NodeConfig",
    "RayOptions",
    "SpeechModel",
    "TextEmbedder",
    "VoiceflowError",
    "atomic_path",
    "atomic_write",
    "expand_inputs",
    "format_timestamp",
    "hookimpl",
    "load_audio",
    "load_graph",
    "load_model",
    "network_allowed",
    "normalize",
    "pcm_to_float",
    "render_transcript",
    "resample",
    "transcribe_many",
]

_LAZY = {  # a command that does not need a name does not pay for its import
    "Context": "voiceflow.node",
    "Node": "voiceflow.node",
    "NodeConfig": "voiceflow.node",
    "hookimpl": "voiceflow.hooks",
    "RayOptions": "voiceflow.batch",
    "transcribe_many": "voiceflow.batch",
    "LANGUAGES": "voiceflow.speech.languages",
    "GraphRunner": "voiceflow.runtime",
    "SAMPLE_RATE": "voiceflow.speech.audio",
    "SHIPPED_EMBEDDER": "voiceflow.embeddings",
    "TextEmbedder": "voiceflow.embeddings",
    "SpeechModel": "voiceflow.speech.transcriber",
    "atomic_path": "voiceflow.files",
    "atomic_write": "voiceflow.files",
    "expand_inputs": "voiceflow.speech.audio",
    "format_timestamp": "voiceflow.speech.subtitles",
    "render_transcript": "voiceflow.speech.writers",
    "load_audio": "voiceflow.speech.audio",
    "load_graph": "voiceflow.graph",
    "pcm_to_float": "voiceflow.speech.audio",
    "resample": "voiceflow.speech.audio",
    "network_allowed": "voiceflow.speech.models",
    "normalize": "voiceflow.text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'voiceflow' has no attribute {name!r}")


def load_model(name: str = "base", **kwargs: Any) -> SpeechModel:
    """``voiceflow.load_model("base").transcribe("talk.mp3")`` -> ``Transcript``."""
    from voiceflow.speech.transcriber import load_model as _load

    return _load(name, **kwargs)
