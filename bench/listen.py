"""Live listening benchmark: reference clips replayed in real time through the capture path.

    python -m bench.listen [--minutes 5] [--partial_every 0] [--full_window] [--config F]
                           [--workers N]
    python -m bench.listen --soak --minutes 60     # the soak: speech and silence, only

Part 1: short utterances (the three spoken commands, jfk.flac and five FLEURS clips), 3 s
apart: end of speech -> transcript ready, and -> graph results (the built-in 'default'
graph unless --config); the best of --repeat runs (by median to the transcript). Part 2:
continuous speech for --minutes, once: real-time factor of transcription (partial texts
included) and memory over time. Whisper base, 2 threads. Prints tables and saves
bench/results/listen.json.

--soak replaces both parts with one run of --minutes: the reference clips (FLEURS, the
commands, jfk.flac) in random order, each followed by 2-20 s of silence, through the
graph (the built-in 'default' unless --config). It reports the clips played and the
utterances heard, the clips no transcribed utterance overlaps (dropped), audio dropped by
the capture queue, the real-time factor, RSS every 15 s and its growth after the first 5
minutes; saves bench/results/listen-soak.json.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.common import parser, peak_rss_mb, rss_mb, save, table
from voiceflow.live import PARTIAL_EVERY_S, SegmenterOptions


def replay(
    audio: np.ndarray, args: Any, on_event: Callable[[Any], None] | None = None
) -> tuple[Any, float, list[tuple[float, float]]]:
    """Listen to ``audio`` played in real time; the stats, the seconds the model was busy,
    and (seconds, RSS MB) every 15 s. The listener's events go to ``on_event`` if given."""
    from voiceflow.graph import load_graph
    from voiceflow.live import Capture, Listener, Segmenter
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow.testing import ReplayStream

    speech = {"threads": 2, "workers": args.workers}
    speech.update({"beam_size": args.beam_size} if args.beam_size else {})
    graph = load_graph(args.config, overrides={"speech": speech})
    c = graph.nodes["speech"].config
    model = SpeechModel.shared(c.model, c.engine, c.device, c.compute_type, c.threads, c.workers)  # type: ignore[attr-defined]
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
    listener = Listener(
        graph,
        capture,
        segmenter,
        on_event,
        partial_every=args.partial_every,
    )
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


def transcription_alone(clips: list[Any], args: Any) -> list[float]:
    """Seconds to transcribe each clip as one utterance (the listener's settings, best of
    2): the compute a transcript waits for once speech has ended."""
    from voiceflow.graph import load_graph
    from voiceflow.speech.audio import load_audio
    from voiceflow.speech.transcriber import SpeechModel

    # the listener's layout: one decoder unless --workers says otherwise
    speech = {"threads": 2, "workers": args.workers or 1}
    graph = load_graph(args.config, overrides={"speech": speech})
    c: Any = graph.nodes["speech"].config
    model = SpeechModel.shared(c.model, c.engine, c.device, c.compute_type, c.threads, c.workers)
    beam = args.beam_size or c.beam_size
    times = []
    for clip in clips:
        audio = load_audio(clip)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            model.transcribe(audio, languages=c.languages, beam_size=beam, vad=False)
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return times


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    from voiceflow import malloc

    malloc.limit_arenas()  # as the voiceflow command does before any thread starts
    p = parser(__doc__)
    p.add_argument("--minutes", type=float, default=5.0, help="part 2 length; 0 skips it")
    p.add_argument("--config", default="default")
    p.add_argument("--beam_size", type=int, default=None, help="override the config's")
    p.add_argument("--workers", type=int, default=0, help="Whisper decodes at once (0: auto)")
    p.add_argument("--early_ms", type=int, default=SegmenterOptions.early_ms)
    p.add_argument("--partial_every", type=float, default=PARTIAL_EVERY_S, help="0: none")
    p.add_argument("--full_window", action="store_true", help="encode whole 30 s windows")
    p.add_argument("--soak", action="store_true", help="speech and silence for --minutes")
    p.add_argument("--seed", type=int, default=0, help="--soak: the order of clips and pauses")
    args = p.parse_args()
    os.environ.setdefault("VOICEFLOW_OFFLINE", "1")  # the image node must not wait on a hub
    # the default graph archives what it hears: keep that out of the user's own archive
    os.environ["VOICEFLOW_ARCHIVE"] = tempfile.mkdtemp(prefix="voiceflow-bench-")
    from voiceflow.speech.audio import load_audio

    data = args.data
    if args.soak:
        return soak(args)
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
    alone = transcription_alone(clips, args)
    part1["alone_s"] = [pct(alone, 50), pct(alone, 95), max(alone)]
    print(
        "\nWhat bounds it: the same clips transcribed alone by the warm model, no listener "
        f"(s): p50 {part1['alone_s'][0]:.2f}, p95 {part1['alone_s'][1]:.2f}, "
        f"max {part1['alone_s'][2]:.2f}; speculation starts {args.early_ms} ms into a pause"
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


def soak(args: Any) -> int:
    from voiceflow.speech.audio import load_audio

    rng = np.random.default_rng(args.seed)
    data = args.data
    paths = [*sorted((data / "fleurs").glob("*.ogg")), *sorted((data / "commands").glob("*.wav"))]
    clips = [load_audio(p) for p in [*paths, data / "jfk.flac"]]
    parts, spans, total = [], [], int(args.minutes * 60 * 16000)
    length = 0
    while length < total:
        clip = clips[rng.integers(len(clips))]
        pause = np.zeros(int(rng.uniform(2, 20) * 16000), dtype=np.float32)
        if length + len(clip) + 16000 > total:
            break
        parts += [clip, pause]
        spans.append((length / 16000, (length + len(clip)) / 16000))
        length += len(clip) + len(pause)
    played = len(spans)
    audio = np.concatenate(parts)[:total]
    speech_s = sum(len(x) for x in parts[::2]) / 16000
    start = time.monotonic()
    from voiceflow.live import Heard

    heard: list[tuple[float, float]] = []  # only the times: events hold every utterance's samples

    def on_event(e: Any) -> None:
        if isinstance(e, Heard):
            heard.append((e.utterance.start, e.utterance.end))

    stats, busy, memory = replay(audio, args, on_event)
    # a clip is dropped when no transcribed utterance overlaps it
    dropped = sum(not any(a < e and b > s for a, b in heard) for s, e in spans)
    wall = time.monotonic() - start
    duration = len(audio) / 16000
    after5 = [m for s, m in memory if s >= 300]
    growth = after5[-1] - after5[0] if len(after5) > 1 else float("nan")
    results = {
        "minutes": duration / 60,
        "speech_s": speech_s,
        "utterances_played": played,
        "utterances_heard": stats.utterances,
        "clips_with_no_utterance": dropped,
        "failed": stats.failed,
        "dropped_audio_s": stats.dropped_seconds,
        "overflows": stats.overflows,
        "max_queued_s": stats.max_queued_seconds,
        "busy_s": busy,
        "real_time_factor": busy / duration,
        "real_time_factor_speech": busy / speech_s,
        "transcript_p50_s": pct(stats.transcript_latency, 50),
        "transcript_p95_s": pct(stats.transcript_latency, 95),
        "rss_mb": memory,
        "rss_growth_after_5_min_mb": growth,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": wall,
    }
    print(
        f"Soak: {duration / 60:.1f} min ({speech_s / 60:.1f} min of speech in {played} clips, "
        f"the rest silence) through '{args.config}' in {wall / 60:.1f} min\n"
    )
    headers = ["clips played", "utterances heard", "clips dropped", "dropped audio s", "RTF"]
    headers += ["p95 to transcript s", "RSS at 5 min MB", "RSS last MB", "growth after 5 min MB"]
    row: list[Any] = [played, stats.utterances, dropped]
    row += [f"{stats.dropped_seconds:.1f}", f"{busy / duration:.3f}"]
    row += [f"{results['transcript_p95_s']:.2f}", f"{after5[0] if after5 else float('nan'):.0f}"]
    row += [f"{memory[-1][1] if memory else float('nan'):.0f}", f"{growth:.1f}"]
    print(table(headers, [row]))
    print("\nRSS over time (s, MB): " + ", ".join(f"{s:.0f}:{m:.0f}" for s, m in memory))
    save("listen-soak", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
