"""Ingest recordings: transcribe each once, then store it; resumable and idempotent.

Only this process writes the archive (embedded chromadb is not safe for several writers):
on Ray, transcripts and their chunk embeddings are computed in actors and flow back here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import voiceflow
from voiceflow import RayOptions, VoiceflowError
from voiceflow.messages import Transcript

from .chunking import chunk_segments
from .store import Archive, file_sha256, load_transcript, save_transcript

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already stored, unchanged
    replaced: list[str] = field(default_factory=list)  # changed on disk since last time
    errors: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0


class ChunkVectors:
    """Embeds a transcript's chunks where it was transcribed (a Ray actor), model loaded once."""

    def __init__(self, embedder: str, window_s: float, overlap_s: float) -> None:
        self.embedder, self.window_s, self.overlap_s = embedder, window_s, overlap_s
        self.model: voiceflow.TextEmbedder | None = None

    def __call__(self, t: Transcript) -> np.ndarray:
        self.model = self.model or voiceflow.TextEmbedder(self.embedder)
        chunks = chunk_segments(t.segments, t.translation_segments, self.window_s, self.overlap_s)
        return self.model.embed([c.text_en for c in chunks]) if chunks else np.zeros((0, 0))


def ingest(
    paths: Sequence[str | Path],
    archive: Archive,
    model_args: dict[str, Any] | None = None,
    progress: bool | None = None,
    ray: RayOptions | None = None,
) -> IngestReport:
    """Transcribe and store ``paths`` (files and folders); ``model_args`` are
    ``SpeechModel``'s; with ``ray``, the transcription runs on a Ray cluster."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    report = IngestReport()
    files, report.errors = voiceflow.expand_inputs(paths)
    todo: dict[Path, str] = {}  # file -> recording id, still to transcribe
    for path in files:
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
            transcript = load_transcript(_cache(archive, recording))
            if transcript is None:
                todo[path] = recording
            else:  # transcribed before an interruption: only the storing is left
                _store(archive, report, recording, key, transcript)
        except (OSError, VoiceflowError) as e:
            report.errors.append(f"{path}: {e}" if isinstance(e, OSError) else str(e))
    # On Ray the embeddings are made in actors too; here, the archive makes them as it stores.
    then = ChunkVectors(archive.embedder.name, archive.window_s, archive.overlap_s) if ray else None
    results = voiceflow.transcribe_many(
        list(todo),
        model_args or {},
        {"translate": True, "progress": show and ray is None},
        ray,
        then,
    )
    for path, result, vectors in tqdm(
        results, desc="recordings", unit="file", total=len(todo), disable=not show
    ):
        if isinstance(result, VoiceflowError):
            report.errors.append(str(result))
            log.warning("%s", result)
            continue
        transcript = _with_source(result, path)
        save_transcript(_cache(archive, todo[path]), transcript)
        _store(archive, report, todo[path], str(path.absolute()), transcript, vectors)
    return report


def _with_source(t: Transcript, path: Path) -> Transcript:
    return replace(t, source=str(path))


def _cache(archive: Archive, recording: str) -> Path:
    return archive.path / "transcripts" / f"{recording}.json"


def _store(
    archive: Archive,
    report: IngestReport,
    recording: str,
    key: str,
    transcript: Transcript,
    vectors: np.ndarray | None = None,
) -> None:
    archive.store(recording, key, transcript, vectors=vectors)
    report.added.append(key)
    report.audio_seconds += transcript.duration
