"""Archive benchmark: ingest throughput on real speech, then query latency and recall@10
against brute-force search on synthetic chunks.

    python bench/archive.py [--sizes 10000 100000] [--ef_search 200] [--skip-ingest]

Synthetic chunks are 384-d unit vectors (MiniLM's size) drawn around 2,000 topic centres,
so neighbourhoods look like real transcripts rather than uniform noise. Prints a table.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_ingest(tmp: Path) -> tuple[float, float, int]:
    """Ingest one long recording (all reference clips, 1 s apart); returns audio seconds,
    wall seconds and chunks."""
    import soundfile as sf

    from voiceflow.speech.audio import load_audio
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow_archive import Archive
    from voiceflow_archive.ingest import ingest

    clips = [*sorted((DATA / "fleurs").glob("*.ogg")), DATA / "jfk.flac"]
    gap = np.zeros(16000, dtype=np.float32)
    audio = np.concatenate([x for c in clips for x in (load_audio(c), gap)])
    folder = tmp / "lecture"
    folder.mkdir()
    sf.write(folder / "lecture.wav", audio, 16000)
    archive = Archive(tmp / "ingest-store")
    start = time.perf_counter()
    report = ingest([folder], archive, lambda: SpeechModel("base", threads=2), progress=False)
    wall = time.perf_counter() - start
    return report.audio_seconds, wall, archive.recordings()[0]["chunks"]


def synthetic(n: int, dim: int = 384, centres: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_search(n: int, ef_search: int, tmp: Path, queries: int = 300) -> dict[str, float]:
    import chromadb
    from chromadb.config import Settings

    vectors = synthetic(n + queries, seed=n)
    data, qs = vectors[:n], vectors[n:]
    client = chromadb.PersistentClient(
        path=str(tmp / f"chroma-{n}"), settings=Settings(anonymized_telemetry=False)
    )
    col = client.get_or_create_collection(
        "bench",
        embedding_function=None,
        configuration={
            "hnsw": {
                "space": "cosine",
                "ef_construction": 200,
                "ef_search": ef_search,
                "max_neighbors": 32,
            }
        },
    )
    start = time.perf_counter()
    for i in range(0, n, 5000):
        col.add(
            ids=[str(j) for j in range(i, min(n, i + 5000))],
            embeddings=data[i : i + 5000].tolist(),
            metadatas=[{"start": 0.0}] * len(data[i : i + 5000]),
        )
    build = time.perf_counter() - start
    truth = np.argsort(-(qs @ data.T), axis=1)[:, :10]
    latencies, recall = [], []
    for q, t in zip(qs, truth, strict=True):
        start = time.perf_counter()
        res = col.query(query_embeddings=[q.tolist()], n_results=10, include=[])
        latencies.append(time.perf_counter() - start)
        recall.append(len({int(i) for i in res["ids"][0]} & set(t.tolist())) / 10)
    lat = np.array(latencies[10:]) * 1000  # the first queries warm the index
    return {
        "n": n,
        "build_s": build,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "recall": float(np.mean(recall)),
        "rss": rss_mb(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--ef_search", type=int, default=200)
    p.add_argument("--skip-ingest", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_ingest:
            audio, wall, chunks = bench_ingest(tmp)
            print(
                f"Ingest: {audio / 60:.1f} min of speech in {wall:.0f} s = "
                f"{audio / wall:.1f} audio min/min ({chunks} chunks; Whisper base int8, "
                f"2 threads, with English translation of the 20 non-English clips), "
                f"peak RSS {rss_mb():.0f} MB\n"
            )
        print(
            f"Search (chromadb HNSW, cosine, M=32, ef_construction=200, "
            f"ef_search={args.ef_search}; 290 queries)\n"
        )
        print("| chunks | build s | p50 ms | p95 ms | recall@10 | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        for n in args.sizes:
            r = bench_search(n, args.ef_search, tmp)
            print(
                f"| {n:,} | {r['build_s']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                f"{r['recall']:.4f} | {r['rss']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
