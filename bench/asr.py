"""Speech engine benchmark: both engines, the same clip, the same threads, beam 1 and 5.

    python -m bench.asr [--threads 2] [--repeat 2] [--data DIR]

Each configuration runs in its own process so peak RSS is its own; the time is the best of
--repeat runs after a warm-up. The clip is the five English FLEURS recordings plus
jfk.flac back to back (52 s, speakers at very different levels); WER is against their
references. The first row is the reference as users run it: `whisper.transcribe` with the
CLI's beam 5 and no voice activity detection. The voiceflow rows share one pipeline
(levelling, VAD, language per chunk); where the engines differ inside it: faster-whisper
detects the language from the same encoder pass it decodes with and fits the encoder input
to chunks under 30 s, while openai-whisper's encoder takes only whole 30 s windows and
`whisper.transcribe` detects the language in an encoder pass of its own.
Prints a Markdown table and saves bench/results/asr.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import ROOT, best_of, parser, peak_rss_mb, save, table
from voiceflow.text import normalize

JFK = (
    "and so my fellow americans ask not what your country can do for you ask what you can "
    "do for your country"
)
STOCK = "openai-whisper CLI"  # whisper.transcribe as `whisper audio` runs it: no VAD
FULL = "faster-whisper, 30 s window"  # without fitting the encoder to short chunks
CONFIGS = [
    (STOCK, "float32", 5),
    ("openai-whisper", "float32", 1),
    ("openai-whisper", "float32", 5),
    ("faster-whisper", "float32", 1),
    ("faster-whisper", "float32", 5),
    ("faster-whisper", "int8", 1),
    ("faster-whisper", "int8", 5),
    (FULL, "int8", 5),
]


def clip(data):  # type: ignore[no-untyped-def]
    import numpy as np

    from voiceflow.speech.audio import load_audio

    parts, refs = [], []
    for ogg in sorted((data / "fleurs").glob("fleurs-en-*.ogg")):
        parts.append(load_audio(ogg))
        refs.append(ogg.with_suffix(".txt").read_text(encoding="utf-8"))
    parts.append(load_audio(data / "jfk.flac"))
    refs.append(JFK)
    return np.concatenate(parts), normalize(" ".join(refs))


def child(engine: str, compute_type: str, beam: int, threads: int, repeat: int, data) -> None:  # type: ignore[no-untyped-def]
    import jiwer

    from voiceflow.speech.transcriber import SpeechModel

    audio, reference = clip(data)
    if engine == STOCK:
        import torch
        import whisper

        from voiceflow.speech.convert import openai_checkpoint
        from voiceflow.speech.models import cache_dir, resolve_model

        torch.set_num_threads(threads)
        stock = whisper.load_model(str(openai_checkpoint(resolve_model("base").path, cache_dir())))

        def run(x):  # type: ignore[no-untyped-def]
            return whisper.transcribe(stock, x, beam_size=beam, best_of=beam, fp16=False)["text"]
    else:
        model = SpeechModel(
            "base",
            "faster-whisper" if engine == FULL else engine,
            compute_type=compute_type,
            threads=threads,
        )
        if engine == FULL:
            model.engine.fit_window = False  # type: ignore[attr-defined]

        def run(x):  # type: ignore[no-untyped-def]
            return model.transcribe(x, beam_size=beam).text

    run(audio[: 16000 * 5])  # warm up
    seconds, text = best_of(repeat, lambda: run(audio))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "duration": len(audio) / 16000,
                "rss_mb": peak_rss_mb(),
                "wer": jiwer.wer(reference, normalize(text)),
            }
        )
    )


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", nargs=3, help="(internal) run one configuration")
    args = p.parse_args()
    if args.child:
        engine, compute_type, beam = args.child
        child(engine, compute_type, int(beam), args.threads, args.repeat, args.data)
        return 0
    results = []
    for engine, compute_type, beam in CONFIGS:
        settings = ["--threads", str(args.threads), "--repeat", str(args.repeat)]
        settings += ["--data", str(args.data), "--child", engine, compute_type, str(beam)]
        out = subprocess.run(
            [sys.executable, "-m", "bench.asr", *settings],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.strip()
        results.append(
            {
                "engine": engine,
                "compute": compute_type,
                "beam": beam,
                **json.loads(out.splitlines()[-1]),
            }
        )
        print(
            f"  {engine} {compute_type} beam {beam}: {results[-1]['seconds']:.2f} s",
            file=sys.stderr,
        )
    same_beam = {r["beam"]: r["seconds"] for r in results if r["engine"] == "openai-whisper"}
    cli = next(r["seconds"] for r in results if r["engine"] == STOCK)
    duration = results[0]["duration"]
    print(
        f"Whisper base, {duration:.0f} s clip, {args.threads} threads, best of {args.repeat}, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    rows = [
        (
            r["engine"],
            r["compute"],
            r["beam"],
            f"{r['seconds']:.2f}",
            f"{r['seconds'] / duration:.3f}",
            f"{r['rss_mb']:.0f}",
            f"{r['wer']:.3f}",
            "-" if r["engine"] == STOCK else f"{same_beam[r['beam']] / r['seconds']:.1f}x",
            f"{cli / r['seconds']:.1f}x",
        )
        for r in results
    ]
    headers = ["engine", "compute", "beam", "seconds", "RTF", "peak RSS MB", "WER"]
    headers += ["speed vs voiceflow openai-whisper, same beam", "speed vs openai-whisper CLI"]
    print(table(headers, rows))
    save("asr", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
