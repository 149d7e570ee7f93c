"""Live listening benchmark: reference clips replayed in real time through the capture path.

    python bench/listen.py [--minutes 5] [--partial_every 0] [--full_window] [--config F]

Part 1: short utterances (the three spoken commands, jfk.flac and five FLEURS clips), 3 s
apart: end of speech -> transcript ready, and -> graph results (configs/default.yaml
unless --config). Part 2: continuous speech for --minutes: real-time factor of
transcription (partial texts included) and memory over time. Whisper base, 2 threads.
Prints tables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from voiceflow.live import PARTIAL_EVERY_S, SegmenterOptions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def replay(audio: np.ndarray, args: argparse.Namespace) -> tuple[object, list[tuple[float, float]]]:
    from voiceflow.graph import load_graph
    from voiceflow.live import Capture, Listener, Segmenter, speech_settings
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow.testing import ReplayStream

    graph = load_graph(args.config)
    model_args, config = speech_settings(graph)
    if args.beam_size:
        config = config.model_copy(update={"beam_size": args.beam_size})
    model = SpeechModel(**{**model_args, "threads": 2})
    if args.full_window:
        model.engine.fit_window = False  # type: ignore[attr-defined]
    busy = [0.0]
    transcribe = model.transcribe

    def timed(*a, **k):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return transcribe(*a, **k)
        finally:
            busy[0] += time.perf_counter() - start

    model.transcribe = timed  # type: ignore[method-assign]
    capture = Capture(stream_factory=lambda **kw: ReplayStream(audio, 16000, kw["callback"]))
    segmenter = Segmenter(SegmenterOptions(early_ms=args.early_ms))
    listener = Listener(graph, capture, segmenter, model, config, partial_every=args.partial_every)
    memory: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        began = time.monotonic()
        while not done.wait(15):
            memory.append((time.monotonic() - began, rss_mb()))

    threading.Thread(target=sample, daemon=True).start()
    stats = asyncio.run(listener.run())
    done.set()
    stats.busy_seconds = busy[0]  # type: ignore[attr-defined]
    return stats, memory


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=5.0, help="part 2 length; 0 skips it")
    p.add_argument("--config", default=str(ROOT / "configs/default.yaml"))
    p.add_argument("--beam_size", type=int, default=None, help="override the config's")
    p.add_argument("--early_ms", type=int, default=SegmenterOptions.early_ms)
    p.add_argument("--partial_every", type=float, default=PARTIAL_EVERY_S, help="0: none")
    p.add_argument("--full_window", action="store_true", help="encode whole 30 s windows")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("VOICEFLOW_OFFLINE", "1")  # the image node must not wait on a hub
    # the default graph archives what it hears: keep that out of the user's own archive
    os.environ["VOICEFLOW_ARCHIVE"] = tempfile.mkdtemp(prefix="voiceflow-bench-")
    from voiceflow.speech.audio import load_audio

    gap = np.zeros(16000 * 3, dtype=np.float32)
    clips = [
        *sorted((DATA / "commands").glob("*.wav")),
        DATA / "jfk.flac",
        *sorted((DATA / "fleurs").glob("fleurs-*-000.ogg")),
    ]
    audio = np.concatenate([x for c in clips for x in (load_audio(c), gap)])
    stats, _ = replay(audio, args)
    t, a = stats.transcript_latency, stats.action_latency
    print(
        f"early_ms {args.early_ms}, partial text every {args.partial_every} s, "
        f"beam {args.beam_size or 'as configured'}"
        f"{', 30 s encoder window' if args.full_window else ''}\n"
    )
    print(
        f"Part 1: {len(clips)} clips, {stats.utterances} utterances, "
        f"{len(audio) / 16000:.0f} s in real time, {stats.partials} partial texts\n"
    )
    print("| from end of speech to | p50 s | p95 s | max s |")
    print("|---|---|---|---|")
    print(f"| transcript ready | {pct(t, 50):.2f} | {pct(t, 95):.2f} | {max(t):.2f} |")
    print(f"| graph results dispatched | {pct(a, 50):.2f} | {pct(a, 95):.2f} | {max(a):.2f} |")

    if args.minutes <= 0:
        return 0
    fleurs = sorted((DATA / "fleurs").glob("*.ogg"))
    one_gap = np.zeros(16000, dtype=np.float32)
    loop = np.concatenate([x for c in fleurs for x in (load_audio(c), one_gap)])
    reps = int(np.ceil(args.minutes * 60 * 16000 / len(loop)))
    long = np.tile(loop, reps)[: int(args.minutes * 60 * 16000)]
    start = time.monotonic()
    stats, memory = replay(long, args)
    wall = time.monotonic() - start
    duration = len(long) / 16000
    print(
        f"\nPart 2: {duration / 60:.1f} min of continuous speech (25 FLEURS clips, 5 "
        f"languages, looped) in {wall / 60:.1f} min\n"
    )
    print(
        "| utterances | transcription busy s | real-time factor | dropped s | max queued s "
        "| RSS first sample MB | RSS last MB | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    first = memory[1][1] if len(memory) > 1 else float("nan")
    last = memory[-1][1] if memory else float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| {stats.utterances} | {stats.busy_seconds:.0f} | "  # type: ignore[attr-defined]
        f"{stats.busy_seconds / duration:.3f} | {stats.dropped_seconds:.1f} | "  # type: ignore[attr-defined]
        f"{stats.max_queued_seconds:.1f} | {first:.0f} | {last:.0f} | {peak:.0f} |"
    )
    print("\nRSS over time (s, MB): " + ", ".join(f"{s:.0f}:{m:.0f}" for s, m in memory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
