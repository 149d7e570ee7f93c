"""The transcript archive: exact segments in SQLite, searchable chunks in chromadb.

SQLite holds what must be exact and transactional (recordings, their state, every segment
for word statistics and answers, and a full-text index of the chunks); chromadb holds the
embedded chunks. A search fuses both (reciprocal rank fusion): the vectors find meaning
across languages, BM25 over the words finds names, numbers and rare terms the embedding
misses ("3:2", "1963"). Chunk ids derive from the recording's content hash and position,
and a recording is marked complete only after both stores hold it, so an ingest killed at
any moment resumes without duplicates.
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
from pathlib import Path
from typing import Any

import numpy as np
from platformdirs import user_data_dir

from voiceflow import ConfigError, TextEmbedder, atomic_write, normalize
from voiceflow.errors import MissingDependencyError
from voiceflow.messages import Citation, Segment, Transcript

from .chunking import Chunk, chunk_segments, english_for

COLLECTION = "transcript_chunks"
RRF_K = 60  # reciprocal rank fusion: 1 / (RRF_K + rank), the usual constant
CANDIDATES = 20  # hits taken from each index before fusing
# Words a search for names and facts should not spend its weight on.
_STOPWORDS = """
a an the and or but if of to in on at by for with from as is are was were be been being do
does did done have has had having it its this that these those there here what which who
whom whose when where why how i you he she we they me him her us them my your his our their
not no yes so than then too very can could would should will shall may might must about
into over under again more most some any each all both few other such only own same just
also said say says tell told ask asked recordings recording lecture lectures meeting
meetings speaker
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def default_archive_dir() -> Path:
    return Path(os.environ.get("VOICEFLOW_ARCHIVE") or Path(user_data_dir("voiceflow")) / "archive")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    score: float  # fused rank score: higher is better
    similarity: float | None = None  # cosine to the question, where the vector index found it

    def citation(self) -> Citation:
        return _cite(self)


@dataclass(frozen=True)
class Sentence:
    """One stored segment, as an answer quotes it."""

    source: str
    start: float
    end: float
    text: str
    text_en: str
    language: str

    def citation(self) -> Citation:
        return _cite(self)


def _cite(q: Hit | Sentence) -> Citation:
    """The quoted words, with their English when they were said in another language."""
    english = q.text_en if q.language != "en" and q.text_en != q.text else None
    return Citation(q.source, q.start, q.end, q.text, english)


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
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    chunk UNINDEXED, recording UNINDEXED, text, text_en,
    tokenize = 'unicode61 remove_diacritics 2');
"""


class Archive:
    def __init__(
        self,
        path: str | Path | None = None,
        embedder: TextEmbedder | None = None,
        chroma_url: str | None = None,
        ef_search: int = 200,
        window_s: float = 45.0,
        overlap_s: float = 10.0,
    ) -> None:
        self.path = Path(path).expanduser() if path else default_archive_dir()
        self.embedder = embedder or TextEmbedder()
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
                self.db.execute("DELETE FROM chunks_fts WHERE recording=?", (recording,))
                self.db.execute("DELETE FROM recordings WHERE id=?", (recording,))

    def store(
        self,
        recording: str,
        path: str,
        transcript: Transcript,
        title: str = "",
        vectors: Any = None,
    ) -> int:
        """Store one transcribed recording; safe to repeat after any interruption.
        ``vectors``: its chunks' embeddings, when they were made elsewhere (a Ray actor)."""
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
                if vectors is None or len(vectors) != len(chunks):
                    vectors = self.embedder.embed([c.text_en for c in chunks])
                self._add_chunks(recording, path, title, chunks, vectors)
            with self.db:
                self.db.execute("DELETE FROM chunks_fts WHERE recording=?", (recording,))
                self.db.executemany(
                    "INSERT INTO chunks_fts VALUES (?,?,?,?)",
                    [(_chunk_id(recording, c.index), recording, c.text, c.text_en) for c in chunks],
                )
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

    def _add_chunks(
        self, recording: str, path: str, title: str, chunks: list[Chunk], vectors: Any
    ) -> None:
        for batch_start in range(0, len(chunks), 256):
            batch = chunks[batch_start : batch_start + 256]
            self.collection.upsert(
                ids=[_chunk_id(recording, c.index) for c in batch],
                embeddings=np.asarray(vectors[batch_start : batch_start + 256]).tolist(),
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
        """The ``k`` best chunks for ``query``: vector and word search, fused by rank."""
        if self.collection.count() == 0:
            return []
        self._fill_word_index()
        [vector] = self.embedder.embed([query]).tolist()
        res = self.collection.query(
            query_embeddings=[vector],
            n_results=max(k, CANDIDATES),
            include=["documents", "metadatas", "distances"],
        )
        found: dict[str, tuple[str, dict[str, Any], float | None]] = {}
        fused: dict[str, float] = {}
        for rank, (cid, doc, meta, dist) in enumerate(
            zip(
                res["ids"][0],
                res["documents"][0],
                res["metadatas"][0],
                res["distances"][0],
                strict=True,
            )
        ):
            found[cid] = (doc, dict(meta), 1.0 - float(dist))
            fused[cid] = 1.0 / (RRF_K + rank + 1)
        for rank, cid in enumerate(self._word_search(query, CANDIDATES)):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        missing = [cid for cid in fused if cid not in found]
        if missing:
            got = self.collection.get(ids=missing, include=["documents", "metadatas"])
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                found[cid] = (doc, dict(meta), None)
        best = sorted((cid for cid in fused if cid in found), key=lambda c: -fused[c])[:k]
        return [_hit(found[cid], fused[cid]) for cid in best]

    def _word_search(self, query: str, n: int) -> list[str]:
        """Chunk ids by BM25 over the original words and their English."""
        terms = [w for w in normalize(query).split() if w not in STOPWORDS]
        # "3:2", "T-Rex": words the normaliser splits are also searched as a phrase
        phrases = [normalize(w) for w in query.split() if len(normalize(w).split()) > 1]
        parts = [f'"{t}"' for t in dict.fromkeys([*terms, *phrases])]
        if not parts:
            return []
        rows = self.db.execute(
            "SELECT chunk FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) "
            "LIMIT ?",
            (" OR ".join(parts), n),
        ).fetchall()
        return [r[0] for r in rows]

    def _fill_word_index(self) -> None:
        """Archives made before the word index existed: index their chunks once."""
        with self._lock:
            if self.db.execute("SELECT 1 FROM chunks_fts LIMIT 1").fetchone():
                return
            got = self.collection.get(include=["documents", "metadatas"])
            rows = [
                (cid, meta["recording"], doc, meta.get("text_en", doc))
                for cid, doc, meta in zip(
                    got["ids"], got["documents"], got["metadatas"], strict=True
                )
            ]
            with self.db:
                self.db.executemany("INSERT INTO chunks_fts VALUES (?,?,?,?)", rows)

    def passage(self, hit: Hit) -> list[Sentence]:
        """The sentences of a hit's time span, for an answer to quote: stored segments joined
        into whole sentences (Whisper cuts segments mid-sentence; its punctuation ends them).
        """
        rows = self.db.execute(
            "SELECT start, end, text, text_en, language FROM segments WHERE recording=? "
            "ORDER BY idx",
            (hit.recording,),
        ).fetchall()
        sentences: list[Sentence] = []
        group: list[tuple[float, float, str, str, str]] = []
        for row in rows:
            group.append(row)
            if row[2].rstrip().endswith((".", "!", "?", "。")) or row is rows[-1]:
                if group[-1][1] > hit.start - 1e-3 and group[0][0] < hit.end + 1e-3:
                    sentences.append(_sentence(hit.source, group))
                group = []
        return sentences

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


def _sentence(source: str, rows: list[tuple[float, float, str, str, str]]) -> Sentence:
    """Consecutive segments as one sentence. A foreign segment whose English is its own
    text had no translation of its own (the English of a sentence can land on one of its
    segments), so it adds nothing to the English."""
    text = " ".join(r[2].strip() for r in rows)
    english = [r[3].strip() for r in rows if r[4] == "en" or r[3].strip() != r[2].strip()]
    languages = [r[4] for r in rows]
    language = max(set(languages), key=languages.count)
    text_en = " ".join(dict.fromkeys(english)) or text
    return Sentence(source, rows[0][0], rows[-1][1], text, text_en, language)


def _chunk_id(recording: str, index: int) -> str:
    return f"{recording[:24]}-{index:05d}"


def _hit(found: tuple[str, dict[str, Any], float | None], score: float) -> Hit:
    doc, meta, similarity = found
    return Hit(
        str(meta["recording"]),
        str(meta["source"]),
        str(meta["title"]),
        float(meta["start"]),
        float(meta["end"]),
        str(meta["language"]),
        doc,
        str(meta.get("text_en", doc)),
        score,
        similarity,
    )


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
    return Transcript.from_dict(json.loads(path.read_text(encoding="utf-8")))
