"""Live listening benchmark: reference clips replayed in real time through the capture path.

    python -m bench.listen [--minutes 5] [--partial_every 0] [--full_window] [--config F]

Part 1: short utterances (the three spoken commands, jfk.flac and five FLEURS clips), 3 s
apart: end of speech -> transcript ready, and -> graph results (the built-in 'default'
graph unless --config); the best of --repeat runs (by median to the transcript). Part 2:
continuous speech for --minutes, once: real-time factor of transcription (partial texts
included) and memory over time. Whisper base, 2 threads. Prints tables and saves
bench/results/listen.json.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from bench.common import parser, peak_rss_mb, rss_mb, save, table
from voiceflow.live import PARTIAL_EVERY_S, SegmenterOptions


def replay(audio: np.ndarray, args: Any) -> tuple[Any, float, list[tuple[float, float]]]:
    """Listen to ``audio`` played in real time; the stats, the seconds the model was busy,
    and (seconds, RSS MB) every 15 s."""
    from voiceflow.graph import load_graph
    from voiceflow.live import Capture, Listener, Segmenter
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow.testing import ReplayStream

    speech = {"threads": 2, **({"beam_size": args.beam_size} if args.beam_size else {})}
    graph = load_graph(args.config, overrides={"speech": speech})
    c = graph.nodes["speech"].config
    model = SpeechModel.shared(c.model, c.engine, c.device, c.compute_type, c.threads)  # type: ignore[attr-defined]
    model.engine.fit_window = not args.full_window  # type: ignore[attr-defined]
    busy = [0.0]
    transcribe = SpeechModel.transcribe

    def timed(self, *a, **k):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return transcribe(self, *a, **k)
        finally:
            busy[0] += time.perf_counter() - start

    SpeechModel.transcribe = timed  # type: ignore[method-assign]
    capture = Capture(stream_factory=lambda **kw: ReplayStream(audio, 16000, kw["callback"]))
    segmenter = Segmenter(SegmenterOptions(early_ms=args.early_ms))
    listener = Listener(graph, capture, segmenter, partial_every=args.partial_every)
    memory: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        began = time.monotonic()
        while not done.wait(15):
            memory.append((time.monotonic() - began, rss_mb()))

    threading.Thread(target=sample, daemon=True).start()
    try:
        stats = asyncio.run(listener.run())
    finally:
        done.set()
        SpeechModel.transcribe = transcribe  # type: ignore[method-assign]
    return stats, busy[0], memory


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--minutes", type=float, default=5.0, help="part 2 length; 0 skips it")
    p.add_argument("--config", default="default")
    p.add_argument("--beam_size", type=int, default=None, help="override the config's")
    p.add_argument("--early_ms", type=int, default=SegmenterOptions.early_ms)
    p.add_argument("--partial_every", type=float, default=PARTIAL_EVERY_S, help="0: none")
    p.add_argument("--full_window", action="store_true", help="encode whole 30 s windows")
    args = p.parse_args()
    os.environ.setdefault("VOICEFLOW_OFFLINE", "1")  # the image node must not wait on a hub
    # the default graph archives what it hears: keep that out of the user's own archive
    os.environ["VOICEFLOW_ARCHIVE"] = tempfile.mkdtemp(prefix="voiceflow-bench-")
    from voiceflow.speech.audio import load_audio

    data = args.data
    gap = np.zeros(16000 * 3, dtype=np.float32)
    clips = [
        *sorted((data / "commands").glob("*.wav")),
        data / "jfk.flac",
        *sorted((data / "fleurs").glob("fleurs-*-000.ogg")),
    ]
    audio = np.concatenate([x for c in clips for x in (load_audio(c), gap)])
    runs = [replay(audio, args)[0] for _ in range(max(1, args.repeat))]
    stats = min(runs, key=lambda s: pct(s.transcript_latency, 50))
    t, a = stats.transcript_latency, stats.action_latency
    print(
        f"early_ms {args.early_ms}, partial text every {args.partial_every} s, "
        f"beam {args.beam_size or 'as configured'}"
        f"{', 30 s encoder window' if args.full_window else ''}, best of {len(runs)}\n"
    )
    print(
        f"Part 1: {len(clips)} clips, {stats.utterances} utterances, "
        f"{len(audio) / 16000:.0f} s in real time, {stats.partials} partial texts\n"
    )
    part1 = {
        "utterances": stats.utterances,
        "transcript_s": [pct(t, 50), pct(t, 95), max(t)],
        "results_s": [pct(a, 50), pct(a, 95), max(a)],
        "all_runs_transcript_p50_s": [pct(s.transcript_latency, 50) for s in runs],
    }
    print(
        table(
            ["from end of speech to", "p50 s", "p95 s", "max s"],
            [
                ("transcript ready", *(f"{x:.2f}" for x in part1["transcript_s"])),
                ("graph results dispatched", *(f"{x:.2f}" for x in part1["results_s"])),
            ],
        )
    )
    results: dict[str, Any] = {"part1": part1}
    if args.minutes > 0:
        fleurs = sorted((data / "fleurs").glob("*.ogg"))
        one_gap = np.zeros(16000, dtype=np.float32)
        loop = np.concatenate([x for c in fleurs for x in (load_audio(c), one_gap)])
        reps = int(np.ceil(args.minutes * 60 * 16000 / len(loop)))
        long = np.tile(loop, reps)[: int(args.minutes * 60 * 16000)]
        start = time.monotonic()
        stats, busy, memory = replay(long, args)
        wall = time.monotonic() - start
        duration = len(long) / 16000
        print(
            f"\nPart 2: {duration / 60:.1f} min of continuous speech (25 FLEURS clips, 5 "
            f"languages, looped) in {wall / 60:.1f} min\n"
        )
        first = memory[1][1] if len(memory) > 1 else float("nan")
        last = memory[-1][1] if memory else float("nan")
        part2 = {
            "utterances": stats.utterances,
            "busy_s": busy,
            "real_time_factor": busy / duration,
            "dropped_s": stats.dropped_seconds,
            "overflows": stats.overflows,
            "max_queued_s": stats.max_queued_seconds,
            "rss_mb": memory,
            "peak_rss_mb": peak_rss_mb(),
        }
        headers = ["utterances", "transcription busy s", "real-time factor", "dropped s"]
        headers += ["max queued s", "RSS first sample MB", "RSS last MB", "peak RSS MB"]
        row = (stats.utterances, f"{busy:.0f}", f"{busy / duration:.3f}")
        row += (f"{stats.dropped_seconds:.1f}", f"{stats.max_queued_seconds:.1f}")
        row += (f"{first:.0f}", f"{last:.0f}", f"{peak_rss_mb():.0f}")
        print(table(headers, [row]))
        print("\nRSS over time (s, MB): " + ", ".join(f"{s:.0f}:{m:.0f}" for s, m in memory))
        results["part2"] = part2
    save("listen", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
