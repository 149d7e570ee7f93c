"""Dictation files written as speech arrives: a crash loses at most the current utterance."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from voiceflow.errors import VoiceflowError
from voiceflow.files import atomic_write
from voiceflow.messages import Transcript
from voiceflow.speech.writers import FORMATS, format_timestamp

_CUE = re.compile(r"^(?:(\d+):)?(\d+):(\d+)[.,](\d+) --> (?:(\d+):)?(\d+):(\d+)[.,](\d+)", re.M)


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac) / 10 ** len(frac)


class DictationWriter:
    """Writes each transcript as it arrives.

    ``.txt``, ``.srt`` and ``.vtt`` are appended to and synced to disk; ``.json`` is
    rewritten atomically each time. An existing file is continued, never truncated: its
    cues keep their numbers, and the new session's times start a second after its last
    cue (``offset``), so one file can hold a whole course of lessons. ``overwrite=True``
    starts the file afresh.
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.format = self.path.suffix.lstrip(".").lower()
        if self.format not in FORMATS:
            raise VoiceflowError(f"{path}: dictation writes {', '.join(FORMATS)} files")
        self.count = 0
        self.offset = 0.0  # seconds added to this session's times
        self.items: list[dict[str, Any]] = []
        if self.path.is_dir():
            raise VoiceflowError(f"{path}: is a folder; give a file name for the dictation")
        try:
            if not overwrite and self.path.is_file() and self.path.stat().st_size:
                self._continue()
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.format == "json":
                self._save_json()
            else:
                header = {"vtt": "WEBVTT\n\n", "tsv": "start\tend\ttext\n"}.get(self.format, "")
                atomic_write(self.path, header)
        except OSError as e:
            raise VoiceflowError(
                f"{path}: cannot write the dictation ({e.strerror or e})"
            ) from None

    def _continue(self) -> None:
        refuse = (
            f"{self.path} exists and is not a {self.format} dictation voiceflow can continue; "
            "choose another file, or --overwrite to replace it"
        )
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise VoiceflowError(refuse) from None
        ends: list[float] = []
        if self.format == "json":
            try:
                data = json.loads(text)
                self.items = list(data["segments"])
                ends = [float(item["end"]) for item in self.items]
            except (ValueError, KeyError, TypeError):
                raise VoiceflowError(refuse) from None
        elif self.format in ("srt", "vtt"):
            if self.format == "vtt" and not text.startswith("WEBVTT"):
                raise VoiceflowError(refuse)
            cues = _CUE.findall(text)
            if not cues and text.strip() not in ("", "WEBVTT"):
                raise VoiceflowError(refuse)
            ends = [_seconds(*cue[4:]) for cue in cues]
        elif self.format == "tsv":
            rows = [line.split("\t") for line in text.splitlines()[1:] if line]
            try:
                ends = [int(row[1]) / 1000 for row in rows]
            except (IndexError, ValueError):
                raise VoiceflowError(refuse) from None
        self.count = len(ends) if self.format != "txt" else 0
        self.offset = float(math.ceil(max(ends))) + 1.0 if ends else 0.0
        if text and not text.endswith("\n"):
            self._append("\n")

    def _append(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def _save_json(self) -> None:
        data = json.dumps({"segments": self.items}, ensure_ascii=False)
        atomic_write(self.path, data, fsync=True)

    def write(self, t: Transcript, start: float, end: float) -> None:
        """Add one utterance, spoken from ``start`` to ``end`` seconds into the session."""
        text = t.text.strip()
        if not text:
            return
        start, end = start + self.offset, end + self.offset
        self.count += 1
        if self.format == "txt":
            self._append(text + "\n")
        elif self.format == "srt":
            self._append(
                f"{self.count}\n{format_timestamp(start, True, ',')} --> "
                f"{format_timestamp(end, True, ',')}\n{text}\n\n"
            )
        elif self.format == "vtt":
            self._append(f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n\n")
        elif self.format == "tsv":
            self._append(f"{round(start * 1000)}\t{round(end * 1000)}\t{text}\n")
        else:
            self.items.append(
                {
                    "start": start,
                    "end": end,
                    "text": text,
                    "language": t.language,
                    "translation": t.translation,
                }
            )
            self._save_json()
