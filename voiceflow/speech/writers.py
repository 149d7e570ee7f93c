"""Transcript files in the formats openai-whisper writes, with the same names and layout.

The JSON adds each segment's ``language`` (and the recording's language probability), which
openai-whisper cannot know because it detects one language per file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from voiceflow.messages import Transcript, Word
from voiceflow.speech.subtitles import Cue, format_timestamp, render_cues

__all__ = ["FORMATS", "WRITERS", "format_timestamp", "render_transcript", "write_transcript"]

FORMATS = ("txt", "vtt", "srt", "tsv", "json")


def _txt(t: Transcript, f: TextIO, cues: Sequence[Cue] | None = None) -> None:
    for s in t.segments:
        print(s.text.strip(), file=f, flush=True)


def _segment_cues(t: Transcript) -> list[Cue]:
    """One cue a segment, its text on one line: openai-whisper's layout."""
    return [
        Cue(s.start, s.end, ((Word(s.start, s.end, s.text.strip(), 1.0),),)) for s in t.segments
    ]


def _vtt(t: Transcript, f: TextIO, cues: Sequence[Cue] | None = None) -> None:
    f.write(render_cues(_segment_cues(t) if cues is None else cues, "vtt"))


def _srt(t: Transcript, f: TextIO, cues: Sequence[Cue] | None = None) -> None:
    f.write(render_cues(_segment_cues(t) if cues is None else cues, "srt"))


def _tsv(t: Transcript, f: TextIO, cues: Sequence[Cue] | None = None) -> None:
    print("start", "end", "text", sep="\t", file=f)
    for s in t.segments:
        text = s.text.strip().replace("\t", " ")
        print(round(1000 * s.start), round(1000 * s.end), text, sep="\t", file=f, flush=True)


def _json(t: Transcript, f: TextIO, cues: Sequence[Cue] | None = None) -> None:
    data = t.to_dict()
    for seg in data["segments"]:
        seg["seek"] = 0
        seg["tokens"] = []
        if not seg["words"]:
            del seg["words"]
    json.dump(data, f, ensure_ascii=False)


# Each writes one format; ``cues`` (subtitle layout) matters to srt and vtt only.
WRITERS: dict[str, Callable[[Transcript, TextIO, Sequence[Cue] | None], None]] = {
    "txt": _txt,
    "vtt": _vtt,
    "srt": _srt,
    "tsv": _tsv,
    "json": _json,
}


def render_transcript(t: Transcript, output_format: str) -> str:
    """``t`` as the text of a txt, vtt, srt, tsv or json file."""
    f = io.StringIO()
    WRITERS[output_format](t, f, None)
    return f.getvalue()


def write_transcript(
    t: Transcript,
    audio_path: str | Path,
    output_dir: str | Path,
    output_format: str = "all",
    cues: Sequence[Cue] | None = None,
) -> list[Path]:
    """Write ``<audio stem>.<ext>`` files into ``output_dir``; returns the paths written.
    ``cues`` lays out srt and vtt (default: one cue a segment)."""
    formats = FORMATS if output_format == "all" else (output_format,)
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(audio_path).stem or "audio"
    written = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        with open(path, "w", encoding="utf-8") as f:
            WRITERS[fmt](t, f, cues)
        written.append(path)
    return written
