"""Batch throughput: audio hours per hour for `voiceflow subtitles`, in one process and on Ray.

    python -m bench.batch [--data DIR] [--copies 1]

Subtitles (original and English, word timestamps, beam 5, Whisper base) for every reference
clip (the 25 FLEURS clips and jfk; --copies N repeats the set), end to end as a user runs
it: process start to the last file written. Runs: one process on 1 and on 2 threads; a
local Ray (`--ray`, started by the command) with 1 Whisper actor of 1 CPU and with 2. Ray's
overhead is its 1-actor time against the 1-thread process. Also timed: the single writer's
share (cutting cues and writing files, storing one transcript into the archive), which
bounds how many actors one driver can serve. Prints a table, saves bench/results/batch.json.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, parser, save, table

RUNS: list[tuple[str, list[str]]] = [
    ("one process, 1 thread", ["--threads", "1"]),
    ("one process, 2 threads", ["--threads", "2"]),
    ("Ray, 1 actor x 1 CPU", ["--ray", "--ray_actors", "1", "--ray_cpus", "1"]),
    ("Ray, 2 actors x 1 CPU", ["--ray", "--ray_actors", "2", "--ray_cpus", "1"]),
]


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--copies", type=int, default=1, help="repeat the clip set (longer runs)")
    args = p.parse_args()
    clips = [*sorted((args.data / "fleurs").glob("*.ogg")), args.data / "jfk.flac"]
    results: dict[str, Any] = {}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "channel"
        src.mkdir()
        for k in range(args.copies):
            for c in clips:
                shutil.copy(c, src / f"{k:02d}-{c.name}")
        hours = audio_hours(src)
        reference: dict[str, str] | None = None
        for name, extra in RUNS:
            out = Path(d) / name.replace(" ", "_").replace(",", "")
            start = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "voiceflow", "subtitles", str(src), "-o", str(out), *extra],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            wall = time.perf_counter() - start
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                return 1
            files = {f.name: f.read_text() for f in sorted(out.glob("*.srt"))}
            same = reference is None or files == reference
            reference = reference or files
            results[name] = {
                "wall_s": round(wall, 1),
                "audio_h_per_h": round(hours * 3600 / wall, 1),
            }
            results[name]["same_as_1_thread"] = same
            print(f"  {name}: {wall:.1f} s", file=sys.stderr, flush=True)
        writer = writer_costs(src)
    base = results["one process, 1 thread"]["wall_s"]
    for name, r in results.items():
        actors = 2 if "2 actors" in name else 1
        rows.append(
            (
                name,
                f"{r['wall_s']:.1f}",
                f"{r['audio_h_per_h']:.1f}",
                f"{r['audio_h_per_h'] / actors:.1f}" if "Ray" in name else "",
                f"{100 * (r['wall_s'] / base - 1):+.0f} %",
                "yes" if r["same_as_1_thread"] else "no",
            )
        )
    results["audio_h"] = round(hours, 4)
    results["writer"] = writer
    print(
        f"\nsubtitles, original + English, {len(clips) * args.copies} files, "
        f"{hours * 60:.1f} min of audio, Whisper base int8, beam 5\n"
    )
    print(
        table(
            ["run", "wall s", "audio h / h", "per actor", "vs 1 thread", "files as 1 thread"],
            rows,
        )
    )
    print(
        f"\nsingle writer: {writer['subtitles_ms_per_file']:.1f} ms a file for cues and files, "
        f"{writer['archive_ms_per_file']:.0f} ms a file to store a transcript (embeddings "
        f"made elsewhere): {writer['archive_audio_h_per_h']:.0f} audio h/h at most"
    )
    save("batch", args, results)
    return 0


def audio_hours(folder: Path) -> float:
    from voiceflow.batch import audio_seconds

    return sum(audio_seconds(f) for f in folder.iterdir()) / 3600


def writer_costs(src: Path) -> dict[str, float]:
    """The driver's own work per file: the part that does not spread over actors."""
    import numpy as np

    from voiceflow import SpeechModel, TextEmbedder
    from voiceflow.speech.subtitles import render_cues, transcript_cues
    from voiceflow_archive import Archive
    from voiceflow_archive.chunking import chunk_segments

    files = sorted(src.iterdir())[:8]
    model = SpeechModel.shared("base")
    transcripts = [model.transcribe(f, word_timestamps=True, translate=True) for f in files]
    start = time.perf_counter()
    for t in transcripts:
        for track in ("original", "en"):
            render_cues(transcript_cues(t, track=track), "srt")
    cues_s = (time.perf_counter() - start) / len(transcripts)
    embedder = TextEmbedder()
    with tempfile.TemporaryDirectory() as d:
        archive = Archive(Path(d), embedder)
        vectors = [
            embedder.embed([c.text_en for c in chunk_segments(t.segments, t.translation_segments)])
            for t in transcripts
        ]
        archive.store("warm-up", "warm-up", transcripts[0], vectors=vectors[0])
        start = time.perf_counter()
        for k, (t, v) in enumerate(zip(transcripts, vectors, strict=True)):
            archive.store(f"r{k}", f"file{k}", t, vectors=np.asarray(v))
        store_s = (time.perf_counter() - start) / len(transcripts)
    mean_audio = sum(t.duration for t in transcripts) / len(transcripts)
    return {
        "subtitles_ms_per_file": round(1000 * cues_s, 2),
        "archive_ms_per_file": round(1000 * store_s, 1),
        "archive_audio_h_per_h": round(mean_audio / store_s, 0),
        "mean_file_s": round(mean_audio, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
