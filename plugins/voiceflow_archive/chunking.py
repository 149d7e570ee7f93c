"""Cut a transcript into overlapping time windows that follow segment boundaries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from voiceflow.messages import Segment


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float
    end: float
    text: str
    text_en: str  # English (the translation for foreign speech; the text itself for English)
    language: str


def english_for(span_start: float, span_end: float, english: Sequence[Segment]) -> str:
    """Translated segments whose midpoint falls inside a span, joined."""
    return " ".join(
        s.text.strip() for s in english if span_start <= (s.start + s.end) / 2 < span_end
    ).strip()


def chunk_segments(
    segments: Sequence[Segment],
    english: Sequence[Segment] = (),
    window_s: float = 45.0,
    overlap_s: float = 10.0,
) -> list[Chunk]:
    """Windows of at most ``window_s`` (one long segment may exceed it), overlapping by about
    ``overlap_s``; every window starts and ends on a segment boundary."""
    if overlap_s >= window_s:
        raise ValueError("overlap must be shorter than the window")
    chunks: list[Chunk] = []
    i = 0
    while i < len(segments):
        j = i + 1
        while j < len(segments) and segments[j].end - segments[i].start <= window_s:
            j += 1
        group = segments[i:j]
        start, end = group[0].start, group[-1].end
        language = Counter(s.language for s in group).most_common(1)[0][0]
        text = " ".join(s.text.strip() for s in group)
        foreign = any(s.language != "en" for s in group)
        text_en = english_for(start, end + 1e-3, english) if foreign and english else ""
        chunks.append(Chunk(len(chunks), start, end, text, text_en or text, language))
        if j >= len(segments):
            break
        # The next window starts at the first segment inside the overlap, but always advances.
        nxt = next((k for k in range(i + 1, j) if segments[k].start >= end - overlap_s), j)
        i = nxt
    return chunks
