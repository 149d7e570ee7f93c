"""Typed messages that flow between nodes.

Every message is a frozen dataclass: nodes never mutate what they receive, so fan-out to
several branches is safe without copies. The set is kept small on purpose.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples at ``sample_rate`` (16 kHz for Whisper), with where they came from."""

    samples: np.ndarray = field(repr=False)
    sample_rate: int = 16000
    source: str = ""
    start: float = 0.0  # offset of the first sample inside ``source``, in seconds

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    language: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    temperature: float = 0.0
    words: tuple[Word, ...] = ()
    language_probability: float = 1.0


@dataclass(frozen=True)
class Transcript:
    """The speech node's result: text, language, timing, and optionally an English translation."""

    text: str
    language: str
    language_probability: float
    duration: float
    task: str = "transcribe"
    segments: tuple[Segment, ...] = ()
    source: str = ""
    translation: str | None = None  # English text when the speech was not English
    translation_segments: tuple[Segment, ...] = ()  # the English, timed, for foreign speech

    @property
    def english(self) -> str:
        """The English text: the translation when one was made, else the text itself."""
        return self.translation if self.translation is not None else self.text

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """The inverse of ``to_dict`` (a cached or transmitted transcript)."""

        def segments(items: Any) -> tuple[Segment, ...]:
            return tuple(
                Segment(**{**s, "words": tuple(Word(**w) for w in s.get("words") or ())})
                for s in items or ()
            )

        return cls(
            **{
                **data,
                "segments": segments(data.get("segments")),
                "translation_segments": segments(data.get("translation_segments")),
            }
        )


@dataclass(frozen=True)
class Command:
    """A recognised intent with its arguments, e.g. ``paint`` with ``{"prompt": ...}``."""

    intent: str
    args: dict[str, str]
    transcript: Transcript


@dataclass(frozen=True)
class ImageResult:
    path: Path
    prompt: str
    seed: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Citation:
    source: str
    start: float
    end: float
    text: str  # the words as spoken
    english: str | None = None  # their English, for a recording in another language

    def label(self) -> str:
        return f"{Path(self.source).name} {_mmss(self.start)}-{_mmss(self.end)}"


@dataclass(frozen=True)
class Answer:
    text: str
    language: str = "en"
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class Failure:
    """A node's error, turned into a message so other branches keep running."""

    node: str
    error: str
    message_type: str = ""


Message = AudioClip | Transcript | Command | ImageResult | Answer | Failure

MESSAGE_TYPES: dict[str, type] = {
    t.__name__: t for t in (AudioClip, Transcript, Command, ImageResult, Answer, Failure)
}


def _mmss(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m:02d}:{s:02d}"
