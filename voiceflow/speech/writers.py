"""Transcript files in the formats openai-whisper writes, with the same names and layout.

The JSON adds each segment's ``language`` (and the recording's language probability), which
openai-whisper cannot know because it detects one language per file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from voiceflow.messages import Transcript

FORMATS = ("txt", "vtt", "srt", "tsv", "json")


def format_timestamp(seconds: float, always_include_hours: bool = False, marker: str = ".") -> str:
    ms = round(max(seconds, 0.0) * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_include_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{marker}{ms:03d}"


def _txt(t: Transcript, f: TextIO) -> None:
    for s in t.segments:
        print(s.text.strip(), file=f, flush=True)


def _vtt(t: Transcript, f: TextIO) -> None:
    print("WEBVTT\n", file=f)
    for s in t.segments:
        print(f"{format_timestamp(s.start)} --> {format_timestamp(s.end)}", file=f)
        print(s.text.strip().replace("-->", "->") + "\n", file=f, flush=True)


def _srt(t: Transcript, f: TextIO) -> None:
    for i, s in enumerate(t.segments, start=1):
        start = format_timestamp(s.start, True, ",")
        end = format_timestamp(s.end, True, ",")
        print(
            f"{i}\n{start} --> {end}\n{s.text.strip().replace('-->', '->')}\n", file=f, flush=True
        )


def _tsv(t: Transcript, f: TextIO) -> None:
    print("start", "end", "text", sep="\t", file=f)
    for s in t.segments:
        text = s.text.strip().replace("\t", " ")
        print(round(1000 * s.start), round(1000 * s.end), text, sep="\t", file=f, flush=True)


def _json(t: Transcript, f: TextIO) -> None:
    data = t.to_dict()
    for seg in data["segments"]:
        seg["seek"] = 0
        seg["tokens"] = []
        if not seg["words"]:
            del seg["words"]
    json.dump(data, f, ensure_ascii=False)


WRITERS: dict[str, Callable[[Transcript, TextIO], None]] = {
    "txt": _txt,
    "vtt": _vtt,
    "srt": _srt,
    "tsv": _tsv,
    "json": _json,
}


def render_transcript(t: Transcript, output_format: str) -> str:
    """``t`` as the text of a txt, vtt, srt, tsv or json file."""
    f = io.StringIO()
    WRITERS[output_format](t, f)
    return f.getvalue()


def write_transcript(
    t: Transcript, audio_path: str | Path, output_dir: str | Path, output_format: str = "all"
) -> list[Path]:
    """Write ``<audio stem>.<ext>`` files into ``output_dir``; returns the paths written."""
    formats = FORMATS if output_format == "all" else (output_format,)
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(audio_path).stem or "audio"
    written = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        with open(path, "w", encoding="utf-8") as f:
            WRITERS[fmt](t, f)
        written.append(path)
    return written
