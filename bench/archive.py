"""Archive benchmark: ingest throughput on real speech, then search latency and recall.

    python -m bench.archive [--sizes 10000 100000] [--ef_search 200] [--skip-ingest] [--data DIR]

Ingest: one long recording made of all reference clips, 1 s apart, into a new archive
(Whisper base int8 on 2 threads, English translation of the foreign speech, MiniLM
embeddings, embedded chromadb); the best of --repeat runs.

Search: an archive of N chunks whose documents and metadata are real transcript text
(windows of the reference sentences) and whose vectors are synthetic 384-d unit vectors
around 2,000 topic centres (MiniLM's size; embedding 100,000 real chunks would take an hour
here, and index speed and recall do not depend on the words). Two timings per query:
the index alone (a vector in, ids out) with recall@10 against exact search, and end to end
(`Archive.search`: the real MiniLM embedding of a real question, the index, and the
documents and metadata fetched). Saves bench/results/archive.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import best_of, parser, peak_rss_mb, save, table, write_wav

QUESTIONS = [
    "How long could styles in the west lag behind?",
    "Which nouns always begin with a capital letter?",
    "Which place was made famous by Lord Byron?",
    "What makes cabbage juice change its color?",
    "What did the president ask Americans to do for their country?",
    "Where do you get the best views of Hong Kong?",
    "Who could not get into the funeral in Saint Peter's Square?",
    "How can blogs help students become more critical?",
]


def bench_ingest(data: Path, tmp: Path, repeat: int) -> dict[str, float]:
    """Ingest one long recording (all reference clips, 1 s apart) into a new archive."""
    from voiceflow.speech.audio import load_audio
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow_archive import Archive
    from voiceflow_archive.ingest import ingest

    clips = [*sorted((data / "fleurs").glob("*.ogg")), data / "jfk.flac"]
    gap = np.zeros(16000, dtype=np.float32)
    audio = np.concatenate([x for c in clips for x in (load_audio(c), gap)])
    folder = tmp / "lecture"
    folder.mkdir()
    write_wav(folder / "lecture.wav", audio)
    SpeechModel.shared("base", threads=2)  # loaded before the clock starts
    runs = iter(range(repeat))

    def once() -> Archive:
        archive = Archive(tmp / f"ingest-{next(runs)}")
        ingest([folder], archive, {"model": "base", "threads": 2}, progress=False)
        return archive

    wall, archive = best_of(repeat, once)
    return {
        "audio_s": len(audio) / 16000,
        "wall_s": wall,
        "chunks": archive.recordings()[0]["chunks"],
        "rss_mb": peak_rss_mb(),
    }


def synthetic(n: int, dim: int = 384, centres: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sentences(data: Path) -> list[str]:
    refs = [f.read_text(encoding="utf-8").strip() for f in sorted(data.glob("fleurs/*.txt"))]
    return [s for r in refs for s in r.split(". ") if s]


def bench_search(n: int, ef: int, tmp: Path, data: Path, queries: int = 300) -> dict[str, float]:
    from voiceflow_archive import Archive
    from voiceflow_archive.store import COLLECTION

    vectors = synthetic(n + queries, seed=n)
    stored, qs = vectors[:n], vectors[n:]
    texts = sentences(data)
    rng = np.random.default_rng(n)
    archive = Archive(tmp / f"search-{n}", ef_search=ef)
    col = archive.collection
    assert col.name == COLLECTION
    start = time.perf_counter()
    for i in range(0, n, 5000):
        ids = range(i, min(n, i + 5000))
        docs = [" ".join(rng.choice(texts, 3)) for _ in ids]
        col.add(
            ids=[f"r{j // 40}-{j % 40:05d}" for j in ids],
            embeddings=stored[i : i + len(docs)].tolist(),
            documents=docs,
            metadatas=[
                {
                    "recording": f"r{j // 40}",
                    "source": f"/lectures/talk-{j // 40}.m4a",
                    "title": f"talk-{j // 40}",
                    "start": 45.0 * (j % 40),
                    "end": 45.0 * (j % 40) + 45.0,
                    "language": "en",
                    "text_en": doc,
                }
                for j, doc in zip(ids, docs, strict=True)
            ],
        )
    build = time.perf_counter() - start
    truth = np.argsort(-(qs @ stored.T), axis=1)[:, :10]
    index, recall = [], []
    for q, t in zip(qs, truth, strict=True):
        start = time.perf_counter()
        res = col.query(query_embeddings=[q.tolist()], n_results=10, include=[])
        index.append(time.perf_counter() - start)
        found = {int(i.split("-")[0][1:]) * 40 + int(i.split("-")[1]) for i in res["ids"][0]}
        recall.append(len(found & set(t.tolist())) / 10)
    archive.search(QUESTIONS[0], 5)  # loads MiniLM
    e2e = []
    for i in range(queries):
        start = time.perf_counter()
        hits = archive.search(QUESTIONS[i % len(QUESTIONS)], 5)
        e2e.append(time.perf_counter() - start)
        assert len(hits) == 5 and hits[0].text
    index_ms = np.array(index[10:]) * 1000  # the first queries warm the index
    e2e_ms = np.array(e2e) * 1000
    return {
        "chunks": n,
        "build_s": build,
        "index_p50_ms": float(np.percentile(index_ms, 50)),
        "index_p95_ms": float(np.percentile(index_ms, 95)),
        "recall_at_10": float(np.mean(recall)),
        "search_p50_ms": float(np.percentile(e2e_ms, 50)),
        "search_p95_ms": float(np.percentile(e2e_ms, 95)),
        "rss_mb": peak_rss_mb(),
    }


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--ef_search", type=int, default=200)
    p.add_argument("--skip-ingest", action="store_true")
    args = p.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_ingest:
            r = bench_ingest(args.data, tmp, args.repeat)
            results["ingest"] = r
            print(
                f"Ingest: {r['audio_s'] / 60:.1f} min of speech in {r['wall_s']:.0f} s = "
                f"{r['audio_s'] / r['wall_s']:.1f} audio min/min ({r['chunks']} chunks; Whisper "
                f"base int8, 2 threads, English translation of the foreign clips; best of "
                f"{args.repeat}), peak RSS {r['rss_mb']:.0f} MB\n"
            )
        print(
            f"Search (chromadb HNSW, cosine, M=32, ef_construction=200, "
            f"ef_search={args.ef_search}; 290 index queries, 300 questions end to end)\n"
        )
        rows, searches = [], []
        for n in args.sizes:
            r = bench_search(n, args.ef_search, tmp, args.data)
            searches.append(r)
            rows.append(
                (
                    f"{n:,}",
                    f"{r['build_s']:.0f}",
                    f"{r['index_p50_ms']:.1f}",
                    f"{r['index_p95_ms']:.1f}",
                    f"{r['recall_at_10']:.4f}",
                    f"{r['search_p50_ms']:.1f}",
                    f"{r['search_p95_ms']:.1f}",
                    f"{r['rss_mb']:.0f}",
                )
            )
            print(f"  {n:,} chunks done", file=sys.stderr, flush=True)
        headers = ["chunks", "build s", "index p50 ms", "index p95 ms", "recall@10"]
        headers += ["Archive.search p50 ms", "p95 ms", "peak RSS MB"]
        print(table(headers, rows))
        results["search"] = searches
    save("archive", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
