"""Ingest recordings: transcribe each once, then store it; resumable and idempotent."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import voiceflow
from voiceflow import SpeechModel, VoiceflowError

from .store import Archive, file_sha256, load_transcript, save_transcript

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already stored, unchanged
    replaced: list[str] = field(default_factory=list)  # changed on disk since last time
    errors: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0


def ingest(
    paths: Sequence[str | Path],
    archive: Archive,
    model_factory: Callable[[], SpeechModel],
    progress: bool | None = None,
) -> IngestReport:
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    report = IngestReport()
    files, report.errors = voiceflow.expand_inputs(paths)
    model: SpeechModel | None = None
    for path in tqdm(files, desc="recordings", unit="file", disable=not show):
        key = str(path.absolute())
        try:
            recording = file_sha256(path)
            stale = archive.replaced_by(key, recording)
            if archive.status(recording) == "complete" and not stale:
                report.skipped.append(key)
                continue
            for old in stale:
                archive.remove(old)
                report.replaced.append(key)
            cache = archive.path / "transcripts" / f"{recording}.json"
            transcript = load_transcript(cache)
            if transcript is None:
                model = model or model_factory()
                transcript = model.transcribe(path, translate=True, progress=show)
                save_transcript(cache, transcript)
            archive.store(recording, key, transcript)
            report.added.append(key)
            report.audio_seconds += transcript.duration
        except VoiceflowError as e:
            report.errors.append(str(e))
            log.warning("%s", e)
    return report
